// The `auth` section (see auth_section.h).
#include "auth_section.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "tls_section.h"
#include "value_parsers.h"

namespace apigw::config {
namespace {

constexpr std::array<std::string_view, 7> kAuthKeys{"redis",   "token_from", "key",     "user_id",
                                                     "forward_header", "cache", "on_error"};
constexpr std::array<std::string_view, 8> kRedisKeys{"nodes", "cluster", "username",    "password",
                                                     "db",    "timeout", "connections", "tls"};
constexpr std::array<std::string_view, 3> kAuthCacheKeys{"ttl", "negative_ttl", "max_entries"};
constexpr unsigned kMaxRedisDb = 15;
constexpr unsigned kMaxRedisConnections = 64;
constexpr unsigned kMaxCacheEntries = 10'000'000;
constexpr std::size_t kMaxTokenSources = 8;

// Letters, digits, '-', '_' and '.': a header, cookie, query parameter or field name.
bool valid_name(std::string_view name) {
  std::string ignored;
  return parse_name(name, ignored).has_value();
}

constexpr std::string_view kPlaceholder = "{token}";

std::optional<TokenSource> parse_token_source(std::string_view text, std::string& why) {
  const std::size_t colon = text.find(':');
  const std::string_view kind = text.substr(0, colon);
  const std::string_view name = colon == std::string_view::npos ? std::string_view() : text.substr(colon + 1);
  TokenSource source;
  if (kind == "header") {
    source.kind = TokenSource::Kind::kHeader;
  } else if (kind == "cookie") {
    source.kind = TokenSource::Kind::kCookie;
  } else if (kind == "query") {
    source.kind = TokenSource::Kind::kQuery;
  } else {
    why = fmt::format("bad token source '{}': expected header:NAME, cookie:NAME or query:NAME", text);
    return std::nullopt;
  }
  if (!valid_name(name)) {
    why = fmt::format("bad token source '{}': the name after ':' must be letters, digits, '-', '_' or '.'", text);
    return std::nullopt;
  }
  source.name = std::string(name);
  return source;
}

std::optional<std::string> parse_key_template(std::string_view text, std::string& why) {
  const std::size_t at = text.find(kPlaceholder);
  if (at == std::string_view::npos || text.find(kPlaceholder, at + 1) != std::string_view::npos) {
    why = fmt::format("bad key template '{}': must contain {{token}} exactly once, e.g. session:{{token}}", text);
    return std::nullopt;
  }
  return std::string(text);
}

std::optional<UserIdField> parse_user_id_field(std::string_view text, std::string& why) {
  if (text == "string") return UserIdField{};
  for (const auto& [prefix, kind] : {std::pair{std::string_view("hash:"), UserIdField::Kind::kHash},
                                     std::pair{std::string_view("json:"), UserIdField::Kind::kJson}}) {
    if (text.starts_with(prefix) && valid_name(text.substr(prefix.size()))) {
      return UserIdField{kind, std::string(text.substr(prefix.size()))};
    }
  }
  why = fmt::format("bad user_id '{}': expected string, hash:FIELD or json:FIELD", text);
  return std::nullopt;
}

// Passwords and user names are taken as written (after ${VAR} expansion), including an empty expansion.
std::optional<std::string> any_text(std::string_view text, std::string&) { return std::string(text); }

void read_token_from(YamlReader& reader, const Field& field, std::vector<TokenSource>& sources) {
  sources.clear();
  if (reader.is_null(field)) return reader.error(field.position, field.label + ": needs at least one source");
  if (!reader.expect_list(field)) return;
  reader.for_each_item(field, [&](std::size_t, const Field& item) {
    auto source = reader.value(item, parse_token_source);
    if (!source) return;
    if (std::find(sources.begin(), sources.end(), *source) != sources.end()) {
      return reader.error(item.position, field.label + ": '" + *reader.text(item) + "' is listed twice");
    }
    sources.push_back(std::move(*source));
  });
  if (field.node->size() == 0) reader.error(field.position, field.label + ": needs at least one source");
  if (field.node->size() > kMaxTokenSources) {
    reader.error(field.position, field.label + ": at most " + std::to_string(kMaxTokenSources) + " sources");
  }
}

void read_cache(YamlReader& reader, const Field& field, AuthCacheConfig& cache) {
  reader.for_each_field(field, kAuthCacheKeys, [&](std::string_view key, const Field& value) {
    if (key == "ttl") return assign(cache.ttl, reader.value(value, parse_duration_value));
    if (key == "negative_ttl") return assign(cache.negative_ttl, reader.value(value, parse_duration_value));
    assign(cache.max_entries, reader.value(value, whole_number(0, kMaxCacheEntries)));
  });
}

}  // namespace

void read_redis(YamlReader& reader, const Field& field, RedisConfig& redis) {
  Position db_at;
  reader.for_each_field(field, kRedisKeys, [&](std::string_view key, const Field& value) {
    if (key == "nodes") {
      redis.nodes.clear();
      if (reader.is_null(value)) return reader.error(value.position, value.label + ": needs at least one node");
      if (!reader.expect_list(value)) return;
      reader.for_each_item(value, [&](std::size_t, const Field& item) {
        if (auto node = reader.value(item, parse_endpoint)) redis.nodes.push_back(std::move(*node));
      });
      if (value.node->size() == 0) reader.error(value.position, value.label + ": needs at least one node");
      return;
    }
    if (key == "cluster") return assign(redis.cluster, reader.value(value, parse_bool));
    if (key == "tls") return void(redis.tls = read_tls_client(reader, value));
    if (key == "username") return assign(redis.username, reader.value(value, any_text));
    if (key == "password") return assign(redis.password, reader.value(value, any_text));
    if (key == "db") {
      db_at = value.position;
      return assign(redis.db, reader.value(value, whole_number(0, kMaxRedisDb)));
    }
    if (key == "timeout") return assign(redis.timeout, reader.value(value, parse_positive_duration));
    assign(redis.connections, reader.value(value, whole_number(1, kMaxRedisConnections)));
  });
  if (redis.cluster && redis.db != 0) {
    reader.error(db_at, field.label + ".db: a Redis Cluster has only database 0");
  }
  if (!redis.username.empty() && redis.password.empty()) {
    reader.error(field.position, field.label + ": username needs a password (Redis ACL users log in with both)");
  }
}

void read_auth(YamlReader& reader, const Field& field, AuthConfig& auth) {
  auth.enabled = true;
  reader.for_each_field(field, kAuthKeys, [&](std::string_view key, const Field& value) {
    if (key == "redis") return read_redis(reader, value, auth.redis);
    if (key == "token_from") return read_token_from(reader, value, auth.token_from);
    if (key == "key") return assign(auth.key, reader.value(value, parse_key_template));
    if (key == "user_id") return assign(auth.user_id, reader.value(value, parse_user_id_field));
    if (key == "forward_header") return assign(auth.forward_header, reader.value(value, parse_forward_header));
    if (key == "cache") return read_cache(reader, value, auth.cache);
    assign(auth.on_error, reader.value(value, parse_auth_on_error));
  });
}

}  // namespace apigw::config
