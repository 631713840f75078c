// Tests for the `cache` config section and route `cache`: values, defaults, the snapshot's copy, and each error
// with its line.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>
#include <string_view>

#include "apigw/config/loader.h"
#include "apigw/config/snapshot.h"
#include "config_test_support.h"

namespace apigw::config {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using namespace std::string_view_literals;

// Appended to a section; on its own (leading newline dropped) the routes are on lines 5 and 6.
constexpr std::string_view kCacheRoutes = R"(
auth: {}
upstreams:
  u: { endpoints: [127.0.0.1:9001] }
routes:
  - { name: plain, match: { path: /plain }, upstream: u }
  - { name: cached, match: { path: /cached }, upstream: u, cache: { ttl: 30s } }
)";

TEST(CacheConfig, DefaultsWhenTheSectionIsEmpty) {
  const LoadResult result = load(std::string("cache: {}") + std::string(kCacheRoutes));
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  const CacheConfig& cache = result.config->cache;
  EXPECT_TRUE(cache.enabled);
  ASSERT_EQ(cache.primary.servers.size(), 1u);
  EXPECT_EQ(cache.primary.servers[0].text(), "127.0.0.1:11211");
  EXPECT_EQ(cache.primary.timeout, milliseconds(50));
  EXPECT_EQ(cache.primary.connections, 2u);
  EXPECT_FALSE(cache.secondary.has_value());
  EXPECT_EQ(cache.key_prefix, "apigw:");
  EXPECT_EQ(cache.max_item_bytes, 1024u * 1024u);
  EXPECT_FALSE(cache.api.enabled);

  const auto& routes = result.config->routes;
  EXPECT_FALSE(routes[0].cache.enabled);
  const RouteCacheConfig& route = routes[1].cache;
  EXPECT_TRUE(route.enabled);
  EXPECT_EQ(route.ttl, seconds(30));
  EXPECT_TRUE(route.vary.empty());
  EXPECT_EQ(route.scope, CacheScope::kShared);
  EXPECT_EQ(route.statuses, std::vector<unsigned>{200});
  EXPECT_FALSE(route.share_authorized);
}

TEST(CacheConfig, NoSectionMeansNoCache) {
  const LoadResult result = load(R"(
upstreams:
  u: { endpoints: [127.0.0.1:9001] }
routes:
  - { name: plain, match: { path: /plain }, upstream: u }
)");
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  EXPECT_FALSE(result.config->cache.enabled);
}

TEST(CacheConfig, EveryKeyAsInTheContract) {
  ::setenv("APIGW_TEST_CACHE_TOKEN", "0123456789abcdef-token", 1);
  const LoadResult result = load(R"(
cache:
  primary:   { servers: [127.0.0.1:11211, 127.0.0.1:11213], timeout: 50ms, connections: 2 }
  secondary: { servers: [127.0.0.1:11212], timeout: 200ms, queue: 10000 }
  key_prefix: "apigw:"
  max_item_bytes: 1MiB
  api:
    token: ${APIGW_TEST_CACHE_TOKEN}
auth: {}
upstreams:
  u: { endpoints: [127.0.0.1:9001] }
routes:
  - name: users
    match: { path: /users/:id }
    upstream: u
    auth: required
    cache:
      ttl: 30s
      vary: [Accept-Language]
      scope: user
      statuses: [200, 203, 301, 404]
)");
  ::unsetenv("APIGW_TEST_CACHE_TOKEN");
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  const CacheConfig& cache = result.config->cache;
  ASSERT_EQ(cache.primary.servers.size(), 2u);
  EXPECT_EQ(cache.primary.servers[1].text(), "127.0.0.1:11213");
  ASSERT_TRUE(cache.secondary.has_value());
  ASSERT_EQ(cache.secondary->servers.size(), 1u);
  EXPECT_EQ(cache.secondary->servers[0].text(), "127.0.0.1:11212");
  EXPECT_EQ(cache.secondary->timeout, milliseconds(200));
  EXPECT_EQ(cache.secondary->queue, 10000u);
  EXPECT_TRUE(cache.api.enabled);
  EXPECT_EQ(cache.api.token, "0123456789abcdef-token");
  const RouteCacheConfig& route = result.config->routes[0].cache;
  EXPECT_EQ(route.vary, std::vector<std::string>{"Accept-Language"});
  EXPECT_EQ(route.scope, CacheScope::kUser);
  EXPECT_EQ(route.statuses, (std::vector<unsigned>{200, 203, 301, 404}));
}

TEST(CacheConfig, OtherValues) {
  const LoadResult result = load(R"(
cache:
  primary: { servers: [memcached.internal:11211, "[::1]:11211"], timeout: 1s, connections: 64 }
  secondary: { servers: [10.0.0.2:11211] }
  key_prefix: ""
  max_item_bytes: 128MiB
auth: {}
upstreams:
  u: { endpoints: [127.0.0.1:9001] }
routes:
  - { name: a, match: { path: /a }, upstream: u, auth: optional, cache: { ttl: 720h, scope: user, vary: [] } }
  - { name: b, match: { path: /b }, upstream: u, cache: { ttl: 1s, scope: shared, vary: [X-A, x-b] } }
)");
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  const CacheConfig& cache = result.config->cache;
  EXPECT_EQ(cache.primary.servers[0].text(), "memcached.internal:11211");
  EXPECT_EQ(cache.primary.connections, 64u);
  EXPECT_EQ(cache.secondary->timeout, milliseconds(200));
  EXPECT_EQ(cache.secondary->queue, 10000u);
  EXPECT_EQ(cache.key_prefix, "");
  EXPECT_EQ(cache.max_item_bytes, 128u * 1024 * 1024);
  EXPECT_EQ(result.config->routes[0].cache.ttl, seconds(30 * 24 * 3600));
  EXPECT_EQ(result.config->routes[1].cache.vary, (std::vector<std::string>{"X-A", "x-b"}));
}

TEST(CacheConfig, SnapshotRoutesCarryTheirCacheRules) {
  const LoadResult result = load(std::string("cache: {}") + std::string(kCacheRoutes));
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  const SnapshotResult built = build_snapshot(*result.config, 1);
  ASSERT_TRUE(built.errors.empty());
  ASSERT_EQ(built.snapshot->routes.size(), 2u);
  EXPECT_FALSE(built.snapshot->routes[0].cache.enabled);
  EXPECT_EQ(built.snapshot->routes[1].cache, result.config->routes[1].cache);
  EXPECT_TRUE(built.snapshot->config.cache.enabled);
}

TEST(CacheConfig, RouteCacheNeedsTheSection) {
  const LoadResult result = load(kCacheRoutes);
  EXPECT_TRUE(only_error(result, 6, "route 'cached': cache needs a cache section"));
}

TEST(CacheConfig, UserScopeNeedsAuth) {
  const LoadResult result = load(R"(
cache: {}
upstreams:
  u: { endpoints: [127.0.0.1:9001] }
routes:
  - name: me
    match: { path: /me }
    upstream: u
    cache:
      ttl: 5s
      scope: user
)");
  EXPECT_TRUE(only_error(result, 10, "route 'me' cache.scope: user needs auth: required or optional"));
}

TEST(CacheConfig, CachedRouteMustMatchGetOrHead) {
  const LoadResult result = load(R"(
cache: {}
upstreams:
  u: { endpoints: [127.0.0.1:9001] }
routes:
  - { name: w, match: { path: /w, methods: [POST, PUT] }, upstream: u, cache: { ttl: 5s } }
  - { name: r, match: { path: /r, methods: [HEAD] }, upstream: u, cache: { ttl: 5s } }
)");
  EXPECT_TRUE(only_error(result, 5, "route 'w': cache applies to GET and HEAD only, and the route matches neither"));
}

TEST(CacheConfig, CachedRouteNameFitsTheKey) {
  const std::string name(kMaxCachedRouteNameBytes + 1, 'n');
  const LoadResult result = load("cache: {}\nupstreams:\n  u: { endpoints: [127.0.0.1:9001] }\nroutes:\n"
                                 "  - name: " + name + "\n    match: { path: /n }\n    upstream: u\n"
                                 "    cache: { ttl: 5s }\n");
  EXPECT_TRUE(only_error(result, 5, "a cached route's name may have at most 118 characters"));
  const std::string fits(kMaxCachedRouteNameBytes, 'n');
  EXPECT_TRUE(load("cache: {}\nupstreams:\n  u: { endpoints: [127.0.0.1:9001] }\nroutes:\n"
                   "  - { name: " + fits + ", match: { path: /n }, upstream: u, cache: { ttl: 5s } }\n")
                  .errors.empty());
  EXPECT_TRUE(load("upstreams:\n  u: { endpoints: [127.0.0.1:9001] }\nroutes:\n"
                   "  - { name: " + name + ", match: { path: /n }, upstream: u }\n")
                  .errors.empty())
      << "only cached routes are limited";
}

TEST(CacheConfig, RouteStatuses) {
  const LoadResult result = load(R"(
cache: {}
upstreams:
  u: { endpoints: [127.0.0.1:9001] }
routes:
  - { name: r, match: { path: /r }, upstream: u, cache: { ttl: 5s, statuses: [200, 404] } }
)");
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  EXPECT_EQ(result.config->routes[0].cache.statuses, (std::vector<unsigned>{200, 404}));
}

// A cached route with auth, its tokens from `token_from`, the route's cache as given (the route is on line 7).
LoadResult authorized_route(std::string_view cache, std::string_view token_from = "[header:Authorization]",
                            std::string_view auth = "required") {
  return load(R"(
cache: {}
auth:
  token_from: )" + std::string(token_from) + R"(
upstreams:
  u: { endpoints: [127.0.0.1:9001] }
routes:
  - { name: r, match: { path: /r }, upstream: u, auth: )" + std::string(auth) +
              ", cache: " + std::string(cache) + " }\n");
}

bool warns(const LoadResult& result, std::string_view fragment) {
  for (const auto& warning : result.warnings) {
    if (warning.message.find(fragment) != std::string::npos) return true;
  }
  return false;
}

TEST(CacheConfig, ShareAuthorizedIsRead) {
  const LoadResult on = authorized_route("{ ttl: 5s, share_authorized: true }");
  ASSERT_TRUE(on.errors.empty()) << all_errors(on);
  EXPECT_TRUE(on.config->routes[0].cache.share_authorized);
  const LoadResult off = authorized_route("{ ttl: 5s, share_authorized: false }");
  ASSERT_TRUE(off.errors.empty()) << all_errors(off);
  EXPECT_FALSE(off.config->routes[0].cache.share_authorized);
  EXPECT_NE(on.config->routes[0].cache, off.config->routes[0].cache) << "part of the route's cache rule";
}

TEST(CacheConfig, TagsStaleWindowsAndEventsAreRead) {
  const LoadResult result = load(R"(
cache:
  fill_lock: false
  events:
    redis: { nodes: [127.0.0.1:6390], timeout: 1s }
    stream: shop:cache
    group: edge
    claim_after: 10s
    poll: 50ms
    batch: 20
upstreams:
  u: { endpoints: [127.0.0.1:9001] }
routes:
  - name: r
    match: { path: /products/:id/*rest }
    upstream: u
    cache:
      ttl: 5s
      tags: ["product:{id}", "page:{id}:{rest}", catalog]
      tag_header: X-Tags
      stale_while_revalidate: 30s
      stale_if_error: 10m
      tag_invalidation: stale
)");
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  const CacheConfig& cache = result.config->cache;
  EXPECT_FALSE(cache.fill_lock);
  ASSERT_TRUE(cache.events.enabled);
  EXPECT_EQ(cache.events.redis.nodes.front().port, 6390);
  EXPECT_EQ(cache.events.redis.timeout, std::chrono::seconds(1));
  EXPECT_EQ(cache.events.stream, "shop:cache");
  EXPECT_EQ(cache.events.group, "edge");
  EXPECT_EQ(cache.events.claim_after, std::chrono::seconds(10));
  EXPECT_EQ(cache.events.poll, std::chrono::milliseconds(50));
  EXPECT_EQ(cache.events.batch, 20u);
  const RouteCacheConfig& route = result.config->routes[0].cache;
  EXPECT_EQ(route.tags, (std::vector<std::string>{"product:{id}", "page:{id}:{rest}", "catalog"}));
  EXPECT_EQ(route.tag_header, "X-Tags");
  EXPECT_EQ(route.stale_while_revalidate, std::chrono::seconds(30));
  EXPECT_EQ(route.stale_if_error, std::chrono::minutes(10));
  EXPECT_EQ(route.tag_invalidation, TagInvalidation::kStale);

  const LoadResult defaults = load("cache: {}\n");
  ASSERT_TRUE(defaults.errors.empty()) << all_errors(defaults);
  EXPECT_TRUE(defaults.config->cache.fill_lock);
  EXPECT_FALSE(defaults.config->cache.events.enabled);
  EXPECT_EQ(defaults.config->cache.events.stream, "apigw:cache-events");
  EXPECT_EQ(defaults.config->cache.events.group, "apigw");
  EXPECT_EQ(RouteCacheConfig{}.tag_header, "Surrogate-Key");
}

TEST(CacheConfig, ASharedCacheOfAuthorizedRequestsIsWarnedAbout) {
  constexpr std::string_view kWarning = "route 'r' cache.scope: shared with tokens in the Authorization header";
  for (const auto auth : {"required", "optional"}) {
    const LoadResult shared = authorized_route("{ ttl: 5s }", "[header:Authorization]", auth);
    ASSERT_TRUE(shared.errors.empty()) << all_errors(shared);
    EXPECT_TRUE(warns(shared, kWarning)) << auth;
    EXPECT_TRUE(warns(shared, "share_authorized: true shares them all"));
  }
  EXPECT_TRUE(warns(authorized_route("{ ttl: 5s, scope: shared }", "[header:authorization]"), kWarning))
      << "the header name is case-insensitive";
  EXPECT_TRUE(warns(authorized_route("{ ttl: 5s }", "[cookie:session, header:Authorization]"), kWarning));
  // Not when the route shares them knowingly, keys per user, has no auth or reads its tokens elsewhere.
  for (const LoadResult& quiet :
       {authorized_route("{ ttl: 5s, share_authorized: true }"), authorized_route("{ ttl: 5s, scope: user }"),
        authorized_route("{ ttl: 5s }", "[header:Authorization]", "none"),
        authorized_route("{ ttl: 5s }", "[cookie:session]"), authorized_route("{ ttl: 5s }", "[header:X-Token]")}) {
    ASSERT_TRUE(quiet.errors.empty()) << all_errors(quiet);
    EXPECT_FALSE(warns(quiet, kWarning));
  }
}

TEST(CacheConfig, A5xxStatusIsWarnedAbout) {
  const LoadResult result = load(std::string("cache: {}") + R"(
upstreams:
  u: { endpoints: [127.0.0.1:9001] }
routes:
  - { name: r, match: { path: /r }, upstream: u, cache: { ttl: 5s, statuses: [200, 503, 500] } }
)");
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  EXPECT_TRUE(warns(result, "503 is listed: a 5xx response that carries no max-age, s-maxage or Expires is kept "
                            "for the whole ttl"));
  EXPECT_FALSE(warns(result, "500 is listed")) << "said once";
  const LoadResult fine = load(std::string("cache: {}") + R"(
upstreams:
  u: { endpoints: [127.0.0.1:9001] }
routes:
  - { name: r, match: { path: /r }, upstream: u, cache: { ttl: 5s, statuses: [200, 404, 499] } }
)");
  ASSERT_TRUE(fine.errors.empty()) << all_errors(fine);
  EXPECT_FALSE(warns(fine, "is listed"));
}

TEST(CacheConfig, ShortApiTokenIsAnErrorThatDoesNotShowTheToken) {
  const LoadResult result = load(std::string("cache:\n  api: { token: short-secret }\n") + std::string(kCacheRoutes));
  EXPECT_TRUE(only_error(result, 2, "cache.api.token: must be at least 16 visible ASCII characters"));
  EXPECT_EQ(all_errors(result).find("short-secret"), std::string::npos);
}

TEST(CacheConfig, UnsetApiTokenVariableIsNamed) {
  ::unsetenv("APIGW_TEST_UNSET_CACHE_TOKEN");
  const LoadResult result =
      load(std::string("cache:\n  api: { token: \"${APIGW_TEST_UNSET_CACHE_TOKEN}\" }\n") + std::string(kCacheRoutes));
  EXPECT_TRUE(only_error(result, 2, "APIGW_TEST_UNSET_CACHE_TOKEN"));
  // Inside { } a ${VAR} must be quoted: YAML reads '{' there as the start of a map.
  EXPECT_TRUE(has_error(load(std::string("cache:\n  api: { token: ${A} }\n") + std::string(kCacheRoutes)), 2,
                        "YAML syntax error"));
}

struct BadCache {
  std::string_view section;
  int line;
  std::string_view fragment;
};

class CacheConfigErrors : public ::testing::TestWithParam<BadCache> {};

TEST_P(CacheConfigErrors, ReportedWithLine) {
  const LoadResult result = load(std::string(GetParam().section) + std::string(kCacheRoutes));
  EXPECT_TRUE(only_error(result, GetParam().line, GetParam().fragment));
  EXPECT_FALSE(result.config.has_value());
}

INSTANTIATE_TEST_SUITE_P(
    Section, CacheConfigErrors,
    ::testing::Values(
        BadCache{"cache:\n  primary: { servers: [] }\n", 2, "cache.primary.servers: needs at least one server"},
        BadCache{"cache:\n  primary:\n    servers:\n", 3, "cache.primary.servers: needs at least one server"},
        BadCache{"cache:\n  primary: { servers: [localhost] }\n", 2, "cache.primary.servers[0]: expected host:port"},
        BadCache{"cache:\n  primary: { servers: 127.0.0.1:11211 }\n", 2, "cache.primary.servers: expected a list"},
        BadCache{"cache:\n  primary: { servers: [127.0.0.1:1, 127.0.0.1:1] }\n", 2, "'127.0.0.1:1' is listed twice"},
        BadCache{"cache:\n  primary: { timeout: 0ms }\n", 2, "cache.primary.timeout: must be greater than zero"},
        BadCache{"cache:\n  primary: { connections: 0 }\n", 2, "cache.primary.connections: must be from 1 to 64"},
        BadCache{"cache:\n  primary: { connections: 65 }\n", 2, "cache.primary.connections: must be from 1 to 64"},
        BadCache{"cache:\n  primary: { pool: 3 }\n", 2,
                 "unknown key 'pool' in cache.primary (allowed: servers, timeout, connections, tls)"},
        BadCache{"cache:\n  secondary: {}\n", 2, "cache.secondary: needs servers"},
        BadCache{"cache:\n  secondary:\n", 2, "cache.secondary: needs servers"},
        BadCache{"cache:\n  secondary: { servers: [] }\n", 2, "cache.secondary.servers: needs at least one server"},
        BadCache{"cache:\n  secondary: { servers: [127.0.0.1:1], timeout: soon }\n", 2,
                 "cache.secondary.timeout: bad duration"},
        BadCache{"cache:\n  secondary: { servers: [127.0.0.1:1], queue: 0 }\n", 2,
                 "cache.secondary.queue: must be from 1 to 1000000"},
        BadCache{"cache:\n  secondary: { servers: [127.0.0.1:1], queue: 1000001 }\n", 2, "cache.secondary.queue"},
        BadCache{"cache:\n  key_prefix: \"api gw:\"\n", 2, "cache.key_prefix: must be at most 64 visible ASCII"},
        BadCache{"cache:\n  key_prefix: \"a\\tb\"\n", 2, "cache.key_prefix"},
        BadCache{"cache:\n  key_prefix: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", 2,
                 "cache.key_prefix: must be at most 64"},
        BadCache{"cache:\n  max_item_bytes: 1023\n", 2, "cache.max_item_bytes: must be from 1KiB to 128MiB"},
        BadCache{"cache:\n  max_item_bytes: 129MiB\n", 2, "cache.max_item_bytes: must be from 1KiB to 128MiB"},
        BadCache{"cache:\n  max_item_bytes: 0\n", 2, "cache.max_item_bytes: must be greater than zero"},
        BadCache{"cache:\n  max_item_bytes: lots\n", 2, "cache.max_item_bytes: bad size"},
        BadCache{"cache:\n  api: {}\n", 2, "cache.api: needs a token"},
        BadCache{"cache:\n  api:\n", 2, "cache.api: needs a token"},
        BadCache{"cache:\n  api: { token: \"0123456789abcdef with space\" }\n", 2, "cache.api.token"},
        BadCache{"cache:\n  api: { token: 0123456789abcdef, user: x }\n", 2, "unknown key 'user' in cache.api"},
        BadCache{"cache:\n  memcached: []\n", 2,
                 "unknown key 'memcached' in cache (allowed: primary, secondary, key_prefix, max_item_bytes, api, "
                 "fill_lock, events)"},
        BadCache{"cache:\n  fill_lock: sometimes\n", 2, "cache.fill_lock: expected true or false"},
        BadCache{"cache:\n  events: { stream: \"a b\" }\n", 2, "cache.events.stream: must be 1 to 200 visible"},
        BadCache{"cache:\n  events: { group: \"\" }\n", 2, "cache.events.group: must be 1 to 200 visible"},
        BadCache{"cache:\n  events: { claim_after: 500ms }\n", 2, "cache.events.claim_after: must be at least 1s"},
        BadCache{"cache:\n  events: { poll: 1ms }\n", 2, "cache.events.poll: must be from 10ms to 60s"},
        BadCache{"cache:\n  events: { batch: 0 }\n", 2, "cache.events.batch: must be from 1 to 10000"},
        BadCache{"cache:\n  events: { redis: { nodes: [] } }\n", 2, "cache.events.redis.nodes"},
        BadCache{"cache:\n  events: { topic: x }\n", 2, "unknown key 'topic' in cache.events"},
        BadCache{"cache: [a]\n", 1, "cache: expected a map"}));

// Route errors: the section is present; the route under test is on line 7.
struct RouteCase {
  std::string_view cache;
  std::string_view fragment;
  std::string_view auth = "none";
};

class RouteCacheErrors : public ::testing::TestWithParam<RouteCase> {};

TEST_P(RouteCacheErrors, ReportedWithLine) {
  const LoadResult result = load(R"(
cache: {}
auth: {}
upstreams:
  u: { endpoints: [127.0.0.1:9001] }
routes:
  - { name: plain, match: { path: /plain }, upstream: u }
  - { name: r, match: { path: /r }, upstream: u, auth: )" + std::string(GetParam().auth) +
                                 ", cache: " + std::string(GetParam().cache) + " }\n");
  EXPECT_TRUE(only_error(result, 7, GetParam().fragment));
  EXPECT_FALSE(result.config.has_value());
}

INSTANTIATE_TEST_SUITE_P(
    Route, RouteCacheErrors,
    ::testing::Values(
        RouteCase{"{}", "route 'r' cache: needs a ttl"},
        RouteCase{"{ vary: [X-A] }", "route 'r' cache: needs a ttl"},
        RouteCase{"{ ttl: 0s }", "route 'r' cache.ttl: must be greater than zero"},
        RouteCase{"{ ttl: 1500ms }", "route 'r' cache.ttl: must be a whole number of seconds"},
        RouteCase{"{ ttl: 721h }", "route 'r' cache.ttl: must be at most 30 days"},
        RouteCase{"{ ttl: forever }", "route 'r' cache.ttl: bad duration"},
        RouteCase{"{ ttl: 5s, vary: Accept }", "route 'r' cache.vary: expected a list"},
        RouteCase{"{ ttl: 5s, vary: [\"Accept Language\"] }", "cache.vary[0]: 'Accept Language' is not a header name"},
        RouteCase{"{ ttl: 5s, vary: [\"*\"] }", "cache.vary[0]: '*' is not a header name"},
        RouteCase{"{ ttl: 5s, vary: [Accept, accept] }", "route 'r' cache.vary: 'accept' is listed twice"},
        RouteCase{"{ ttl: 5s, vary: [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q] }",
                 "route 'r' cache.vary: at most 16 headers"},
        RouteCase{"{ ttl: 5s, scope: everyone }",
                 "route 'r' cache.scope: bad value 'everyone': expected shared or user"},
        RouteCase{"{ ttl: 5s, scope: user }", "route 'r' cache.scope: user needs auth: required or optional"},
        RouteCase{"{ ttl: 5s, statuses: [] }", "route 'r' cache.statuses: needs at least one status"},
        RouteCase{"{ ttl: 5s, statuses: 200 }", "route 'r' cache.statuses: expected a list"},
        RouteCase{"{ ttl: 5s, statuses: [199] }", "cache.statuses[0]: must be from 200 to 599"},
        RouteCase{"{ ttl: 5s, statuses: [600] }", "cache.statuses[0]: must be from 200 to 599"},
        RouteCase{"{ ttl: 5s, statuses: [ok] }", "cache.statuses[0]: expected a whole number"},
        RouteCase{"{ ttl: 5s, statuses: [200, 404, 200] }", "route 'r' cache.statuses: 200 is listed twice"},
        RouteCase{"{ ttl: 5s, statuses: [401] }", "401 responses are never cached", "required"},
        RouteCase{"{ ttl: 5s, statuses: [206] }", "206 responses are never cached"},
        RouteCase{"{ ttl: 5s, statuses: [304] }", "304 responses are never cached"},
        RouteCase{"{ ttl: 5s, etag: true }",
                 "unknown key 'etag' in route 'r' cache (allowed: ttl, vary, scope, statuses, share_authorized, tags, "
                 "tag_header, stale_while_revalidate, stale_if_error, tag_invalidation)"},
        RouteCase{"{ ttl: 5s, tags: product }", "route 'r' cache.tags: expected a list"},
        RouteCase{"{ ttl: 5s, tags: [\"a b\"] }", "cache.tags[0]: a tag is 1 to 128 visible ASCII characters"},
        RouteCase{"{ ttl: 5s, tags: [\"p:{id\"] }", "cache.tags[0]: bad tag 'p:{id': braces must enclose"},
        RouteCase{"{ ttl: 5s, tags: [\"p:{}\"] }", "cache.tags[0]: bad tag 'p:{}': braces must enclose"},
        RouteCase{"{ ttl: 5s, tags: [\"p:}{\"] }", "cache.tags[0]: bad tag"},
        RouteCase{"{ ttl: 5s, tags: [a, a] }", "route 'r' cache.tags: 'a' is listed twice"},
        RouteCase{"{ ttl: 5s, tags: [\"p:{id}\"] }",
                 "route 'r' cache.tags: 'p:{id}' uses {id}, which is not a parameter of the path /r"},
        RouteCase{"{ ttl: 5s, tags: [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q] }",
                 "route 'r' cache.tags: at most 16 tags"},
        RouteCase{"{ ttl: 5s, tag_header: \"Surrogate Key\" }", "cache.tag_header: 'Surrogate Key' is not a header"},
        RouteCase{"{ ttl: 5s, stale_while_revalidate: 1500ms }",
                 "route 'r' cache.stale_while_revalidate: must be a whole number of seconds"},
        RouteCase{"{ ttl: 5s, stale_if_error: 721h }", "route 'r' cache.stale_if_error: must be at most 30 days"},
        RouteCase{"{ ttl: 5s, tag_invalidation: later }",
                 "route 'r' cache.tag_invalidation: bad value 'later': expected gone or stale"},
        RouteCase{"{ ttl: 5s, tag_invalidation: stale }",
                 "route 'r' cache.tag_invalidation: stale needs stale_while_revalidate"},
        RouteCase{"{ ttl: 5s, share_authorized: yes }",
                 "route 'r' cache.share_authorized: expected true or false, got 'yes'"},
        RouteCase{"[ttl]", "route 'r' cache: expected a map"},
        // NUL is not a token character (config once took strchr's terminator for one): YAML's "\0" is refused.
        RouteCase{"{ ttl: 5s, vary: [\"X-A\\0\"] }", "cache.vary[0]: 'X-A\0' is not a header name"sv}));

}  // namespace
}  // namespace apigw::config
