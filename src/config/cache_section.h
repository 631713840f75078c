// Reading the `cache` section (the Memcached servers of the response cache, the key prefix, the item size limit
// and the cache API) and a route's `cache` key. Private to src/config.
#pragma once

#include "apigw/config/config.h"
#include "route_checks.h"
#include "yaml_reader.h"

namespace apigw::config {

void read_cache_section(YamlReader& reader, const Field& field, CacheConfig& cache);

// Records where the key and its scope were written in `source`, for the checks that need the whole config.
void read_route_cache(YamlReader& reader, const Field& field, RouteCacheConfig& cache, RouteSource& source);

}  // namespace apigw::config
