// Tests for the `rate_limits` section and a route's `rate_limit`: values, defaults, and each error with its line.
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "apigw/config/loader.h"
#include "apigw/config/snapshot.h"
#include "config_test_support.h"

namespace apigw::config {
namespace {

using std::chrono::seconds;

constexpr std::string_view kSection = R"(
rate_limits:
  redis: { nodes: [127.0.0.1:6390], timeout: 100ms }
  on_error: deny
auth: { redis: { nodes: [127.0.0.1:6379] } }
upstreams:
  search: { endpoints: [127.0.0.1:9001] }
)";

LoadResult load_route(std::string_view route) {
  return load(std::string(kSection) + "routes:\n" + std::string(route));
}

TEST(RateLimitsConfig, SectionAndRouteLimits) {
  const LoadResult result = load_route(R"(  - name: search
    match: { path: /search }
    upstream: search
    auth: optional
    rate_limit:
      - { key: user, rate: 100/s, burst: 200 }
      - { key: client_ip, rate: 1000/m }
      - { key: "header:X-Api-Key", rate: 5000/h, shadow: true }
      - { key: route, rate: 100000/d }
)");
  ASSERT_TRUE(result.config) << all_errors(result);
  const RateLimitsConfig& section = result.config->rate_limits;
  EXPECT_TRUE(section.enabled);
  EXPECT_EQ(section.on_error, RateLimitOnError::kDeny);
  EXPECT_TRUE(section.headers);
  EXPECT_EQ(section.redis.nodes.front().port, 6390);
  const auto& limits = result.config->routes[0].rate_limits;
  ASSERT_EQ(limits.size(), 4u);
  EXPECT_EQ(limits[0].key.kind, RateLimitKey::Kind::kUser);
  EXPECT_EQ(limits[0].count, 100u);
  EXPECT_EQ(limits[0].period, seconds(1));
  EXPECT_EQ(limits[0].burst, 200u);
  EXPECT_FALSE(limits[0].shadow);
  EXPECT_EQ(limits[1].key.kind, RateLimitKey::Kind::kClientIp);
  EXPECT_EQ(limits[1].period, seconds(60));
  EXPECT_EQ(limits[1].burst, 1000u);  // default: the count
  EXPECT_EQ(limits[2].key.kind, RateLimitKey::Kind::kHeader);
  EXPECT_EQ(limits[2].key.header, "X-Api-Key");
  EXPECT_EQ(limits[2].period, seconds(3600));
  EXPECT_TRUE(limits[2].shadow);
  EXPECT_EQ(limits[3].key.kind, RateLimitKey::Kind::kRoute);
  EXPECT_EQ(limits[3].period, seconds(86400));
  const SnapshotResult built = build_snapshot(*result.config, 1);
  ASSERT_TRUE(built.snapshot);
  ASSERT_EQ(built.snapshot->rate_limit_redis_nodes.size(), 1u);
  EXPECT_EQ(built.snapshot->rate_limit_redis_nodes[0].port, 6390);
}

TEST(RateLimitsConfig, Defaults) {
  const LoadResult result = load("rate_limits: {}\nupstreams:\n  u: { endpoints: [127.0.0.1:1] }\nroutes:\n"
                                 "  - { name: a, match: { path: /a }, upstream: u }\n");
  ASSERT_TRUE(result.config) << all_errors(result);
  EXPECT_EQ(result.config->rate_limits.on_error, RateLimitOnError::kAllow);
  EXPECT_EQ(result.config->rate_limits.redis.nodes.front().port, 6379);
}

TEST(RateLimitsConfig, Errors) {
  struct Case {
    std::string route;
    int line;
    std::string fragment;
  };
  const std::string head = "  - name: r\n    match: { path: /r }\n    upstream: search\n";
  const std::vector<Case> cases{
      {head + "    rate_limit: [ { key: user, rate: 10/s } ]\n", 11, "user needs auth: required or optional"},
      {head + "    rate_limit: [ { key: nobody, rate: 10/s } ]\n", 11,
       "expected user, client_ip, route or header:NAME"},
      {head + "    rate_limit: [ { key: \"header:X Y\", rate: 10/s } ]\n", 11, "is not a header name"},
      {head + "    rate_limit: [ { key: route, rate: 10/w } ]\n", 11, "expected a rate such as 100/s"},
      {head + "    rate_limit: [ { key: route, rate: 0/s } ]\n", 11, "expected a rate such as 100/s"},
      {head + "    rate_limit: [ { key: route, rate: 10/s, burst: 0 } ]\n", 11, "expected a whole number from 1"},
      {head + "    rate_limit: [ { key: route } ]\n", 11, "needs a rate"},
      {head + "    rate_limit: [ { rate: 1/s } ]\n", 11, "needs a key"},
      {head + "    rate_limit: [ { key: route, rate: 1/s, per: 1 } ]\n", 11, "unknown key 'per'"},
      {head + "    rate_limit: { key: route, rate: 1/s }\n", 11, "expected a list"},
  };
  for (const Case& c : cases) {
    const LoadResult result = load_route(c.route);
    EXPECT_TRUE(has_error(result, c.line, c.fragment)) << c.route;
    EXPECT_EQ(result.errors.size(), 1u) << c.route << all_errors(result);
  }
  // Too many limits.
  std::string many = head + "    rate_limit:\n";
  for (int i = 0; i < 9; ++i) many += "      - { key: route, rate: 1/s }\n";
  EXPECT_TRUE(has_error(load_route(many), 20, "at most 8 limits"));
  // A limit without the section.
  const LoadResult plain = load(
      "upstreams:\n  u: { endpoints: [127.0.0.1:1] }\nroutes:\n"
      "  - { name: a, match: { path: /a }, upstream: u, rate_limit: [{ key: route, rate: 1/s }] }\n");
  EXPECT_TRUE(only_error(plain, 4, "route 'a' rate_limit: needs a rate_limits section")) << all_errors(plain);
  // The section's own keys.
  EXPECT_TRUE(has_error(load("rate_limits: { on_error: maybe }\n"), 1, "expected allow or deny"));
  EXPECT_TRUE(has_error(load("rate_limits: { redis: { nodes: [nowhere] } }\n"), 1, "rate_limits.redis"));
}

}  // namespace
}  // namespace apigw::config
