// Route checks that need every file read first: unique names, upstream references that resolve, and a route
// table that builds (pattern errors and conflicts as routing::RouteTrie reports them). Private to src/config.
#pragma once

#include <vector>

#include "apigw/config/loader.h"

namespace apigw::config {

// Where a `split` or `shadow` target was written (a route's, or the `migration` default), for the checks that run
// once every file and the final `migration.buckets` are known. Lines are 0 for what is not written.
struct TargetSource {
  Position at;        // of the target's value: the map, or `off`
  Position upstream;  // of its upstream's value
  Position percent;   // of its percent's value
};

// Where one route's fields were written; kept beside Config::routes, index for index.
struct RouteSource {
  Position name;          // of the name's value; line 0 when the route has no name
  Position path;          // of match.path's value
  Position upstream;      // of the upstream's value; line 0 when the route has no upstream
  Position auth;          // of the auth value; line 0 when the route has none
  Position cache;         // of the cache value; line 0 when the route has none
  Position cache_scope;   // of cache.scope's value; the cache value's when it has none
  Position cache_tags;    // of cache.tags' value; line 0 when the route has none
  Position cache_tag_invalidation;  // of cache.tag_invalidation's value; line 0 when the route has none
  TargetSource split;
  TargetSource shadow;
  Position site;          // of the site's value; line 0 when the route has none
  Position rate_limit;    // of the rate_limit list; line 0 when the route has none
  std::vector<Position> rate_limit_keys;  // of each accepted limit's key, index for index with its rate_limits
  bool path_ok = false;   // match.path parsed, so its pattern can be checked on its own
  bool match_ok = false;  // path, methods and host all parsed, so the route can go into the shared RouteTrie
};

// "route 'users'", or "routes[3]" for a route without a name.
std::string route_label(const Config& config, std::size_t index);
// "upstream 'x' is not defined (defined: a, b)", for a reference to an upstream that no file defines.
std::string upstream_not_defined(const Config& config, const std::string& name);

void check_routes(const Config& config, const std::vector<RouteSource>& sources, std::vector<ConfigError>& errors,
                  std::vector<ConfigError>& warnings);

}  // namespace apigw::config
