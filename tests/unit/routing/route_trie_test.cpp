// Unit tests for RouteTrie: precedence and backtracking, captures, methods and Allow, pattern errors, conflicts,
// host fallback and Host header normalisation.
#include "apigw/routing/route_trie.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace apigw::routing {
namespace {

using Kind = RouteTrieMatch::Kind;
using Methods = std::vector<std::string>;
using Params = std::vector<std::pair<std::string, std::string>>;

void add_ok(RouteTrie& trie, std::string_view host, std::string_view pattern, const Methods& methods,
            std::uint32_t route) {
  const auto error = trie.add(host, pattern, methods, route);
  EXPECT_FALSE(error) << pattern << ": " << error->message;
}

void add_ok(RouteTrie& trie, std::string_view pattern, std::uint32_t route) { add_ok(trie, "", pattern, {}, route); }

// The matched route index, or -1 for anything but kFound.
long found(const RouteTrie& trie, std::string_view path, std::string_view method = "GET",
           std::string_view host = "example.com") {
  const auto match = trie.match(host, method, path);
  return match.kind == Kind::kFound ? static_cast<long>(match.route) : -1;
}

Params params_of(const RouteTrieMatch& match) {
  Params params;
  for (std::size_t i = 0; i < match.param_count; ++i) {
    params.emplace_back(match.params[i].name, match.params[i].value);
  }
  return params;
}

// ---- precedence and backtracking -------------------------------------------------------------------------------

void expect_precedence(const RouteTrie& trie) {
  EXPECT_EQ(found(trie, "/users/me"), 1);
  EXPECT_EQ(found(trie, "/users/42"), 2);
  EXPECT_EQ(found(trie, "/users/42/x"), 3);
  EXPECT_EQ(found(trie, "/users/"), 3);
}

TEST(RouteTrie, StaticBeatsParamBeatsWildcardInInsertionOrder) {
  RouteTrie trie;
  add_ok(trie, "/users/me", 1);
  add_ok(trie, "/users/:id", 2);
  add_ok(trie, "/users/*rest", 3);
  expect_precedence(trie);
}

TEST(RouteTrie, StaticBeatsParamBeatsWildcardInReverseOrder) {
  RouteTrie trie;
  add_ok(trie, "/users/*rest", 3);
  add_ok(trie, "/users/:id", 2);
  add_ok(trie, "/users/me", 1);
  expect_precedence(trie);
}

TEST(RouteTrie, BacktracksFromStaticToParam) {
  RouteTrie trie;
  add_ok(trie, "/users/me/settings", 1);
  add_ok(trie, "/users/:id/posts", 2);
  const auto match = trie.match("h", "GET", "/users/me/posts");
  ASSERT_EQ(match.kind, Kind::kFound);
  EXPECT_EQ(match.route, 2u);
  EXPECT_EQ(params_of(match), (Params{{"id", "me"}}));
  EXPECT_EQ(found(trie, "/users/me/settings"), 1);
}

TEST(RouteTrie, BacktracksFromParamToWildcard) {
  RouteTrie trie;
  add_ok(trie, "/a/:x/b", 1);
  add_ok(trie, "/a/*rest", 2);
  EXPECT_EQ(found(trie, "/a/q/b"), 1);
  const auto match = trie.match("h", "GET", "/a/q/c");
  ASSERT_EQ(match.kind, Kind::kFound);
  EXPECT_EQ(match.route, 2u);
  EXPECT_EQ(params_of(match), (Params{{"rest", "q/c"}}));
}

TEST(RouteTrie, BacktracksWithinSplitStaticEdges) {
  RouteTrie trie;
  add_ok(trie, "/user", 1);
  add_ok(trie, "/users", 2);
  add_ok(trie, "/us/:x", 3);
  add_ok(trie, "/:top", 4);
  EXPECT_EQ(found(trie, "/user"), 1);
  EXPECT_EQ(found(trie, "/users"), 2);
  EXPECT_EQ(found(trie, "/us/z"), 3);
  EXPECT_EQ(found(trie, "/use"), 4);
  EXPECT_EQ(found(trie, "/usersx"), 4);
  EXPECT_EQ(found(trie, "/us"), 4);
}

// ---- captures -------------------------------------------------------------------------------------------------

TEST(RouteTrie, CapturesParamsWithTheirNames) {
  RouteTrie trie;
  add_ok(trie, "/orgs/:org/repos/:repo_name", 7);
  const auto match = trie.match("h", "GET", "/orgs/acme/repos/gateway");
  ASSERT_EQ(match.kind, Kind::kFound);
  EXPECT_EQ(match.route, 7u);
  EXPECT_EQ(params_of(match), (Params{{"org", "acme"}, {"repo_name", "gateway"}}));
}

TEST(RouteTrie, ParamDoesNotMatchAnEmptySegmentOrSpanSlashes) {
  RouteTrie trie;
  add_ok(trie, "/users/:id", 1);
  add_ok(trie, "/users/:id/posts", 2);
  EXPECT_EQ(trie.match("h", "GET", "/users/").kind, Kind::kNoPath);
  EXPECT_EQ(trie.match("h", "GET", "/users//posts").kind, Kind::kNoPath);
  EXPECT_EQ(trie.match("h", "GET", "/users").kind, Kind::kNoPath);
  EXPECT_EQ(trie.match("h", "GET", "/users/a/b").kind, Kind::kNoPath);
}

TEST(RouteTrie, WildcardCapturesTheRestIncludingSlashes) {
  RouteTrie trie;
  add_ok(trie, "/files/*path", 1);
  const auto match = trie.match("h", "GET", "/files/a/b/c.txt");
  ASSERT_EQ(match.kind, Kind::kFound);
  EXPECT_EQ(params_of(match), (Params{{"path", "a/b/c.txt"}}));
}

TEST(RouteTrie, WildcardCapturesAnEmptyRestButNeedsItsSlash) {
  RouteTrie trie;
  add_ok(trie, "/files/*path", 1);
  const auto match = trie.match("h", "GET", "/files/");
  ASSERT_EQ(match.kind, Kind::kFound);
  EXPECT_EQ(params_of(match), (Params{{"path", ""}}));
  EXPECT_EQ(trie.match("h", "GET", "/files").kind, Kind::kNoPath);
}

TEST(RouteTrie, ParamsBeforeAWildcardKeepTheirOrder) {
  RouteTrie trie;
  add_ok(trie, "/b/:bucket/*key", 1);
  const auto match = trie.match("h", "GET", "/b/logs/2024/01/x.gz");
  ASSERT_EQ(match.kind, Kind::kFound);
  EXPECT_EQ(params_of(match), (Params{{"bucket", "logs"}, {"key", "2024/01/x.gz"}}));
}

TEST(RouteTrie, RootPatternMatchesOnlyTheRoot) {
  RouteTrie trie;
  add_ok(trie, "/", 1);
  EXPECT_EQ(found(trie, "/"), 1);
  EXPECT_EQ(found(trie, "/x"), -1);
  EXPECT_EQ(found(trie, ""), -1);
}

TEST(RouteTrie, RootWildcardMatchesEverything) {
  RouteTrie trie;
  add_ok(trie, "/*rest", 1);
  const auto root = trie.match("h", "GET", "/");
  ASSERT_EQ(root.kind, Kind::kFound);
  EXPECT_EQ(params_of(root), (Params{{"rest", ""}}));
  const auto deep = trie.match("h", "GET", "/x/y/");
  ASSERT_EQ(deep.kind, Kind::kFound);
  EXPECT_EQ(params_of(deep), (Params{{"rest", "x/y/"}}));
}

TEST(RouteTrie, TrailingSlashIsPartOfThePattern) {
  RouteTrie trie;
  add_ok(trie, "/users", 1);
  add_ok(trie, "/users/", 2);
  add_ok(trie, "/teams/", 3);
  EXPECT_EQ(found(trie, "/users"), 1);
  EXPECT_EQ(found(trie, "/users/"), 2);
  EXPECT_EQ(found(trie, "/teams/"), 3);
  EXPECT_EQ(found(trie, "/teams"), -1);
}

TEST(RouteTrie, EachRouteReportsItsOwnParamNames) {
  RouteTrie trie;
  add_ok(trie, "/users/:id/posts", 1);
  add_ok(trie, "/users/:uid", 2);
  add_ok(trie, "", "/items/:item_id", {"GET"}, 3);
  add_ok(trie, "", "/items/:sku", {"PUT"}, 4);
  EXPECT_EQ(params_of(trie.match("h", "GET", "/users/5/posts")), (Params{{"id", "5"}}));
  EXPECT_EQ(params_of(trie.match("h", "GET", "/users/5")), (Params{{"uid", "5"}}));
  EXPECT_EQ(params_of(trie.match("h", "GET", "/items/9")), (Params{{"item_id", "9"}}));
  EXPECT_EQ(params_of(trie.match("h", "PUT", "/items/9")), (Params{{"sku", "9"}}));
}

// ---- methods --------------------------------------------------------------------------------------------------

TEST(RouteTrie, WrongMethodGivesNoMethodWithSortedAllow) {
  RouteTrie trie;
  add_ok(trie, "", "/orders", {"POST"}, 1);
  add_ok(trie, "", "/orders", {"GET", "DELETE"}, 2);
  EXPECT_EQ(found(trie, "/orders", "POST"), 1);
  EXPECT_EQ(found(trie, "/orders", "DELETE"), 2);
  const auto match = trie.match("h", "PUT", "/orders");
  EXPECT_EQ(match.kind, Kind::kNoMethod);
  EXPECT_EQ(match.allow, "DELETE, GET, POST");
  EXPECT_EQ(trie.match("h", "get", "/orders").kind, Kind::kNoMethod);  // methods are case-sensitive
}

TEST(RouteTrie, ExplicitMethodRouteWinsBesideAnAnyMethodRoute) {
  RouteTrie trie;
  add_ok(trie, "", "/things", {}, 1);
  add_ok(trie, "", "/things", {"GET", "HEAD"}, 2);
  EXPECT_EQ(found(trie, "/things", "GET"), 2);
  EXPECT_EQ(found(trie, "/things", "HEAD"), 2);
  EXPECT_EQ(found(trie, "/things", "POST"), 1);
  EXPECT_EQ(found(trie, "/things", "BREW"), 1);
}

TEST(RouteTrie, MethodMismatchBacktracksToALessSpecificRoute) {
  RouteTrie trie;
  add_ok(trie, "", "/users/me", {"GET"}, 1);
  add_ok(trie, "", "/users/:id", {"POST"}, 2);
  EXPECT_EQ(found(trie, "/users/me", "GET"), 1);
  EXPECT_EQ(found(trie, "/users/me", "POST"), 2);
  const auto match = trie.match("h", "DELETE", "/users/me");
  EXPECT_EQ(match.kind, Kind::kNoMethod);
  EXPECT_EQ(match.allow, "GET");  // from the most specific path match
}

TEST(RouteTrie, NoPathWhenNothingMatches) {
  RouteTrie trie;
  add_ok(trie, "", "/a", {"GET"}, 1);
  const auto match = trie.match("h", "GET", "/b");
  EXPECT_EQ(match.kind, Kind::kNoPath);
  EXPECT_TRUE(match.allow.empty());
  EXPECT_EQ(RouteTrie().match("h", "GET", "/").kind, Kind::kNoPath);
}

// ---- pattern errors -------------------------------------------------------------------------------------------

void expect_pattern_error(std::string_view pattern, std::string_view message_part) {
  RouteTrie trie;
  const auto error = trie.add("", pattern, {}, 1);
  ASSERT_TRUE(error) << "accepted '" << pattern << "'";
  EXPECT_NE(error->message.find(message_part), std::string::npos) << pattern << ": " << error->message;
  EXPECT_FALSE(error->other);
  EXPECT_EQ(trie.match("h", "GET", pattern).kind, Kind::kNoPath) << "a refused route was kept";
}

TEST(RouteTrie, RejectsPatternsNotStartingWithSlash) {
  expect_pattern_error("", "must start with '/'");
  expect_pattern_error("users", "must start with '/'");
  expect_pattern_error(":id", "must start with '/'");
}

TEST(RouteTrie, RejectsCapturesThatDoNotOwnTheirSegment) {
  expect_pattern_error("/a:b", "':' must start a segment");
  expect_pattern_error("/:a:b", "':' must start a segment");
  expect_pattern_error("/a*b", "'*' must start a segment");
  expect_pattern_error("/files/x*rest", "'*' must start a segment");
}

TEST(RouteTrie, RejectsCapturesWithoutAValidName) {
  expect_pattern_error("/:", "':' needs a name");
  expect_pattern_error("/users/:/posts", "':' needs a name");
  expect_pattern_error("/*", "'*' needs a name");
  expect_pattern_error("/:a-b", "invalid name 'a-b'");
  expect_pattern_error("/*rest.txt", "invalid name 'rest.txt'");
}

TEST(RouteTrie, RejectsAWildcardBeforeTheLastSegment) {
  expect_pattern_error("/*rest/x", "'*rest' must be the last segment");
  expect_pattern_error("/*rest/", "'*rest' must be the last segment");
}

TEST(RouteTrie, RejectsEmptyAndDotSegments) {
  expect_pattern_error("//", "empty segment");
  expect_pattern_error("/a//b", "empty segment");
  expect_pattern_error("/./a", "'.' segment");
  expect_pattern_error("/a/..", "'..' segment");
  expect_pattern_error("/a/../b", "'..' segment");
}

TEST(RouteTrie, RejectsQueryAndFragmentCharacters) {
  expect_pattern_error("/a?b=1", "'?' or '#'");
  expect_pattern_error("/a#top", "'?' or '#'");
}

TEST(RouteTrie, RejectsDuplicateParamNames) {
  expect_pattern_error("/:a/:a", "duplicate parameter name 'a'");
  expect_pattern_error("/:a/x/*a", "duplicate parameter name 'a'");
}

TEST(RouteTrie, AcceptsUpToMaxParamsAndNoMore) {
  std::string pattern;
  for (std::size_t i = 0; i < kMaxParams; ++i) pattern += "/:p" + std::to_string(i);
  RouteTrie trie;
  add_ok(trie, pattern, 1);
  EXPECT_EQ(trie.match("h", "GET", "/1/2/3/4/5/6/7/8").param_count, kMaxParams);
  expect_pattern_error(pattern + "/:one_more", "more than " + std::to_string(kMaxParams) + " parameters");
}

TEST(RouteTrie, RejectsInvalidMethodsAndHosts) {
  RouteTrie trie;
  EXPECT_TRUE(trie.add("", "/a", {"get"}, 1));
  EXPECT_TRUE(trie.add("", "/a", {""}, 1));
  EXPECT_TRUE(trie.add("", "/a", {"GET, POST"}, 1));
  EXPECT_TRUE(trie.add("example.com:8080", "/a", {}, 1));
  EXPECT_TRUE(trie.add("[::1]:8080", "/a", {}, 1));
  EXPECT_TRUE(trie.add("a.*.com", "/a", {}, 1));
  EXPECT_TRUE(trie.add("*example.com", "/a", {}, 1));
  EXPECT_TRUE(trie.add("*.", "/a", {}, 1));
  EXPECT_TRUE(trie.add(std::string(300, 'a'), "/a", {}, 1));
  EXPECT_EQ(trie.match("example.com", "GET", "/a").kind, Kind::kNoPath);
}

// ---- conflicts ------------------------------------------------------------------------------------------------

void expect_conflict(RouteTrie& trie, std::string_view pattern, const Methods& methods, std::uint32_t other) {
  const auto error = trie.add("", pattern, methods, 99);
  ASSERT_TRUE(error) << "accepted '" << pattern << "'";
  EXPECT_NE(error->message.find("conflicts with route #" + std::to_string(other)), std::string::npos)
      << error->message;
  EXPECT_EQ(error->other, other);
}

TEST(RouteTrie, SameShapeWithOtherParamNamesConflicts) {
  RouteTrie trie;
  add_ok(trie, "/users/:id", 1);
  add_ok(trie, "/files/*path", 2);
  expect_conflict(trie, "/users/:name", {}, 1);
  expect_conflict(trie, "/files/*rest", {}, 2);
  EXPECT_EQ(params_of(trie.match("h", "GET", "/users/3")), (Params{{"id", "3"}}));
}

TEST(RouteTrie, OverlappingMethodsConflict) {
  RouteTrie trie;
  add_ok(trie, "", "/orders/:id", {"GET", "POST"}, 1);
  add_ok(trie, "", "/orders/:id", {"DELETE"}, 2);
  expect_conflict(trie, "/orders/:oid", {"PUT", "POST"}, 1);
  expect_conflict(trie, "/orders/:id", {"DELETE"}, 2);
  EXPECT_EQ(trie.match("h", "PUT", "/orders/1").allow, "DELETE, GET, POST");
}

TEST(RouteTrie, DisjointMethodsAndDifferentShapesDoNotConflict) {
  RouteTrie trie;
  add_ok(trie, "", "/users/:id", {"GET"}, 1);
  add_ok(trie, "", "/users/:id", {"PUT"}, 2);
  add_ok(trie, "", "/users/:id", {}, 3);
  add_ok(trie, "", "/users/me", {}, 4);
  add_ok(trie, "", "/users/*rest", {}, 5);
  add_ok(trie, "", "/users/:id/", {}, 6);
  add_ok(trie, "other.example", "/users/:id", {}, 7);
  EXPECT_EQ(found(trie, "/users/1", "PUT"), 2);
  EXPECT_EQ(found(trie, "/users/1", "POST"), 3);
}

// ---- hosts ----------------------------------------------------------------------------------------------------

TEST(RouteTrie, HostTablesFallBackFromExactToWildcardToAny) {
  RouteTrie trie;
  add_ok(trie, "api.example.com", "/exact", {}, 1);
  add_ok(trie, "*.example.com", "/wild", {}, 2);
  add_ok(trie, "*.example.com", "/exact", {}, 3);
  add_ok(trie, "", "/any", {}, 4);
  EXPECT_EQ(found(trie, "/exact", "GET", "api.example.com"), 1);
  EXPECT_EQ(found(trie, "/wild", "GET", "api.example.com"), 2);
  EXPECT_EQ(found(trie, "/any", "GET", "api.example.com"), 4);
  EXPECT_EQ(found(trie, "/exact", "GET", "www.example.com"), 3);
  EXPECT_EQ(found(trie, "/wild", "GET", "a.b.example.com"), 2);
  EXPECT_EQ(found(trie, "/wild", "GET", "example.com"), -1);  // "*." needs a label in front
  EXPECT_EQ(found(trie, "/wild", "GET", "badexample.com"), -1);
  EXPECT_EQ(found(trie, "/any", "GET", ""), 4);
}

TEST(RouteTrie, MostSpecificWildcardHostWins) {
  RouteTrie trie;
  add_ok(trie, "*.example.com", "/x", {}, 1);
  add_ok(trie, "*.api.example.com", "/x", {}, 2);
  add_ok(trie, "*.com", "/x", {}, 3);
  EXPECT_EQ(found(trie, "/x", "GET", "v1.api.example.com"), 2);
  EXPECT_EQ(found(trie, "/x", "GET", "www.example.com"), 1);
  EXPECT_EQ(found(trie, "/x", "GET", "other.com"), 3);
}

TEST(RouteTrie, MethodMismatchFallsThroughToALaterHostTable) {
  RouteTrie trie;
  add_ok(trie, "api.example.com", "/x", {"GET"}, 1);
  add_ok(trie, "*.example.com", "/x", {"PUT"}, 2);
  add_ok(trie, "", "/x", {"POST"}, 3);
  EXPECT_EQ(found(trie, "/x", "POST", "api.example.com"), 3);
  EXPECT_EQ(found(trie, "/x", "PUT", "api.example.com"), 2);
  const auto match = trie.match("api.example.com", "DELETE", "/x");
  EXPECT_EQ(match.kind, Kind::kNoMethod);
  EXPECT_EQ(match.allow, "GET");  // the first table whose path matched
  EXPECT_EQ(trie.match("www.example.com", "DELETE", "/x").allow, "PUT");
}

TEST(RouteTrie, HostIsNormalised) {
  RouteTrie trie;
  add_ok(trie, "Api.Example.COM", "/x", {}, 1);
  add_ok(trie, "[::1]", "/x", {}, 2);
  add_ok(trie, "*.Example.com.", "/x", {}, 3);
  add_ok(trie, "", "/x", {}, 4);
  EXPECT_EQ(found(trie, "/x", "GET", "api.example.com"), 1);
  EXPECT_EQ(found(trie, "/x", "GET", "API.EXAMPLE.COM"), 1);
  EXPECT_EQ(found(trie, "/x", "GET", "api.example.com:8443"), 1);
  EXPECT_EQ(found(trie, "/x", "GET", "Api.Example.Com.:80"), 1);
  EXPECT_EQ(found(trie, "/x", "GET", "[::1]:8080"), 2);
  EXPECT_EQ(found(trie, "/x", "GET", "[::1]"), 2);
  EXPECT_EQ(found(trie, "/x", "GET", "WWW.EXAMPLE.COM:80"), 3);
  EXPECT_EQ(found(trie, "/x", "GET", "[::2]:8080"), 4);
  EXPECT_EQ(found(trie, "/x", "GET", std::string(1000, 'a')), 4);
}

// ---- scale and ownership --------------------------------------------------------------------------------------

TEST(RouteTrie, ManyRoutesEachMatchTheirOwnIndex) {
  constexpr std::uint32_t kRoutes = 500;
  RouteTrie trie;
  for (std::uint32_t i = 0; i < kRoutes; ++i) {
    const std::string n = std::to_string(i);
    add_ok(trie, i % 2 == 0 ? "/s/" + n : "/p" + n + "/:id/items", i);
  }
  for (std::uint32_t i = 0; i < kRoutes; ++i) {
    const std::string n = std::to_string(i);
    const std::string path = i % 2 == 0 ? "/s/" + n : "/p" + n + "/v" + n + "/items";
    const auto match = trie.match("h", "GET", path);
    ASSERT_EQ(match.kind, Kind::kFound) << i;
    EXPECT_EQ(match.route, i);
    const Params expected = i % 2 == 0 ? Params{} : Params{{"id", "v" + n}};
    EXPECT_EQ(params_of(match), expected);
  }
  EXPECT_EQ(found(trie, "/s/500"), -1);
}

TEST(RouteTrie, MovedTrieKeepsItsRoutesAndAllowStorage) {
  RouteTrie original;
  add_ok(original, "", "/a/:id", {"GET"}, 1);
  RouteTrie moved(std::move(original));
  RouteTrie assigned;
  assigned = std::move(moved);
  const auto match = assigned.match("h", "POST", "/a/1");
  EXPECT_EQ(match.kind, Kind::kNoMethod);
  EXPECT_EQ(match.allow, "GET");
  EXPECT_EQ(params_of(assigned.match("h", "GET", "/a/1")), (Params{{"id", "1"}}));
}

}  // namespace
}  // namespace apigw::routing
