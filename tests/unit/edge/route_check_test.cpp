// Tests for route-table checks: how one request resolves (route, 404/405/400, upstream after the split, path after
// rewrites, site, shadow), case files and their errors, and the failure lines that name the route that matched.
#include "apigw/edge/route_check.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "apigw/config/loader.h"
#include "apigw/config/snapshot.h"

namespace apigw::edge {
namespace {

constexpr std::string_view kCheckedConfig = R"(edge:
  sites: { onprem: https://onprem.example.com, cloud: https://cloud.example.com }
  default: onprem
migration:
  affinity: [user_id, header:X-Device-Id, client_ip]
  beta_users: ["1001"]
  shadow_ignore: ["POST /users/*/payments"]
upstreams:
  users-onprem: { endpoints: [127.0.0.1:9001] }
  users-cloud: { endpoints: [127.0.0.1:9002] }
routes:
  - name: user-profile
    match: { path: /users/:id, methods: [GET] }
    upstream: users-onprem
    site: cloud
    split: { upstream: users-cloud, percent: 25 }
  - name: user-payments
    match: { path: /users/:id/payments }
    upstream: users-onprem
    shadow: { upstream: users-cloud, percent: 100 }
  - name: legacy
    match: { path: /v1/*rest }
    upstream: users-onprem
    rewrite: { strip_prefix: /v1 }
)";

config::SnapshotPtr snapshot() {
  static const config::SnapshotPtr built = [] {
    const config::LoadResult loaded = config::load_string(kCheckedConfig, "/etc/apigw/apigw.yaml");
    EXPECT_TRUE(loaded.config) << (loaded.errors.empty() ? "" : loaded.errors.front().text());
    return loaded.config ? config::build_snapshot(*loaded.config, 1).snapshot : nullptr;
  }();
  return built;
}

RouteOutcome resolve_one(std::string method, std::string target, std::string user = "",
                         std::string client_ip = "127.0.0.1") {
  RouteRequest request;
  request.method = std::move(method);
  request.target = std::move(target);
  request.user = std::move(user);
  request.client_ip = std::move(client_ip);
  return resolve(*snapshot(), request);
}

TEST(RouteResolve, RoutedRequestWithSplitBySticky) {
  ASSERT_TRUE(snapshot());
  // 25 % is buckets [0, 2500): user 42 is in, user 7042 is not.
  const RouteOutcome in = resolve_one("GET", "/users/42?fields=name", "42");
  ASSERT_TRUE(in.route);
  EXPECT_EQ(in.status, 0u);
  EXPECT_EQ(snapshot()->config.routes[*in.route].name, "user-profile");
  EXPECT_EQ(in.params, (std::vector<std::pair<std::string, std::string>>{{"id", "42"}}));
  EXPECT_TRUE(in.has_split);
  EXPECT_TRUE(in.moved);
  EXPECT_EQ(in.bucket, 42u);
  EXPECT_EQ(in.upstream, "users-cloud");
  EXPECT_EQ(in.upstream_path, "/users/42?fields=name");
  EXPECT_EQ(in.site, "cloud");
  const RouteOutcome out = resolve_one("GET", "/users/42", "7042");
  EXPECT_FALSE(out.moved);
  EXPECT_EQ(out.upstream, "users-onprem");
  // A beta user is always moved.
  EXPECT_TRUE(resolve_one("GET", "/users/1", "1001").moved);
}

TEST(RouteResolve, NoRouteAndNoMethodGoToTheDefaultSite) {
  ASSERT_TRUE(snapshot());
  const RouteOutcome none = resolve_one("GET", "/nowhere");
  EXPECT_FALSE(none.route);
  EXPECT_EQ(none.status, 404u);
  EXPECT_EQ(none.site, "onprem");
  const RouteOutcome method = resolve_one("POST", "/users/7");
  EXPECT_EQ(method.status, 405u);
  EXPECT_EQ(method.reason, "GET");
  EXPECT_EQ(method.site, "onprem");
  const RouteOutcome bad = resolve_one("GET", "users");
  EXPECT_EQ(bad.status, 400u);
  EXPECT_FALSE(bad.reason.empty());
}

TEST(RouteResolve, RewritesDotSegmentsAndShadowIgnore) {
  ASSERT_TRUE(snapshot());
  const RouteOutcome legacy = resolve_one("GET", "/v1/a/../users/7?x=1");
  ASSERT_TRUE(legacy.route);
  EXPECT_EQ(legacy.path, "/v1/users/7");
  EXPECT_EQ(legacy.upstream_path, "/users/7?x=1");
  EXPECT_EQ(legacy.site, "onprem");
  const RouteOutcome copied = resolve_one("GET", "/users/7/payments", "7");
  EXPECT_TRUE(copied.has_shadow);
  EXPECT_TRUE(copied.shadowed);
  const RouteOutcome ignored = resolve_one("POST", "/users/7/payments", "7");
  EXPECT_FALSE(ignored.shadowed);
  EXPECT_EQ(ignored.shadow_skip, "it matches migration.shadow_ignore");
  RouteRequest shadow_copy;
  shadow_copy.target = "/users/7/payments";
  shadow_copy.headers = {{"X-Apigw-Shadow", "1"}};
  EXPECT_FALSE(resolve(*snapshot(), shadow_copy).shadowed);
}

TEST(RouteResolve, AffinityHeaderBeforeClientAddress) {
  ASSERT_TRUE(snapshot());
  RouteRequest request;
  request.target = "/users/1";
  request.headers = {{"X-Device-Id", "2600"}};
  const RouteOutcome outcome = resolve(*snapshot(), request);
  EXPECT_EQ(outcome.affinity, "2600");
  EXPECT_EQ(outcome.bucket, 2600u);
  EXPECT_FALSE(outcome.moved);
}

TEST(RouteExplain, SaysEachDecision) {
  ASSERT_TRUE(snapshot());
  RouteRequest request;
  request.target = "/users/42";
  request.user = "42";
  const std::string text = explain(*snapshot(), request, resolve(*snapshot(), request));
  EXPECT_NE(text.find("GET /users/42 (user 42)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("route     user-profile (apigw.yaml:12:5): /users/:id [GET]"), std::string::npos) << text;
  EXPECT_NE(text.find("params    id=42"), std::string::npos) << text;
  EXPECT_NE(text.find("upstream  users-cloud (the split's: new side)"), std::string::npos) << text;
  EXPECT_NE(text.find("site      cloud (https://cloud.example.com)"), std::string::npos) << text;
  EXPECT_NE(text.find("split     25% of buckets to users-cloud: affinity key '42' → bucket 42 of 10000 → new side"),
            std::string::npos)
      << text;
  request.target = "/none";
  const std::string missing = explain(*snapshot(), request, resolve(*snapshot(), request));
  EXPECT_NE(missing.find("status    404: no route matches GET /none"), std::string::npos) << missing;
  EXPECT_NE(missing.find("site      onprem (https://onprem.example.com), the default site"), std::string::npos)
      << missing;
}

TEST(RouteCases, PassingAndFailingCases) {
  ASSERT_TRUE(snapshot());
  const CaseFile file = load_cases(R"(
cases:
  - name: profile moves for user 42
    request: GET /users/42
    user: "42"
    expect: { route: user-profile, upstream: users-cloud, site: cloud, side: new, path: /users/42 }
  - request: GET /v1/users/7
    expect: { route: user-profile, path: /users/7 }
  - request: DELETE /users/7
    expect: { status: 404 }
  - request: POST /users/7/payments
    user: "7"
    expect: { shadow: true, site: cloud }
)",
                                   "cases.yaml");
  ASSERT_TRUE(file.errors.empty()) << file.errors.front();
  ASSERT_EQ(file.cases.size(), 4u);
  EXPECT_EQ(file.cases[0].name, "profile moves for user 42");
  EXPECT_EQ(file.cases[1].name, "GET /v1/users/7");
  EXPECT_EQ(file.cases[1].at.line, 7);
  EXPECT_TRUE(check_case(*snapshot(), file.cases[0]).empty());
  EXPECT_EQ(check_case(*snapshot(), file.cases[1]),
            (std::vector<std::string>{"route: expected user-profile, got route legacy (apigw.yaml:21:5)"}));
  EXPECT_EQ(check_case(*snapshot(), file.cases[2]),
            (std::vector<std::string>{"status: expected 404, got 405 (allowed: GET)"}));
  EXPECT_EQ(check_case(*snapshot(), file.cases[3]),
            (std::vector<std::string>{
                "shadow: expected true, got false (it matches migration.shadow_ignore) by route user-payments "
                "(apigw.yaml:17:5)",
                "site: expected cloud, got onprem by route user-payments (apigw.yaml:17:5)"}));
}

TEST(RouteCases, SideNeedsASplit) {
  ASSERT_TRUE(snapshot());
  const CaseFile file = load_cases(R"(
- { request: GET /users/9/payments, user: "9", expect: { side: old } }
)",
                                   "cases.yaml");
  ASSERT_TRUE(file.errors.empty()) << file.errors.front();
  const std::vector<std::string> failures = check_case(*snapshot(), file.cases[0]);
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0], "side: expected old, got no split on route user-payments (apigw.yaml:17:5)");
}

TEST(RouteCases, ErrorsWithTheirPositions) {
  // The YAML starts on line 2 (after the raw string's newline).
  const CaseFile file = load_cases(R"(
- request: GET
  expect: { route: a }
- request: GET /a
  expect: { status: 200 }
- request: GET /a
  expect: { colour: blue }
- request: GET /a
  client_ip: nowhere
  expect: { route: a }
- expect: { route: a }
- request: GET /a
- request: GET /a
  extra: 1
  expect: { route: a }
)",
                                   "cases.yaml");
  EXPECT_TRUE(file.cases.empty());
  const std::vector<std::string> expected{
      "cases.yaml:2:12: case 1 request: expected \"METHOD /path[?query]\", got 'GET'",
      "cases.yaml:5:21: case 2 expect.status: '200' is not one of 404, 405 or 400",
      "cases.yaml:7:13: case 3 expect: unknown key 'colour'",
      "cases.yaml:9:14: case 4 client_ip: 'nowhere' is not an IPv4 or IPv6 address",
      "cases.yaml:11:3: case 5: needs a request",
      "cases.yaml:12:3: case 6: needs an expect",
      "cases.yaml:14:3: case 7: unknown key 'extra'",
  };
  ASSERT_EQ(file.errors.size(), expected.size()) << ::testing::PrintToString(file.errors);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_TRUE(file.errors[i].starts_with(expected[i])) << file.errors[i] << "\n  wanted: " << expected[i];
  }
  EXPECT_EQ(load_cases("[", "bad.yaml").errors.size(), 1u);
  EXPECT_EQ(load_cases("{}", "empty.yaml").errors.front(), "empty.yaml: expected a list of cases (or a map whose "
                                                           "`cases` is one)");
  EXPECT_EQ(load_cases("[]", "none.yaml").errors.front(), "none.yaml: no cases");
}

}  // namespace
}  // namespace apigw::edge
