// The `migration` section and a route's `split` and `shadow` (see migration_section.h). A percent's threshold is
// computed only once every file is read, since `buckets` may come after it.
#include "migration_section.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <functional>

#include "apigw/config/audit_sink_target.h"
#include "apigw/config/migration_values.h"
#include "apigw/core/json_pointer.h"
#include "apigw/http/text.h"
#include "apigw/routing/request_pattern.h"
#include "tls_section.h"
#include "value_parsers.h"

namespace apigw::config {
namespace {

constexpr std::array<std::string_view, 7> kMigrationKeys{"buckets", "affinity", "beta_users", "shadow_ignore",
                                                         "shadow",  "split",    "audit"};
constexpr std::array<std::string_view, 7> kShadowKeys{"max_in_flight",  "timeout",  "header", "max_body_bytes",
                                                      "pipeline",       "upstream", "percent"};
constexpr std::array<std::string_view, 2> kTargetKeys{"upstream", "percent"};
constexpr std::array<std::string_view, 5> kAuditKeys{"sink", "sample", "ignore_fields", "max_body_bytes", "tls"};
constexpr unsigned kMaxBuckets = 1'000'000;
constexpr unsigned kMaxShadowsInFlight = 1'000'000;
constexpr unsigned kMaxAuditSample = 100;
constexpr std::uint64_t kMaxShadowBodyBytes = 64 * 1024 * 1024;
constexpr unsigned kMaxShadowPipeline = 64;
constexpr std::uint64_t kMinAuditBodyBytes = 1024;
constexpr std::uint64_t kMaxAuditBodyBytes = 16 * 1024 * 1024;
constexpr std::string_view kTargetForm = "{ upstream: NAME, percent: P }";

// A route's side and where its parts live: the route's own target, the section's default, their positions.
struct Side {
  std::string_view name;
  std::optional<MigrationTarget> RouteConfig::*own;
  std::optional<MigrationTarget> MigrationConfig::*fallback;
  TargetSource RouteSource::*source;
  TargetSource MigrationSource::*fallback_source;
};

constexpr std::array<Side, 2> kSides{
    {{"split", &RouteConfig::split, &MigrationConfig::split, &RouteSource::split, &MigrationSource::split},
     {"shadow", &RouteConfig::shadow, &MigrationConfig::shadow_target, &RouteSource::shadow,
      &MigrationSource::shadow}}};

bool has_control(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) { return c >= 0 && c < ' '; }) ||
         text.find('\x7f') != std::string_view::npos;
}

std::optional<AffinitySource> parse_affinity_source(std::string_view text, std::string& why) {
  using Kind = AffinitySource::Kind;
  if (text == "user_id") return AffinitySource{Kind::kUserId, {}};
  if (text == "client_ip") return AffinitySource{Kind::kClientIp, {}};
  const std::size_t colon = text.find(':');
  const std::string_view kind = text.substr(0, colon);
  if (colon != std::string_view::npos && (kind == "header" || kind == "cookie")) {
    const std::string_view name = text.substr(colon + 1);
    std::string ignored;
    if (parse_header_name(name, ignored)) {
      return AffinitySource{kind == "header" ? Kind::kHeader : Kind::kCookie, std::string(name)};
    }
    why = "bad affinity source " + in_quotes(text) + ": the name after ':' must be an HTTP token such as X-Device-Id";
    return std::nullopt;
  }
  why = "bad affinity source " + in_quotes(text) + ": expected user_id, header:NAME, cookie:NAME or client_ip";
  return std::nullopt;
}

// Header names are case-insensitive, cookie names are not.
bool same_affinity_source(const AffinitySource& a, const AffinitySource& b) {
  if (a.kind != b.kind) return false;
  return a.kind == AffinitySource::Kind::kHeader ? http::iequals(a.name, b.name) : a.name == b.name;
}

std::optional<std::string> parse_beta_user(std::string_view text, std::string& why) {
  if (!text.empty()) return std::string(text);
  why = "a user id cannot be empty";
  return std::nullopt;
}

std::optional<std::string> parse_ignore_pattern(std::string_view text, std::string& why) {
  std::string reason;
  if (routing::RequestPattern::parse(text, reason)) return std::string(text);
  why = "bad pattern " + in_quotes(text) + ": " + reason;
  return std::nullopt;
}

std::optional<std::string> parse_ignored_field(std::string_view text, std::string& why) {
  if (text.empty()) {
    why = "'' is the whole body; name the fields to leave out, e.g. /meta/server_time";
  } else if (!core::parse_json_pointer(text)) {
    why = in_quotes(text) + " is not a JSON pointer (it starts with '/'; '~' is written ~0 and '/' in a name ~1)";
  } else {
    return std::string(text);
  }
  return std::nullopt;
}

// The sink as written, once parse_audit_sink_target accepts it.
std::optional<std::string> parse_audit_sink(std::string_view text, std::string& why) {
  std::string reason;
  if (parse_audit_sink_target(text, reason)) return std::string(text);
  why = "bad sink " + in_quotes(text) + ": " + reason;
  return std::nullopt;
}

// A list whose items `parse` accepts, each once (`same` compares two). With `needs`, an empty or missing list is
// an error ("needs at least one <needs>"); without, it is an empty list.
template <typename T, typename Parse, typename Same = std::equal_to<T>>
void read_unique_list(YamlReader& reader, const Field& field, std::vector<T>& items, Parse parse,
                      std::string_view needs = {}, Same same = {}) {
  items.clear();
  if (reader.is_null(field) || (field.node->IsSequence() && field.node->size() == 0)) {
    if (!needs.empty()) reader.error(field.position, field.label + ": needs at least one " + std::string(needs));
    return;
  }
  reader.for_each_item(field, [&](std::size_t, const Field& item) {
    auto value = reader.value(item, parse);
    if (!value) return;
    if (std::any_of(items.begin(), items.end(), [&](const T& other) { return same(other, *value); })) {
      return reader.error(item.position, field.label + ": " + in_quotes(*reader.text(item)) + " is listed twice");
    }
    items.push_back(std::move(*value));
  });
}

// The `upstream` or `percent` key of a target; the map may hold others (migration.shadow's settings).
void read_target_key(YamlReader& reader, std::string_view key, const Field& value, MigrationTarget& target,
                     TargetSource& source) {
  if (key == "upstream") {
    source.upstream = value.position;
    return assign(target.upstream, reader.text(value));
  }
  source.percent = value.position;
  assign(target.percent, reader.value(value, parse_percent));
}

void check_target_keys(YamlReader& reader, const Field& field, const TargetSource& source) {
  const bool upstream = source.upstream.line != 0;
  const bool percent = source.percent.line != 0;
  if (upstream && percent) return;
  const std::string missing = upstream ? "a percent" : percent ? "an upstream" : "an upstream and a percent";
  reader.error(field.position, field.label + ": needs " + missing + " (" + std::string(kTargetForm) + ")");
}

void read_target(YamlReader& reader, const Field& field, MigrationTarget& target, TargetSource& source) {
  source.at = field.position;
  reader.for_each_field(field, kTargetKeys, [&](std::string_view key, const Field& value) {
    read_target_key(reader, key, value, target, source);
  });
  if (reader.is_null(field) || field.node->IsMap()) check_target_keys(reader, field, source);
}

void read_shadow(YamlReader& reader, const Field& field, MigrationConfig& migration, TargetSource& source) {
  ShadowSettings& shadow = migration.shadow;
  MigrationTarget target;
  reader.for_each_field(field, kShadowKeys, [&](std::string_view key, const Field& value) {
    if (key == "max_in_flight") {
      return assign(shadow.max_in_flight, reader.value(value, whole_number(1, kMaxShadowsInFlight)));
    }
    if (key == "timeout") return assign(shadow.timeout, reader.value(value, parse_positive_duration));
    if (key == "header") return assign(shadow.header, reader.value(value, parse_shadow_header));
    if (key == "max_body_bytes") {
      return assign(shadow.max_body_bytes, reader.value(value, size_between(1, kMaxShadowBodyBytes)));
    }
    if (key == "pipeline") return assign(shadow.pipeline, reader.value(value, whole_number(1, kMaxShadowPipeline)));
    read_target_key(reader, key, value, target, source);
  });
  // Settings alone: routes have no default shadow target.
  if (source.upstream.line == 0 && source.percent.line == 0) return;
  source.at = field.position;
  check_target_keys(reader, field, source);
  migration.shadow_target = std::move(target);
}

void read_audit(YamlReader& reader, const Field& field, AuditConfig& audit) {
  audit.enabled = true;
  bool has_sink = false;
  std::optional<Field> tls_field;
  reader.for_each_field(field, kAuditKeys, [&](std::string_view key, const Field& value) {
    if (key == "sink") {
      has_sink = true;
      return assign(audit.sink, reader.value(value, parse_audit_sink));
    }
    if (key == "tls") {
      tls_field = value;
      return void(audit.tls = read_tls_client(reader, value));
    }
    if (key == "sample") return assign(audit.sample, reader.value(value, whole_number(0, kMaxAuditSample)));
    if (key == "ignore_fields") return read_unique_list(reader, value, audit.ignore_fields, parse_ignored_field);
    assign(audit.max_body_bytes, reader.value(value, size_between(kMinAuditBodyBytes, kMaxAuditBodyBytes)));
  });
  if (!has_sink && (reader.is_null(field) || field.node->IsMap())) {
    reader.error(field.position,
                 field.label + ": needs a sink (file:/absolute/path, http://host:port/path or https://host:port/path)");
  }
  // An https sink without a tls block verifies the collector against the system's trust anchors.
  const bool https = audit.sink.starts_with("https://");
  if (tls_field && !https && !audit.sink.empty()) {
    reader.error(tls_field->key, tls_field->label + ": applies to an https:// sink only (the sink is '" + audit.sink +
                                     "')");
  } else if (https && !tls_field) {
    audit.tls.emplace();
  }
}

// The upstream exists, and the percent is a whole number of buckets (its threshold).
void resolve_target(const Config& config, MigrationTarget& target, const TargetSource& source,
                    const std::string& label, std::vector<ConfigError>& errors) {
  if (!target.upstream.empty() && !config.upstreams.contains(target.upstream)) {
    errors.push_back({source.upstream, label + ": " + upstream_not_defined(config, target.upstream)});
  }
  if (target.percent.empty()) return;
  std::string why;
  if (const auto threshold = percent_threshold(target.percent, config.migration.buckets, why)) {
    target.threshold = *threshold;
  } else {
    errors.push_back({source.percent, label + ".percent: " + why});
  }
}

void check_route_side(Config& config, std::size_t index, const RouteSource& source, const Side& side,
                      std::vector<ConfigError>& errors) {
  const RouteConfig& route = config.routes[index];
  const std::string label = route_label(config, index);
  const std::optional<MigrationTarget>& fallback = config.migration.*side.fallback;
  std::optional<MigrationTarget>& own = config.routes[index].*side.own;
  const std::string name(side.name);
  if (!own) {
    // The default applies to this route, and would send its requests to where they already go.
    if (fallback && !route.upstream.empty() && fallback->upstream == route.upstream) {
      errors.push_back({source.upstream, label + ": upstream '" + route.upstream + "' is also the migration." +
                                             name + " default's; give the route " + name + ": off or a " + name +
                                             " of its own"});
    }
    return;
  }
  const TargetSource& at = source.*side.source;
  if (!config.migration.enabled) {
    errors.push_back({at.at, label + ": " + name + " needs a migration section (migration.buckets, ...) in the main "
                                                   "file"});
  }
  if (!own->upstream.empty() && own->upstream == route.upstream) {
    errors.push_back({at.upstream, label + " " + name + ": upstream '" + own->upstream +
                                       "' is the route's own; " + name + " sends to the other side"});
  }
  resolve_target(config, *own, at, label + " " + name, errors);
}

}  // namespace

std::optional<std::uint32_t> migration_threshold(std::string_view percent, std::uint32_t buckets, std::string& why) {
  const auto text = parse_percent(percent, why);
  if (!text) return std::nullopt;
  return percent_threshold(*text, buckets, why);
}

bool valid_beta_user(std::string_view user, std::string& why) { return parse_beta_user(user, why).has_value(); }

bool valid_shadow_ignore(std::string_view pattern, std::string& why) {
  return parse_ignore_pattern(pattern, why).has_value();
}

std::optional<AuditSinkTarget> parse_audit_sink_target(std::string_view text, std::string& why) {
  AuditSinkTarget target;
  if (text.starts_with("file:")) {
    const std::string_view path = text.substr(5);
    if (path.starts_with('/') && path.size() > 1 && !path.ends_with('/') && !has_control(path)) {
      target.file = std::string(path);
      return target;
    }
    why = "a file sink needs an absolute file path, e.g. file:/var/log/apigw/audit.ndjson";
    return std::nullopt;
  }
  target.tls = text.starts_with("https://");
  if (!target.tls && !text.starts_with("http://")) {
    why = "expected file:/absolute/path, http://host:port/path or https://host:port/path";
    return std::nullopt;
  }
  const std::string_view scheme = target.tls ? "https" : "http";
  const std::string_view rest = text.substr(scheme.size() + 3);
  const std::size_t slash = rest.find('/');
  if (slash == std::string_view::npos) {
    why = "an " + std::string(scheme) + " sink needs a path, e.g. " + std::string(scheme) +
          "://audit.internal:8080/audit";
    return std::nullopt;
  }
  std::optional<Endpoint> endpoint = parse_endpoint(rest.substr(0, slash), why);
  if (!endpoint) {
    why += " (an " + std::string(scheme) + " sink is " + std::string(scheme) + "://host:port/path)";
    return std::nullopt;
  }
  if (has_control(rest) || rest.find(' ') != std::string_view::npos) {
    why = "the path must hold no spaces or control characters";
    return std::nullopt;
  }
  target.kind = AuditSinkTarget::Kind::kHttp;
  target.endpoint = std::move(*endpoint);
  target.authority = std::string(rest.substr(0, slash));
  target.path = std::string(rest.substr(slash));
  return target;
}

void read_migration_section(YamlReader& reader, const Field& field, MigrationConfig& migration,
                            MigrationSource& source) {
  migration.enabled = true;
  reader.for_each_field(field, kMigrationKeys, [&](std::string_view key, const Field& value) {
    if (key == "buckets") return assign(migration.buckets, reader.value(value, whole_number(1, kMaxBuckets)));
    if (key == "affinity") {
      return read_unique_list(reader, value, migration.affinity, parse_affinity_source, "source",
                              same_affinity_source);
    }
    if (key == "beta_users") return read_unique_list(reader, value, migration.beta_users, parse_beta_user);
    if (key == "shadow_ignore") {
      return read_unique_list(reader, value, migration.shadow_ignore, parse_ignore_pattern);
    }
    if (key == "shadow") return read_shadow(reader, value, migration, source.shadow);
    if (key == "split") return read_target(reader, value, migration.split.emplace(), source.split);
    read_audit(reader, value, migration.audit);
  });
}

void read_route_target(YamlReader& reader, const Field& field, std::optional<MigrationTarget>& target,
                       TargetSource& source) {
  MigrationTarget& into = target.emplace();
  if (reader.is_null(field) || field.node->IsMap()) return read_target(reader, field, into, source);
  source.at = field.position;
  const bool scalar = field.node->IsScalar();
  const std::optional<std::string> text = scalar ? reader.text(field) : std::nullopt;
  if (scalar && !text) return;  // reported by text()
  if (text == "off") return;
  reader.error(field.position, field.label + ": expected " + std::string(kTargetForm) + " or off, got " +
                                   (scalar ? in_quotes(*text) : std::string("a list")));
}

void check_migration(Config& config, const MigrationSource& section, const std::vector<RouteSource>& routes,
                     std::vector<ConfigError>& errors) {
  for (const Side& side : kSides) {
    if (auto& fallback = config.migration.*side.fallback) {
      resolve_target(config, *fallback, section.*side.fallback_source, "migration." + std::string(side.name),
                     errors);
    }
  }
  for (std::size_t i = 0; i < config.routes.size(); ++i) {
    for (const Side& side : kSides) check_route_side(config, i, routes[i], side, errors);
  }
}

}  // namespace apigw::config
