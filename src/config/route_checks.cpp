// Cross-file route checks, run once all files of a load are read. Builds a throwaway RouteTrie exactly as the
// snapshot will, so anything the router would refuse at runtime is refused here, with positions.
#include "route_checks.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string_view>

#include "apigw/http/text.h"
#include "apigw/routing/route_trie.h"
#include "position_text.h"

namespace apigw::config {
namespace {

void check_unique_names(const Config& config, const std::vector<RouteSource>& sources,
                        std::vector<ConfigError>& errors) {
  std::map<std::string, std::size_t, std::less<>> first_by_name;
  for (std::size_t i = 0; i < config.routes.size(); ++i) {
    const RouteConfig& route = config.routes[i];
    if (route.name.empty()) continue;
    const auto [first, inserted] = first_by_name.emplace(route.name, i);
    if (inserted) continue;
    errors.push_back({sources[i].name, "route name '" + route.name + "' is already used by the route at " +
                                           position_text(config.routes[first->second].position)});
  }
}

void check_upstream_references(const Config& config, const std::vector<RouteSource>& sources,
                               std::vector<ConfigError>& errors) {
  for (std::size_t i = 0; i < config.routes.size(); ++i) {
    const RouteConfig& route = config.routes[i];
    if (route.upstream.empty() || config.upstreams.contains(route.upstream)) continue;
    errors.push_back(
        {sources[i].upstream, route_label(config, i) + ": " + upstream_not_defined(config, route.upstream)});
  }
}

// The trie names the other route by index ("conflicts with route #3 (why)"); keep only the why.
std::string conflict_reason(const std::string& message) {
  const auto open = message.rfind(" (");
  if (message.empty() || message.back() != ')' || open == std::string::npos) return message;
  return message.substr(open + 2, message.size() - open - 3);
}

void check_route_table(const Config& config, const std::vector<RouteSource>& sources,
                       std::vector<ConfigError>& errors) {
  routing::RouteTrie trie;
  for (std::size_t i = 0; i < config.routes.size(); ++i) {
    const RouteConfig& route = config.routes[i];
    const auto index = static_cast<std::uint32_t>(i);
    std::optional<routing::RouteTrieError> error;
    if (sources[i].match_ok) {
      error = trie.add(route.match.host, route.match.path, route.match.methods, index);
    } else if (sources[i].path_ok) {
      // Its host or methods are bad, so it must not take part in conflicts; its pattern alone is still checked.
      error = routing::RouteTrie().add("", route.match.path, {}, index);
    }
    if (!error) continue;
    if (error->other && *error->other < config.routes.size()) {
      const RouteConfig& other = config.routes[*error->other];
      errors.push_back({sources[i].path, route_label(config, i) + ": path '" + route.match.path +
                                             "' conflicts with " + route_label(config, *error->other) + " at " +
                                             position_text(other.position) + " (" +
                                             conflict_reason(error->message) + ")"});
    } else {
      errors.push_back({sources[i].path, route_label(config, i) + " match.path: " + error->message});
    }
  }
}

}  // namespace

std::string route_label(const Config& config, std::size_t index) {
  const std::string& name = config.routes[index].name;
  return name.empty() ? "routes[" + std::to_string(index) + "]" : "route '" + name + "'";
}

std::string upstream_not_defined(const Config& config, const std::string& name) {
  std::string known;
  for (const auto& [defined, upstream] : config.upstreams) known += (known.empty() ? "" : ", ") + defined;
  return "upstream '" + name + "' is not defined (" +
         (known.empty() ? "no upstreams are defined" : "defined: " + known) + ")";
}

// A route that asks for a token needs somewhere to check it.
void check_auth_references(const Config& config, const std::vector<RouteSource>& sources,
                           std::vector<ConfigError>& errors) {
  if (config.auth.enabled) return;
  for (std::size_t i = 0; i < config.routes.size(); ++i) {
    const RouteAuth auth = config.routes[i].auth;
    if (auth == RouteAuth::kNone) continue;
    errors.push_back({sources[i].auth, route_label(config, i) + ": auth: " +
                                           (auth == RouteAuth::kRequired ? "required" : "optional") +
                                           " needs an auth section (auth.redis, auth.key, ...) in the main file"});
  }
}

bool reads_authorization_header(const AuthConfig& auth) {
  return std::any_of(auth.token_from.begin(), auth.token_from.end(), [](const TokenSource& source) {
    return source.kind == TokenSource::Kind::kHeader && http::iequals(source.name, "Authorization");
  });
}

// The names of a path pattern's parameters (":id", "*rest").
std::vector<std::string_view> pattern_parameters(std::string_view path) {
  std::vector<std::string_view> names;
  std::size_t start = 0;
  while (start < path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view segment = path.substr(start, end - start);
    if (segment.size() > 1 && (segment.front() == ':' || segment.front() == '*')) names.push_back(segment.substr(1));
    start = end + 1;
  }
  return names;
}

// Each `{name}` of a route's tag templates names a parameter of its path; `tag_invalidation: stale` needs a
// window to answer stale in.
void check_cache_tags(const Config& config, std::size_t i, const RouteSource& source,
                      std::vector<ConfigError>& errors) {
  const RouteConfig& route = config.routes[i];
  const std::vector<std::string_view> parameters = pattern_parameters(route.match.path);
  for (const std::string& tag : route.cache.tags) {
    for (std::size_t open = tag.find('{'); open != std::string::npos; open = tag.find('{', open + 1)) {
      const std::string_view name = std::string_view(tag).substr(open + 1, tag.find('}', open) - open - 1);
      if (std::find(parameters.begin(), parameters.end(), name) != parameters.end()) continue;
      errors.push_back({source.cache_tags, route_label(config, i) + " cache.tags: '" + tag + "' uses {" +
                                               std::string(name) + "}, which is not a parameter of the path " +
                                               route.match.path});
    }
  }
  if (route.cache.tag_invalidation == TagInvalidation::kStale && route.cache.stale_while_revalidate.count() == 0) {
    errors.push_back({source.cache_tag_invalidation,
                      route_label(config, i) + " cache.tag_invalidation: stale needs stale_while_revalidate (how "
                                               "long an invalidated entry may be answered while it is refreshed)"});
  }
}

// A cached route needs the cache section, a user to key on when its scope is user, GET or HEAD among its
// methods, and a name short enough for the Memcached key. A shared cache on a route whose tokens come in the
// Authorization header stores only what the upstream marks as shareable: said as a warning.
void check_cache_references(const Config& config, const std::vector<RouteSource>& sources,
                            std::vector<ConfigError>& errors, std::vector<ConfigError>& warnings) {
  for (std::size_t i = 0; i < config.routes.size(); ++i) {
    const RouteConfig& route = config.routes[i];
    if (!route.cache.enabled) continue;
    if (!config.cache.enabled) {
      errors.push_back({sources[i].cache, route_label(config, i) +
                                              ": cache needs a cache section (cache.primary, ...) in the main file"});
    }
    if (route.cache.scope == CacheScope::kUser && route.auth == RouteAuth::kNone) {
      errors.push_back({sources[i].cache_scope, route_label(config, i) +
                                                    " cache.scope: user needs auth: required or optional "
                                                    "(without auth there is no user to key on)"});
    }
    if (route.cache.scope == CacheScope::kShared && route.auth != RouteAuth::kNone &&
        !route.cache.share_authorized && config.auth.enabled && reads_authorization_header(config.auth)) {
      warnings.push_back({sources[i].cache_scope,
                          route_label(config, i) +
                              " cache.scope: shared with tokens in the Authorization header: only responses marked "
                              "public, s-maxage or must-revalidate are stored (scope: user keys them per user; "
                              "share_authorized: true shares them all)"});
    }
    const auto& methods = route.match.methods;
    if (!methods.empty() && std::find(methods.begin(), methods.end(), "GET") == methods.end() &&
        std::find(methods.begin(), methods.end(), "HEAD") == methods.end()) {
      errors.push_back({sources[i].cache, route_label(config, i) +
                                              ": cache applies to GET and HEAD only, and the route matches neither"});
    }
    if (sources[i].path_ok) check_cache_tags(config, i, sources[i], errors);
    if (route.name.size() > kMaxCachedRouteNameBytes) {
      errors.push_back({sources[i].name, route_label(config, i) + ": a cached route's name may have at most " +
                                             std::to_string(kMaxCachedRouteNameBytes) +
                                             " characters (it is part of the Memcached key)"});
    }
  }
}

void check_routes(const Config& config, const std::vector<RouteSource>& sources, std::vector<ConfigError>& errors,
                  std::vector<ConfigError>& warnings) {
  check_unique_names(config, sources, errors);
  check_auth_references(config, sources, errors);
  check_cache_references(config, sources, errors, warnings);
  check_upstream_references(config, sources, errors);
  check_route_table(config, sources, errors);
}

}  // namespace apigw::config
