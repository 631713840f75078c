// Reading the `rate_limits` section (the Redis that holds the fleet's counters, what a failing Redis means) and a
// route's `rate_limit` list, and the checks that need the whole config. Private to src/config.
#pragma once

#include <vector>

#include "apigw/config/config.h"
#include "route_checks.h"
#include "yaml_reader.h"

namespace apigw::config {

void read_rate_limits_section(YamlReader& reader, const Field& field, RateLimitsConfig& limits);

// Records where the list and each entry's key were written in `source`.
void read_route_rate_limits(YamlReader& reader, const Field& field, std::vector<RouteRateLimit>& limits,
                            RouteSource& source);

// A route's rate_limit needs the section; a `user` key needs the route's auth.
void check_rate_limits(const Config& config, const std::vector<RouteSource>& sources,
                       std::vector<ConfigError>& errors);

// "100/s" → 100 per second; the period is s, m, h or d.
struct Rate {
  std::uint64_t count = 0;
  std::chrono::seconds period{1};
};
std::optional<Rate> parse_rate(std::string_view text, std::string& why);
std::optional<RateLimitKey> parse_rate_limit_key(std::string_view text, std::string& why);

}  // namespace apigw::config
