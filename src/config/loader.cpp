// Loads a config file and its includes into a typed Config: walks the YAML section by section, then runs the
// checks that need every file. Runs at start-up and on reload only, never on a worker thread.
#include "apigw/config/loader.h"

#include <glob.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>

#include "apigw/core/text_file.h"
#include "auth_section.h"
#include "cache_section.h"
#include "control_section.h"
#include "edge_section.h"
#include "limits_section.h"
#include "migration_section.h"
#include "position_text.h"
#include "route_checks.h"
#include "tls_section.h"
#include "tracing_section.h"
#include "value_parsers.h"
#include "yaml_document.h"
#include "yaml_reader.h"

namespace apigw::config {
namespace {

namespace fs = std::filesystem;

constexpr std::array<std::string_view, 14> kMainKeys{"server",      "log",       "admin",     "reload",
                                                     "auth",        "cache",     "migration", "control",
                                                     "rate_limits", "tracing",   "edge",      "upstreams",
                                                     "routes",      "include"};
constexpr std::array<std::string_view, 2> kIncludeKeys{"upstreams", "routes"};
constexpr std::array<std::string_view, 7> kServerKeys{"listen",        "workers",       "trusted_proxies", "limits",
                                                      "debug_headers", "drain_timeout", "tls"};
constexpr std::array<std::string_view, 5> kLimitsKeys{"max_header_bytes", "max_uri_bytes", "max_body_bytes",
                                                      "header_timeout", "idle_timeout"};
constexpr std::array<std::string_view, 2> kLogKeys{"access", "level"};
constexpr std::array<std::string_view, 2> kAdminKeys{"listen", "tls"};
constexpr std::array<std::string_view, 2> kReloadKeys{"watch", "interval"};
constexpr std::array<std::string_view, 9> kUpstreamKeys{"endpoints",    "balance",        "connect_timeout",
                                                        "timeout",      "max_connections", "retries",
                                                        "health_check", "passive_health", "tls"};
constexpr std::array<std::string_view, 5> kHealthCheckKeys{"path", "interval", "timeout", "unhealthy_after",
                                                           "healthy_after"};
constexpr std::array<std::string_view, 2> kPassiveHealthKeys{"unhealthy_after", "eject_for"};
constexpr unsigned kMaxHealthThreshold = 1000;
constexpr std::array<std::string_view, 1> kRetriesKeys{"attempts"};
constexpr std::array<std::string_view, 10> kRouteKeys{"name",  "match", "upstream", "rewrite",    "auth",
                                                      "cache", "split", "shadow",   "rate_limit", "site"};
constexpr std::array<std::string_view, 3> kMatchKeys{"path", "methods", "host"};
constexpr std::array<std::string_view, 1> kRewriteKeys{"strip_prefix"};
constexpr unsigned kMaxConnections = 1'000'000;

// Everything one load accumulates over the main file and its includes.
struct LoadState {
  Config config;
  std::vector<ConfigError> errors;
  std::vector<ConfigError> warnings;
  std::vector<RouteSource> route_sources;  // beside config.routes, index for index
  MigrationSource migration_source;        // where the main file's migration defaults were written
  Position edge_default;                   // of edge.default's value; line 0 when it is not written
  std::vector<fs::path> loaded;            // canonical forms of config.files, to notice a file read twice
};

// ---- server and log ---------------------------------------------------------------------------------------

void read_limits(YamlReader& reader, const Field& field, Limits& limits) {
  reader.for_each_field(field, kLimitsKeys, [&](std::string_view key, const Field& value) {
    if (key == "header_timeout") return assign(limits.header_timeout, reader.value(value, parse_positive_duration));
    if (key == "idle_timeout") return assign(limits.idle_timeout, reader.value(value, parse_positive_duration));
    std::uint64_t& target = key == "max_header_bytes" ? limits.max_header_bytes
                            : key == "max_uri_bytes"  ? limits.max_uri_bytes
                                                      : limits.max_body_bytes;
    assign(target, reader.value(value, parse_positive_size));
  });
}

void read_server(YamlReader& reader, const Field& field, ServerConfig& server) {
  reader.for_each_field(field, kServerKeys, [&](std::string_view key, const Field& value) {
    if (key == "listen") return assign(server.listen, reader.value(value, parse_listen));
    if (key == "workers") return assign(server.workers, reader.value(value, whole_number(0, kMaxWorkers)));
    if (key == "limits") return read_limits(reader, value, server.limits);
    if (key == "debug_headers") return assign(server.debug_headers, reader.value(value, parse_bool));
    if (key == "drain_timeout") return assign(server.drain_timeout, reader.value(value, parse_duration_value));
    if (key == "tls") return void(server.tls = read_tls_server(reader, value));
    reader.for_each_item(value, [&](std::size_t, const Field& item) {
      if (auto cidr = reader.value(item, parse_cidr)) server.trusted_proxies.push_back(std::move(*cidr));
    });
  });
}

void read_log(YamlReader& reader, const Field& field, LogConfig& log) {
  reader.for_each_field(field, kLogKeys, [&](std::string_view key, const Field& value) {
    if (key == "access") return assign(log.access, reader.value(value, parse_access_log));
    assign(log.level, reader.value(value, parse_log_level));
  });
}

void read_admin(YamlReader& reader, const Field& field, AdminConfig& admin) {
  reader.for_each_field(field, kAdminKeys, [&](std::string_view key, const Field& value) {
    if (key == "tls") return void(admin.tls = read_tls_server(reader, value));
    if (auto listen = reader.value(value, parse_optional_listen)) {
      admin.enabled = listen->has_value();
      if (*listen) admin.listen = **listen;
    }
  });
}

void read_reload(YamlReader& reader, const Field& field, ReloadConfig& reload) {
  reader.for_each_field(field, kReloadKeys, [&](std::string_view key, const Field& value) {
    if (key == "watch") return assign(reload.watch, reader.value(value, parse_bool));
    assign(reload.interval, reader.value(value, parse_positive_duration));
  });
}

// ---- upstreams --------------------------------------------------------------------------------------------

void read_health_check(YamlReader& reader, const Field& field, HealthCheckConfig& check) {
  check.enabled = true;
  reader.for_each_field(field, kHealthCheckKeys, [&](std::string_view key, const Field& value) {
    if (key == "path") return assign(check.path, reader.value(value, parse_health_path));
    if (key == "interval") return assign(check.interval, reader.value(value, parse_positive_duration));
    if (key == "timeout") return assign(check.timeout, reader.value(value, parse_positive_duration));
    unsigned& target = key == "unhealthy_after" ? check.unhealthy_after : check.healthy_after;
    assign(target, reader.value(value, whole_number(1, kMaxHealthThreshold)));
  });
}

void read_passive_health(YamlReader& reader, const Field& field, PassiveHealthConfig& passive) {
  reader.for_each_field(field, kPassiveHealthKeys, [&](std::string_view key, const Field& value) {
    if (key == "eject_for") return assign(passive.eject_for, reader.value(value, parse_positive_duration));
    assign(passive.unhealthy_after, reader.value(value, whole_number(0, kMaxHealthThreshold)));
  });
}

UpstreamConfig read_upstream(YamlReader& reader, const std::string& name, const Field& field) {
  UpstreamConfig upstream;
  upstream.name = name;
  upstream.position = field.key;
  Field body = field;
  body.label = "upstream '" + name + "'";
  std::size_t endpoints_given = 0;
  bool endpoints_misshapen = false;  // already reported as not a list
  reader.for_each_field(body, kUpstreamKeys, [&](std::string_view key, const Field& value) {
    if (key == "balance") return assign(upstream.balance, reader.value(value, parse_balance));
    if (key == "timeout") return assign(upstream.timeout, reader.value(value, parse_positive_duration));
    if (key == "connect_timeout") {
      return assign(upstream.connect_timeout, reader.value(value, parse_positive_duration));
    }
    if (key == "max_connections") {
      return assign(upstream.max_connections, reader.value(value, whole_number(1, kMaxConnections)));
    }
    if (key == "retries") {
      return reader.for_each_field(value, kRetriesKeys, [&](std::string_view, const Field& attempts) {
        assign(upstream.retry_attempts, reader.value(attempts, whole_number(0, kMaxRetryAttempts)));
      });
    }
    if (key == "health_check") return read_health_check(reader, value, upstream.health_check);
    if (key == "passive_health") return read_passive_health(reader, value, upstream.passive_health);
    if (key == "tls") return void(upstream.tls = read_tls_client(reader, value));
    endpoints_misshapen = !reader.is_null(value) && !value.node->IsSequence();
    reader.for_each_item(value, [&](std::size_t, const Field& item) {
      ++endpoints_given;
      if (auto endpoint = reader.value(item, parse_endpoint)) upstream.endpoints.push_back(std::move(*endpoint));
    });
  });
  // An upstream that is neither empty nor a map has had its shape reported already.
  if (endpoints_given == 0 && !endpoints_misshapen && (reader.is_null(field) || field.node->IsMap())) {
    reader.error(field.key, body.label + " has no endpoints");
  }
  return upstream;
}

void read_upstreams(LoadState& state, YamlReader& reader, const Field& field) {
  reader.for_each_field(field, {}, [&](std::string_view key, const Field& value) {
    const std::string name(key);
    std::string why;
    if (!parse_name(name, why)) reader.error(value.key, "upstream name: " + why);
    UpstreamConfig upstream = read_upstream(reader, name, value);
    const auto existing = state.config.upstreams.find(name);
    if (existing != state.config.upstreams.end()) {
      reader.error(value.key, "upstream '" + name + "' is already defined at " +
                                  position_text(existing->second.position));
    } else {
      // Kept even when invalid, so that routes naming it do not add "not defined" to the real error.
      state.config.upstreams.emplace(name, std::move(upstream));
    }
  });
}

// ---- routes -----------------------------------------------------------------------------------------------

// Returns false when a method is bad or repeated, or the list is empty (leaving `methods` out means any method).
bool read_methods(YamlReader& reader, const Field& field, std::vector<std::string>& methods) {
  if (!reader.is_null(field) && !reader.expect_list(field)) return false;
  bool ok = true;
  reader.for_each_item(field, [&](std::size_t, const Field& item) {
    const auto method = reader.value(item, parse_method);
    if (method && std::find(methods.begin(), methods.end(), *method) != methods.end()) {
      reader.error(item.position, field.label + ": '" + *method + "' is listed twice");
      ok = false;
    } else if (method) {
      methods.push_back(*method);
    } else {
      ok = false;
    }
  });
  if (ok && methods.empty()) {
    reader.error(field.position, field.label + ": is empty; leave it out to match any method");
    ok = false;
  }
  return ok;
}

// Returns whether path, methods and host all parsed, so that the route can be checked against the others.
bool read_match(YamlReader& reader, const Field& field, RouteMatch& match, RouteSource& source) {
  if (!reader.is_null(field) && !reader.expect_map(field)) return false;
  bool ok = true;
  bool has_path = false;
  reader.for_each_field(field, kMatchKeys, [&](std::string_view key, const Field& value) {
    if (key == "path") {
      has_path = true;
      source.path = value.position;
      const auto path = reader.text(value);
      source.path_ok = path.has_value();
      ok = ok && path.has_value();
      return assign(match.path, path);
    }
    if (key == "methods") {
      ok = read_methods(reader, value, match.methods) && ok;
      return;
    }
    const auto host = reader.value(value, parse_route_host);
    ok = ok && host.has_value();
    assign(match.host, host);
  });
  if (!has_path) reader.error(field.position, field.label + ": needs a path");
  return ok && has_path;
}

// The label errors use for a route: by name when it has a plain one, else by index.
std::string route_label(const Field& item, std::size_t index) {
  if (item.node->IsMap()) {
    const YAML::Node name = (*item.node)["name"];
    std::string why;
    if (name.IsDefined() && name.IsScalar() && parse_name(name.Scalar(), why)) {
      return "route '" + name.Scalar() + "'";
    }
  }
  return "routes[" + std::to_string(index) + "]";
}

void read_route(LoadState& state, YamlReader& reader, std::size_t index, const Field& item) {
  RouteConfig route;
  RouteSource source;
  route.position = item.position;
  Field body = item;
  body.label = route_label(item, index);
  if (reader.is_null(item)) return reader.error(item.position, body.label + ": is empty");
  if (!reader.expect_map(body)) return;
  bool has_name = false;
  bool has_match = false;
  Position prefix_at;
  reader.for_each_field(body, kRouteKeys, [&](std::string_view key, const Field& value) {
    if (key == "name") {
      has_name = true;
      source.name = value.position;
      return assign(route.name, reader.value(value, parse_name));
    }
    if (key == "match") {
      has_match = true;
      source.match_ok = read_match(reader, value, route.match, source);
      return;
    }
    if (key == "upstream") {
      source.upstream = value.position;
      return assign(route.upstream, reader.text(value));
    }
    if (key == "auth") {
      source.auth = value.position;
      return assign(route.auth, reader.value(value, parse_route_auth));
    }
    if (key == "cache") return read_route_cache(reader, value, route.cache, source);
    if (key == "split") return read_route_target(reader, value, route.split, source.split);
    if (key == "shadow") return read_route_target(reader, value, route.shadow, source.shadow);
    if (key == "rate_limit") return read_route_rate_limits(reader, value, route.rate_limits, source);
    if (key == "site") {
      source.site = value.position;
      return assign(route.site, reader.value(value, parse_site_name));
    }
    reader.for_each_field(value, kRewriteKeys, [&](std::string_view, const Field& prefix) {
      prefix_at = prefix.position;
      assign(route.strip_prefix, reader.value(prefix, parse_strip_prefix));
    });
  });
  if (!has_name) reader.error(item.position, body.label + ": needs a name");
  if (!has_match) reader.error(item.position, body.label + ": needs a match with a path");
  if (source.upstream.line == 0) reader.error(item.position, body.label + ": needs an upstream");
  if (!route.strip_prefix.empty() && source.match_ok) {
    if (auto why = strip_prefix_mismatch(route.strip_prefix, route.match.path)) {
      reader.error(prefix_at, body.label + " rewrite.strip_prefix: " + *why);
    }
  }
  state.config.routes.push_back(std::move(route));
  state.route_sources.push_back(source);
}

void read_routes(LoadState& state, YamlReader& reader, const Field& field) {
  reader.for_each_item(field, [&](std::size_t index, const Field& item) { read_route(state, reader, index, item); });
}

// ---- files and includes -----------------------------------------------------------------------------------

fs::path canonical_form(const fs::path& path) {
  std::error_code ec;
  fs::path canonical = fs::weakly_canonical(path, ec);
  return ec ? path.lexically_normal() : canonical;
}

bool already_loaded(const LoadState& state, const fs::path& path) {
  const fs::path canonical = canonical_form(path);
  return std::find(state.loaded.begin(), state.loaded.end(), canonical) != state.loaded.end();
}

void read_include_file(LoadState& state, const fs::path& path, const Position& included_at) {
  std::string text;
  std::string why;
  if (!core::read_text_file(path, text, why)) {
    state.errors.push_back({included_at, "include '" + path.string() + "': cannot read: " + why});
    return;
  }
  state.config.files.push_back(path.string());
  state.loaded.push_back(canonical_form(path));
  YamlReader reader(path.string(), state.errors, &state.warnings);
  const auto root = parse_document(reader, text);
  if (!root) return;
  const auto visit = [&](std::string_view key, const Field& value) {
    if (key == "upstreams") return read_upstreams(state, reader, value);
    read_routes(state, reader, value);
  };
  reader.for_each_field(reader.root(*root), kIncludeKeys, visit, "; an include file holds only upstreams and routes");
}

bool is_glob(std::string_view pattern) { return pattern.find_first_of("*?[") != std::string_view::npos; }

std::string glob_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (std::strchr("*?[]\\", c) != nullptr) out += '\\';
    out += c;
  }
  return out;
}

// Sorted matches of `pattern` under `base`; a pattern that matches nothing is not an error.
std::vector<fs::path> expand_glob(const fs::path& base, const std::string& pattern, std::string& why) {
  const fs::path relative(pattern);
  const std::string full =
      relative.is_absolute() || base.empty() ? pattern : glob_escape(base.string()) + "/" + pattern;
  glob_t found{};
  const int rc = ::glob(full.c_str(), 0, nullptr, &found);
  std::vector<fs::path> paths;
  if (rc == 0) paths.assign(found.gl_pathv, found.gl_pathv + found.gl_pathc);
  if (rc != 0 && rc != GLOB_NOMATCH) why = rc == GLOB_NOSPACE ? "out of memory" : "cannot read a directory";
  ::globfree(&found);
  std::sort(paths.begin(), paths.end());
  return paths;
}

void read_include(LoadState& state, YamlReader& reader, const fs::path& base, const Field& item) {
  const auto pattern = reader.text(item);
  if (!pattern) return;
  if (pattern->empty()) return reader.error(item.position, item.label + ": needs a file name or glob");
  if (is_glob(*pattern)) {
    std::string why;
    for (const fs::path& path : expand_glob(base, *pattern, why)) {
      std::error_code ec;
      // A glob may well match the main file or one named elsewhere; reading it twice would only duplicate.
      if (!fs::is_regular_file(path, ec) || already_loaded(state, path)) continue;
      read_include_file(state, path, item.position);
    }
    if (!why.empty()) reader.error(item.position, "include '" + *pattern + "': " + why);
    return;
  }
  const fs::path path = base / *pattern;
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    reader.error(item.position, "include '" + *pattern + "': " + path.string() + " does not exist");
  } else if (already_loaded(state, path)) {
    reader.error(item.position, "include '" + *pattern + "': " + path.string() + " is already loaded");
  } else {
    read_include_file(state, path, item.position);
  }
}

void read_main(LoadState& state, YamlReader& reader, const YAML::Node& root) {
  YAML::Node include_node;
  std::optional<Field> includes;  // read after the main file, so that its routes come first
  reader.for_each_field(reader.root(root), kMainKeys, [&](std::string_view key, const Field& value) {
    if (key == "server") return read_server(reader, value, state.config.server);
    if (key == "log") return read_log(reader, value, state.config.log);
    if (key == "admin") return read_admin(reader, value, state.config.admin);
    if (key == "reload") return read_reload(reader, value, state.config.reload);
    if (key == "auth") return read_auth(reader, value, state.config.auth);
    if (key == "cache") return read_cache_section(reader, value, state.config.cache);
    if (key == "migration") {
      return read_migration_section(reader, value, state.config.migration, state.migration_source);
    }
    if (key == "control") return read_control(reader, value, state.config.control);
    if (key == "rate_limits") return read_rate_limits_section(reader, value, state.config.rate_limits);
    if (key == "tracing") return read_tracing_section(reader, value, state.config.tracing);
    if (key == "edge") return read_edge(reader, value, state.config.edge, state.edge_default);
    if (key == "upstreams") return read_upstreams(state, reader, value);
    if (key == "routes") return read_routes(state, reader, value);
    include_node = *value.node;
    includes = value;
    includes->node = &include_node;
  });
  if (!includes) return;
  const fs::path base = fs::path(reader.file()).parent_path();
  reader.for_each_item(*includes, [&](std::size_t, const Field& item) { read_include(state, reader, base, item); });
}

// Errors in file order (main, then includes), then by position, whatever order the checks found them in.
void sort_errors(const std::vector<std::string>& files, std::vector<ConfigError>& errors) {
  const auto file_index = [&](const std::string& file) {
    return std::find(files.begin(), files.end(), file) - files.begin();
  };
  std::stable_sort(errors.begin(), errors.end(), [&](const ConfigError& a, const ConfigError& b) {
    const auto fa = file_index(a.position.file);
    const auto fb = file_index(b.position.file);
    if (fa != fb) return fa < fb;
    if (a.position.line != b.position.line) return a.position.line < b.position.line;
    return a.position.column < b.position.column;
  });
}

LoadResult load_text(std::string_view yaml, const std::string& name) {
  LoadState state;
  state.config.source_file = name;
  state.config.files.push_back(name);
  state.loaded.push_back(canonical_form(name));
  YamlReader reader(name, state.errors, &state.warnings);
  if (const auto root = parse_document(reader, yaml)) read_main(state, reader, *root);
  check_routes(state.config, state.route_sources, state.errors, state.warnings);
  check_migration(state.config, state.migration_source, state.route_sources, state.errors);
  check_rate_limits(state.config, state.route_sources, state.errors);
  check_edge(state.config, state.edge_default, state.route_sources, state.errors);

  LoadResult result;
  sort_errors(state.config.files, state.errors);
  sort_errors(state.config.files, state.warnings);
  result.errors = std::move(state.errors);
  result.warnings = std::move(state.warnings);
  if (result.errors.empty()) result.config = std::move(state.config);
  return result;
}

}  // namespace

LoadResult load_file(const std::string& path) {
  std::string text;
  std::string why;
  if (!core::read_text_file(path, text, why)) {
    LoadResult result;
    result.errors.push_back({Position{path, 0, 0}, "cannot read config file: " + why});
    return result;
  }
  return load_text(text, path);
}

LoadResult load_string(std::string_view yaml, const std::string& name) { return load_text(yaml, name); }

}  // namespace apigw::config
