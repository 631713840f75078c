// Tests for the GCRA script's arguments and reply, the limits' Redis keys, a route's prepared limits and how a
// request's key value is found.
#include "apigw/limits/gcra.h"

#include <gtest/gtest.h>

#include "apigw/core/digest.h"
#include "apigw/limits/route_limits.h"

namespace apigw::limits {
namespace {

using std::chrono::seconds;

redis::Reply integer(long long value) {
  redis::Reply reply;
  reply.type = redis::Reply::Type::kInteger;
  reply.integer = value;
  return reply;
}

TEST(Gcra, Arguments) {
  EXPECT_EQ(gcra_arguments("k", 100, seconds(1), 200, 5),
            (std::vector<std::string>{"1", "k", "10000.000000", "2000000.000000", "5"}));
  EXPECT_EQ(gcra_arguments("k", 3, seconds(60), 3, 1)[2], "20000000.000000");
  EXPECT_EQ(gcra_script_sha1(), core::sha1_hex(gcra_script()));
  EXPECT_EQ(gcra_script_sha1().size(), 40u);
}

TEST(Gcra, Reply) {
  redis::Reply reply;
  reply.type = redis::Reply::Type::kArray;
  reply.elements = {integer(3), integer(7), integer(0), integer(1500000)};
  const auto grant = parse_grant(reply);
  ASSERT_TRUE(grant);
  EXPECT_EQ(grant->granted, 3u);
  EXPECT_EQ(grant->remaining, 7u);
  EXPECT_EQ(grant->reset, std::chrono::microseconds(1500000));
  reply.elements.pop_back();
  EXPECT_FALSE(parse_grant(reply));
  reply.elements.push_back(integer(-1));
  EXPECT_FALSE(parse_grant(reply));
  redis::Reply error;
  error.type = redis::Reply::Type::kError;
  error.text = "NOSCRIPT No matching script";
  EXPECT_FALSE(parse_grant(error));
}

TEST(Gcra, KeysHashTheValueAndTagTheRoute) {
  const std::string key = limit_key("search", 1, "user", "42");
  EXPECT_EQ(key, "apigw:rl:{search}:1:user:" + core::sha256_hex("42").substr(0, 24));
  EXPECT_NE(limit_key("search", 1, "user", "42"), limit_key("search", 0, "user", "42"));
  EXPECT_NE(limit_key("search", 1, "user", "42"), limit_key("search", 1, "client_ip", "42"));
  EXPECT_EQ(limit_key("search", 0, "header", std::string(10000, 'x')).size(),
            limit_key("search", 0, "header", "x").size());
}

TEST(RouteLimits, PreparedWithPolicyNamesAndCounters) {
  config::RouteConfig route;
  route.name = "search";
  route.rate_limits = {
      {{config::RateLimitKey::Kind::kUser, {}}, 100, seconds(1), 200, false, {}},
      {{config::RateLimitKey::Kind::kUser, {}}, 5000, seconds(3600), 5000, false, {}},
      {{config::RateLimitKey::Kind::kHeader, "X-Api-Key"}, 10, seconds(60), 10, true, {}},
  };
  core::MetricsRegistry metrics;
  const std::vector<PreparedLimit> limits = prepare_limits(route, metrics);
  ASSERT_EQ(limits.size(), 3u);
  EXPECT_EQ(limits[0].policy, "\"user\";q=100;w=1");
  EXPECT_EQ(limits[1].policy, "\"user-2\";q=5000;w=3600");
  EXPECT_EQ(limits[2].policy, "\"header:x-api-key\";q=10;w=60");
  EXPECT_TRUE(limits[2].shadow);
  // The policy list so far, for a refusal by each limit; a shadow limit adds nothing to it.
  EXPECT_EQ(limits[0].policies, "\"user\";q=100;w=1");
  EXPECT_EQ(limits[1].policies, "\"user\";q=100;w=1, \"user-2\";q=5000;w=3600");
  EXPECT_EQ(limits[2].policies, limits[1].policies);
  EXPECT_EQ(limits[0].spec.policy.max_batch, 5u);
  limits[0].counters.limited->add();
  const core::MetricsRegistry* shards[] = {&metrics};
  const std::string text = core::render_prometheus(shards);
  EXPECT_NE(text.find("apigw_rate_limit_requests_total{route=\"search\",key=\"user\",result=\"limited\"} 1"),
            std::string::npos)
      << text;
}

TEST(RouteLimits, KeyValues) {
  PreparedLimit limit;
  boost::beast::http::fields headers;
  headers.set("X-Api-Key", "k-1");
  limit.key = {config::RateLimitKey::Kind::kUser, {}};
  EXPECT_EQ(key_value(limit, "42", headers).value, "42");
  EXPECT_EQ(key_value(limit, "", headers).kind, "client_ip");  // anonymous: by address
  limit.key = {config::RateLimitKey::Kind::kHeader, "x-api-key"};
  EXPECT_EQ(key_value(limit, "42", headers).value, "k-1");
  headers.erase("X-Api-Key");
  EXPECT_TRUE(key_value(limit, "42", headers).by_client());  // no such header: by address, found by the caller
  limit.key = {config::RateLimitKey::Kind::kRoute, {}};
  EXPECT_EQ(key_value(limit, "42", headers).kind, "route");
  EXPECT_EQ(key_value(limit, "42", headers).value, "");
}

TEST(RouteLimits, WholeSeconds) {
  EXPECT_EQ(whole_seconds(std::chrono::microseconds(0)), 0);
  EXPECT_EQ(whole_seconds(std::chrono::microseconds(1)), 1);
  EXPECT_EQ(whole_seconds(std::chrono::microseconds(1'000'000)), 1);
  EXPECT_EQ(whole_seconds(std::chrono::microseconds(1'000'001)), 2);
}

}  // namespace
}  // namespace apigw::limits
