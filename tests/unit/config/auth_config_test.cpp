// Tests for the `auth` config section and route `auth`: values, defaults, and each error with its line.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>
#include <string_view>

#include "apigw/config/loader.h"
#include "config_test_support.h"

namespace apigw::config {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::string_view kRoutes = R"(
upstreams:
  u: { endpoints: [127.0.0.1:9001] }
routes:
  - { name: open, match: { path: /open }, upstream: u }
  - { name: mine, match: { path: /me }, upstream: u, auth: required }
  - { name: maybe, match: { path: /maybe }, upstream: u, auth: optional }
)";

TEST(AuthConfig, DefaultsWhenTheSectionIsEmpty) {
  const LoadResult result = load(std::string("auth: {}") + std::string(kRoutes));
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  const AuthConfig& auth = result.config->auth;
  EXPECT_TRUE(auth.enabled);
  ASSERT_EQ(auth.redis.nodes.size(), 1u);
  EXPECT_EQ(auth.redis.nodes[0].text(), "127.0.0.1:6379");
  EXPECT_FALSE(auth.redis.cluster);
  EXPECT_EQ(auth.redis.timeout, milliseconds(50));
  EXPECT_EQ(auth.redis.connections, 2u);
  ASSERT_EQ(auth.token_from.size(), 1u);
  EXPECT_EQ(auth.token_from[0].name, "Authorization");
  EXPECT_EQ(auth.key, "session:{token}");
  EXPECT_EQ(auth.user_id.kind, UserIdField::Kind::kString);
  EXPECT_EQ(auth.forward_header, "X-User-Id");
  EXPECT_EQ(auth.cache.ttl, seconds(5));
  EXPECT_EQ(auth.cache.negative_ttl, seconds(1));
  EXPECT_EQ(auth.cache.max_entries, 100000u);
  EXPECT_EQ(auth.on_error, AuthOnError::kReject);
  const auto& routes = result.config->routes;
  EXPECT_EQ(routes[0].auth, RouteAuth::kNone);
  EXPECT_EQ(routes[1].auth, RouteAuth::kRequired);
  EXPECT_EQ(routes[2].auth, RouteAuth::kOptional);
}

TEST(AuthConfig, EveryKey) {
  ::setenv("APIGW_TEST_REDIS_PASSWORD", "s3cret", 1);
  const LoadResult result = load(std::string(R"(
auth:
  redis:
    nodes: [127.0.0.1:7000, "[::1]:7001"]
    cluster: true
    username: gateway
    password: ${APIGW_TEST_REDIS_PASSWORD}
    timeout: 20ms
    connections: 4
  token_from: [header:Authorization, cookie:session_token, query:access_token]
  key: "tok:{token}:v1"
  user_id: json:uid
  forward_header: X-Authenticated-User
  cache: { ttl: 30s, negative_ttl: 0s, max_entries: 0 }
  on_error: anonymous
)") + std::string(kRoutes));
  ::unsetenv("APIGW_TEST_REDIS_PASSWORD");
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  const AuthConfig& auth = result.config->auth;
  ASSERT_EQ(auth.redis.nodes.size(), 2u);
  EXPECT_EQ(auth.redis.nodes[1].text(), "[::1]:7001");
  EXPECT_TRUE(auth.redis.cluster);
  EXPECT_EQ(auth.redis.username, "gateway");
  EXPECT_EQ(auth.redis.password, "s3cret");
  EXPECT_EQ(auth.redis.timeout, milliseconds(20));
  EXPECT_EQ(auth.redis.connections, 4u);
  ASSERT_EQ(auth.token_from.size(), 3u);
  EXPECT_EQ(auth.token_from[1].kind, TokenSource::Kind::kCookie);
  EXPECT_EQ(auth.token_from[2].kind, TokenSource::Kind::kQuery);
  EXPECT_EQ(auth.token_from[2].name, "access_token");
  EXPECT_EQ(auth.key, "tok:{token}:v1");
  EXPECT_EQ(auth.user_id.kind, UserIdField::Kind::kJson);
  EXPECT_EQ(auth.user_id.field, "uid");
  EXPECT_EQ(auth.forward_header, "X-Authenticated-User");
  EXPECT_EQ(auth.cache.ttl, seconds(30));
  EXPECT_EQ(auth.cache.negative_ttl, seconds(0));
  EXPECT_EQ(auth.cache.max_entries, 0u);
  EXPECT_EQ(auth.on_error, AuthOnError::kAnonymous);
}

TEST(AuthConfig, HashFieldAndBareKeyTemplate) {
  const LoadResult result = load(std::string("auth: { key: \"{token}\", user_id: \"hash:user_id\" }") +
                                 std::string(kRoutes));
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  EXPECT_EQ(result.config->auth.key, "{token}");
  EXPECT_EQ(result.config->auth.user_id, (UserIdField{UserIdField::Kind::kHash, "user_id"}));
}

TEST(AuthConfig, RouteAuthNeedsTheSection) {
  const LoadResult result = load(kRoutes);
  ASSERT_EQ(result.errors.size(), 2u) << all_errors(result);
  EXPECT_EQ(result.errors[0].position.line, 5);
  EXPECT_NE(result.errors[0].message.find("route 'mine': auth: required needs an auth section"), std::string::npos);
  EXPECT_EQ(result.errors[1].position.line, 6);
  EXPECT_NE(result.errors[1].message.find("auth: optional needs an auth section"), std::string::npos);
}

TEST(AuthConfig, RouteAuthValue) {
  const LoadResult result = load(R"(
auth: {}
upstreams:
  u: { endpoints: [127.0.0.1:9001] }
routes:
  - { name: r, match: { path: /r }, upstream: u, auth: yes }
)");
  EXPECT_TRUE(only_error(result, 5, "route 'r' auth: bad value 'yes': expected required, optional or none"));
}

struct BadAuth {
  std::string_view section;
  int line;
  std::string_view fragment;
};

class AuthConfigErrors : public ::testing::TestWithParam<BadAuth> {};

TEST_P(AuthConfigErrors, ReportedWithLine) {
  const LoadResult result = load(std::string(GetParam().section) + std::string(kRoutes));
  EXPECT_TRUE(only_error(result, GetParam().line, GetParam().fragment));
  EXPECT_FALSE(result.config.has_value());
}

INSTANTIATE_TEST_SUITE_P(
    Section, AuthConfigErrors,
    ::testing::Values(
        BadAuth{"auth:\n  redis: { nodes: [] }\n", 2, "auth.redis.nodes: needs at least one node"},
        BadAuth{"auth:\n  redis:\n    nodes:\n", 3, "auth.redis.nodes: needs at least one node"},
        BadAuth{"auth:\n  redis: { nodes: [localhost] }\n", 2, "auth.redis.nodes[0]"},
        BadAuth{"auth:\n  redis:\n    cluster: true\n    db: 3\n", 4, "a Redis Cluster has only database 0"},
        BadAuth{"auth:\n  redis: { db: 16 }\n", 2, "auth.redis.db"},
        BadAuth{"auth:\n  redis: { username: gw }\n", 2, "username needs a password"},
        BadAuth{"auth:\n  redis: { connections: 0 }\n", 2, "auth.redis.connections"},
        BadAuth{"auth:\n  redis: { timeout: 0s }\n", 2, "auth.redis.timeout"},
        BadAuth{"auth:\n  redis: { host: x }\n", 2, "unknown key 'host'"},
        BadAuth{"auth:\n  token_from: [body:token]\n", 2, "bad token source 'body:token'"},
        BadAuth{"auth:\n  token_from: [Authorization]\n", 2, "bad token source 'Authorization'"},
        BadAuth{"auth:\n  token_from: [\"header:\"]\n", 2, "the name after ':' must be letters"},
        BadAuth{"auth:\n  token_from: [\"cookie:a b\"]\n", 2, "the name after ':' must be letters"},
        BadAuth{"auth:\n  token_from: [\"query:a=b\"]\n", 2, "the name after ':' must be letters"},
        BadAuth{"auth:\n  token_from: [cookie:s, cookie:s]\n", 2, "'cookie:s' is listed twice"},
        BadAuth{"auth:\n  token_from: []\n", 2, "auth.token_from: needs at least one source"},
        BadAuth{"auth:\n  key: \"session:token\"\n", 2, "must contain {token} exactly once"},
        BadAuth{"auth:\n  key: \"{token}:{token}\"\n", 2, "must contain {token} exactly once"},
        BadAuth{"auth:\n  user_id: hash\n", 2, "bad user_id 'hash': expected string, hash:FIELD or json:FIELD"},
        BadAuth{"auth:\n  user_id: \"hash:\"\n", 2, "bad user_id"},
        BadAuth{"auth:\n  user_id: String\n", 2, "bad user_id"},
        BadAuth{"auth:\n  user_id: \"json:a b\"\n", 2, "bad user_id"},
        BadAuth{"auth:\n  user_id: list:x\n", 2, "bad user_id"},
        BadAuth{"auth:\n  forward_header: X-Forwarded-For\n", 2, "a header apigw manages itself"},
        BadAuth{"auth:\n  forward_header: \"X User\"\n", 2, "is not a header name"},
        BadAuth{"auth:\n  cache: { ttl: soon }\n", 2, "auth.cache.ttl"},
        BadAuth{"auth:\n  on_error: allow\n", 2, "expected reject or anonymous"},
        BadAuth{"auth:\n  realm: x\n", 2, "unknown key 'realm'"}));

}  // namespace
}  // namespace apigw::config
