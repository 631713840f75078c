// The `cache` section and a route's `cache` key (see cache_section.h).
#include "cache_section.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>

#include "apigw/http/text.h"
#include "auth_section.h"
#include "tls_section.h"
#include "value_parsers.h"

namespace apigw::config {
namespace {

constexpr std::array<std::string_view, 7> kCacheKeys{"primary",        "secondary", "key_prefix", "max_item_bytes",
                                                     "api",            "fill_lock", "events"};
constexpr std::array<std::string_view, 6> kEventsKeys{"redis", "stream", "group", "claim_after", "poll", "batch"};
constexpr std::array<std::string_view, 4> kPrimaryKeys{"servers", "timeout", "connections", "tls"};
constexpr std::array<std::string_view, 4> kSecondaryKeys{"servers", "timeout", "queue", "tls"};
constexpr std::array<std::string_view, 1> kApiKeys{"token"};
constexpr std::array<std::string_view, 10> kRouteCacheKeys{
    "ttl",  "vary",       "scope",                  "statuses",       "share_authorized",
    "tags", "tag_header", "stale_while_revalidate", "stale_if_error", "tag_invalidation"};
constexpr std::size_t kMaxStreamNameBytes = 200;
constexpr unsigned kMaxEventBatch = 10'000;
constexpr core::Duration kMinEventPoll = std::chrono::milliseconds(10);
constexpr core::Duration kMaxEventPoll = std::chrono::seconds(60);
constexpr core::Duration kMinClaimAfter = std::chrono::seconds(1);
constexpr unsigned kMaxCacheConnections = 64;
constexpr unsigned kMaxSecondaryQueue = 1'000'000;
constexpr std::uint64_t kMinItemBytes = 1024;
constexpr std::uint64_t kMaxItemBytes = 128 * 1024 * 1024;
constexpr std::size_t kMinApiTokenBytes = 16;
constexpr std::size_t kMaxVaryHeaders = 16;
// Memcached reads an expiration time above 30 days as an absolute Unix time, so a ttl may not exceed it.
constexpr std::chrono::seconds kMaxTtl = std::chrono::hours(24 * 30);
// Statuses that are never stored, whatever a route lists: partial and conditional answers (the key holds
// neither Range nor the validators) and authentication failures.
constexpr std::array<unsigned, 4> kNeverStored{206, 304, 401, 407};

bool visible_ascii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c > ' ' && c < 0x7f; });
}

std::optional<std::string> parse_key_prefix(std::string_view text, std::string& why) {
  if (text.size() > kMaxCacheKeyPrefixBytes || !visible_ascii(text)) {
    why = "must be at most " + std::to_string(kMaxCacheKeyPrefixBytes) +
          " visible ASCII characters without spaces (Memcached keys hold no spaces or control characters)";
    return std::nullopt;
  }
  return std::string(text);
}

// The token itself never appears in a message.
std::optional<std::string> parse_api_token(std::string_view text, std::string& why) {
  if (text.size() < kMinApiTokenBytes || !visible_ascii(text)) {
    why = "must be at least " + std::to_string(kMinApiTokenBytes) +
          " visible ASCII characters without spaces (use ${VAR} to keep it out of the file)";
    return std::nullopt;
  }
  return std::string(text);
}

// Whole seconds up to 30 days (Memcached expiration times are in seconds, and relative only up to 30 days).
std::optional<std::chrono::seconds> whole_seconds(std::optional<core::Duration> duration, std::string_view text,
                                                  std::string& why) {
  if (!duration) return std::nullopt;
  if (duration->count() % 1000 != 0) {
    why = "must be a whole number of seconds (Memcached expiration times are in seconds), got " + std::string(text);
    return std::nullopt;
  }
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(*duration);
  if (seconds > kMaxTtl) {
    why = "must be at most 30 days (720h), got " + std::string(text);
    return std::nullopt;
  }
  return seconds;
}

std::optional<std::chrono::seconds> parse_ttl(std::string_view text, std::string& why) {
  return whole_seconds(parse_positive_duration(text, why), text, why);
}

// A stale window: 0 included (no window).
std::optional<std::chrono::seconds> parse_stale_window(std::string_view text, std::string& why) {
  return whole_seconds(parse_duration_value(text, why), text, why);
}

std::optional<TagInvalidation> parse_tag_invalidation(std::string_view text, std::string& why) {
  if (text == "gone") return TagInvalidation::kGone;
  if (text == "stale") return TagInvalidation::kStale;
  why = "bad value '" + std::string(text) + "': expected gone or stale";
  return std::nullopt;
}

// A tag template: visible ASCII, `{name}` standing for a path parameter (checked against the route's path later).
std::optional<std::string> parse_tag_template(std::string_view text, std::string& why) {
  if (text.empty() || text.size() > kMaxTagTemplateBytes || !visible_ascii(text)) {
    why = "a tag is 1 to " + std::to_string(kMaxTagTemplateBytes) +
          " visible ASCII characters without spaces, with path parameters as {name}";
    return std::nullopt;
  }
  std::size_t at = 0;
  while ((at = text.find_first_of("{}", at)) != std::string_view::npos) {
    const std::size_t close = text.find('}', at);
    if (text[at] == '}' || close == std::string_view::npos || close == at + 1 ||
        text.substr(at + 1, close - at - 1).find('{') != std::string_view::npos) {
      why = "bad tag '" + std::string(text) + "': braces must enclose a path parameter's name, as in product:{id}";
      return std::nullopt;
    }
    at = close + 1;
  }
  return std::string(text);
}

// A name Redis keys and group names take without quoting trouble: visible ASCII.
std::optional<std::string> parse_stream_name(std::string_view text, std::string& why) {
  if (text.empty() || text.size() > kMaxStreamNameBytes || !visible_ascii(text)) {
    why = "must be 1 to " + std::to_string(kMaxStreamNameBytes) + " visible ASCII characters without spaces";
    return std::nullopt;
  }
  return std::string(text);
}

std::optional<core::Duration> parse_event_poll(std::string_view text, std::string& why) {
  auto poll = parse_duration_value(text, why);
  if (poll && (*poll < kMinEventPoll || *poll > kMaxEventPoll)) {
    why = "must be from 10ms to 60s, got " + std::string(text);
    return std::nullopt;
  }
  return poll;
}

std::optional<core::Duration> parse_claim_after(std::string_view text, std::string& why) {
  auto after = parse_duration_value(text, why);
  if (after && *after < kMinClaimAfter) {
    why = "must be at least 1s (an event still being handled must not be taken over), got " + std::string(text);
    return std::nullopt;
  }
  return after;
}

std::optional<CacheScope> parse_scope(std::string_view text, std::string& why) {
  if (text == "shared") return CacheScope::kShared;
  if (text == "user") return CacheScope::kUser;
  why = "bad value '" + std::string(text) + "': expected shared or user";
  return std::nullopt;
}

std::optional<unsigned> parse_status(std::string_view text, std::string& why) {
  const auto status = parse_whole_number(text, 200, 599, why);
  if (status && std::find(kNeverStored.begin(), kNeverStored.end(), *status) != kNeverStored.end()) {
    why = std::to_string(*status) + " responses are never cached (206, 304, 401 and 407 cannot be listed)";
    return std::nullopt;
  }
  return status;
}

// A non-empty list of host:port, each once.
void read_servers(YamlReader& reader, const Field& field, std::vector<Endpoint>& servers) {
  servers.clear();
  if (reader.is_null(field)) return reader.error(field.position, field.label + ": needs at least one server");
  if (!reader.expect_list(field)) return;
  reader.for_each_item(field, [&](std::size_t, const Field& item) {
    auto server = reader.value(item, parse_endpoint);
    if (!server) return;
    if (std::find(servers.begin(), servers.end(), *server) != servers.end()) {
      return reader.error(item.position, field.label + ": '" + server->text() + "' is listed twice");
    }
    servers.push_back(std::move(*server));
  });
  if (field.node->size() == 0) reader.error(field.position, field.label + ": needs at least one server");
}

void read_primary(YamlReader& reader, const Field& field, CachePrimaryConfig& primary) {
  reader.for_each_field(field, kPrimaryKeys, [&](std::string_view key, const Field& value) {
    if (key == "servers") return read_servers(reader, value, primary.servers);
    if (key == "timeout") return assign(primary.timeout, reader.value(value, parse_positive_duration));
    if (key == "tls") return void(primary.tls = read_tls_client(reader, value));
    assign(primary.connections, reader.value(value, whole_number(1, kMaxCacheConnections)));
  });
}

void read_secondary(YamlReader& reader, const Field& field, CacheSecondaryConfig& secondary) {
  bool has_servers = false;
  reader.for_each_field(field, kSecondaryKeys, [&](std::string_view key, const Field& value) {
    if (key == "servers") {
      has_servers = true;
      return read_servers(reader, value, secondary.servers);
    }
    if (key == "timeout") return assign(secondary.timeout, reader.value(value, parse_positive_duration));
    if (key == "tls") return void(secondary.tls = read_tls_client(reader, value));
    assign(secondary.queue, reader.value(value, whole_number(1, kMaxSecondaryQueue)));
  });
  if (!has_servers && (reader.is_null(field) || field.node->IsMap())) {
    reader.error(field.position, field.label + ": needs servers (the Memcached servers that receive a copy)");
  }
}

void read_api(YamlReader& reader, const Field& field, CacheApiConfig& api) {
  api.enabled = true;
  bool has_token = false;
  reader.for_each_field(field, kApiKeys, [&](std::string_view, const Field& value) {
    has_token = true;
    assign(api.token, reader.value(value, parse_api_token));
  });
  if (!has_token && (reader.is_null(field) || field.node->IsMap())) {
    reader.error(field.position, field.label + ": needs a token");
  }
}

void read_events(YamlReader& reader, const Field& field, CacheEventsConfig& events) {
  events.enabled = true;
  reader.for_each_field(field, kEventsKeys, [&](std::string_view key, const Field& value) {
    if (key == "redis") return read_redis(reader, value, events.redis);
    if (key == "stream") return assign(events.stream, reader.value(value, parse_stream_name));
    if (key == "group") return assign(events.group, reader.value(value, parse_stream_name));
    if (key == "claim_after") return assign(events.claim_after, reader.value(value, parse_claim_after));
    if (key == "poll") return assign(events.poll, reader.value(value, parse_event_poll));
    assign(events.batch, reader.value(value, whole_number(1, kMaxEventBatch)));
  });
}

void read_tags(YamlReader& reader, const Field& field, std::vector<std::string>& tags) {
  tags.clear();
  if (!reader.expect_list(field)) return;
  reader.for_each_item(field, [&](std::size_t, const Field& item) {
    auto tag = reader.value(item, parse_tag_template);
    if (!tag) return;
    if (std::find(tags.begin(), tags.end(), *tag) != tags.end()) {
      return reader.error(item.position, field.label + ": '" + *tag + "' is listed twice");
    }
    tags.push_back(std::move(*tag));
  });
  if (tags.size() > kMaxRouteCacheTags) {
    reader.error(field.position, field.label + ": at most " + std::to_string(kMaxRouteCacheTags) + " tags");
  }
}

void read_vary(YamlReader& reader, const Field& field, std::vector<std::string>& vary) {
  reader.for_each_item(field, [&](std::size_t, const Field& item) {
    auto name = reader.value(item, parse_header_name);
    if (!name) return;
    const auto same = [&](const std::string& other) { return http::iequals(other, *name); };
    if (std::find_if(vary.begin(), vary.end(), same) != vary.end()) {
      return reader.error(item.position, field.label + ": '" + *name + "' is listed twice");
    }
    vary.push_back(std::move(*name));
  });
  if (vary.size() > kMaxVaryHeaders) {
    reader.error(field.position, field.label + ": at most " + std::to_string(kMaxVaryHeaders) + " headers");
  }
}

void read_statuses(YamlReader& reader, const Field& field, std::vector<unsigned>& statuses) {
  statuses.clear();
  if (reader.is_null(field)) return reader.error(field.position, field.label + ": needs at least one status");
  if (!reader.expect_list(field)) return;
  reader.for_each_item(field, [&](std::size_t, const Field& item) {
    const auto status = reader.value(item, parse_status);
    if (!status) return;
    if (std::find(statuses.begin(), statuses.end(), *status) != statuses.end()) {
      return reader.error(item.position, field.label + ": " + std::to_string(*status) + " is listed twice");
    }
    statuses.push_back(*status);
  });
  if (field.node->size() == 0) reader.error(field.position, field.label + ": needs at least one status");
}

}  // namespace

void read_cache_section(YamlReader& reader, const Field& field, CacheConfig& cache) {
  cache.enabled = true;
  reader.for_each_field(field, kCacheKeys, [&](std::string_view key, const Field& value) {
    if (key == "primary") return read_primary(reader, value, cache.primary);
    if (key == "secondary") return read_secondary(reader, value, cache.secondary.emplace());
    if (key == "key_prefix") return assign(cache.key_prefix, reader.value(value, parse_key_prefix));
    if (key == "max_item_bytes") {
      return assign(cache.max_item_bytes, reader.value(value, size_between(kMinItemBytes, kMaxItemBytes)));
    }
    if (key == "fill_lock") return assign(cache.fill_lock, reader.value(value, parse_bool));
    if (key == "events") return read_events(reader, value, cache.events);
    read_api(reader, value, cache.api);
  });
}

void read_route_cache(YamlReader& reader, const Field& field, RouteCacheConfig& cache, RouteSource& source) {
  cache.enabled = true;
  source.cache = field.position;
  source.cache_scope = field.position;
  bool has_ttl = false;
  reader.for_each_field(field, kRouteCacheKeys, [&](std::string_view key, const Field& value) {
    if (key == "ttl") {
      has_ttl = true;
      return assign(cache.ttl, reader.value(value, parse_ttl));
    }
    if (key == "vary") return read_vary(reader, value, cache.vary);
    if (key == "scope") {
      source.cache_scope = value.position;
      return assign(cache.scope, reader.value(value, parse_scope));
    }
    if (key == "share_authorized") return assign(cache.share_authorized, reader.value(value, parse_bool));
    if (key == "tags") {
      source.cache_tags = value.position;
      return read_tags(reader, value, cache.tags);
    }
    if (key == "tag_header") return assign(cache.tag_header, reader.value(value, parse_header_name));
    if (key == "stale_while_revalidate") {
      return assign(cache.stale_while_revalidate, reader.value(value, parse_stale_window));
    }
    if (key == "stale_if_error") return assign(cache.stale_if_error, reader.value(value, parse_stale_window));
    if (key == "tag_invalidation") {
      source.cache_tag_invalidation = value.position;
      return assign(cache.tag_invalidation, reader.value(value, parse_tag_invalidation));
    }
    read_statuses(reader, value, cache.statuses);
    for (const unsigned status : cache.statuses) {
      if (status < 500) continue;
      reader.warn(value.position, value.label + ": " + std::to_string(status) +
                                      " is listed: a 5xx response that carries no max-age, s-maxage or Expires is "
                                      "kept for the whole ttl");
      break;
    }
  });
  if (!has_ttl && (reader.is_null(field) || field.node->IsMap())) {
    reader.error(field.position, field.label + ": needs a ttl (e.g. ttl: 30s)");
  }
}

}  // namespace apigw::config
