// Route checks that need every file read first: unique names, upstream references that resolve, and a route
// table that builds (pattern errors and conflicts as routing::RouteTrie reports them). Private to src/config.
#pragma once

#include <vector>

#include "apigw/config/loader.h"

namespace apigw::config {

// Where one route's fields were written; kept beside Config::routes, index for index.
struct RouteSource {
  Position name;          // of the name's value; line 0 when the route has no name
  Position path;          // of match.path's value
  Position upstream;      // of the upstream's value; line 0 when the route has no upstream
  Position auth;          // of the auth value; line 0 when the route has none
  Position cache;         // of the cache value; line 0 when the route has none
  Position cache_scope;   // of cache.scope's value; the cache value's when it has none
  bool path_ok = false;   // match.path parsed, so its pattern can be checked on its own
  bool match_ok = false;  // path, methods and host all parsed, so the route can go into the shared RouteTrie
};

void check_routes(const Config& config, const std::vector<RouteSource>& sources, std::vector<ConfigError>& errors);

}  // namespace apigw::config
