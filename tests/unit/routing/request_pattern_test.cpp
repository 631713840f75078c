// Tests for request patterns (migration.shadow_ignore): what parses, why the rest does not, and what matches.
// Each matching test lists candidate paths and the ones the pattern takes, so a reader sees both sides at once.
#include "apigw/routing/request_pattern.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace apigw::routing {
namespace {

using Paths = std::vector<std::string>;

// The reason `text` is refused, or "<parsed>".
std::string refusal(std::string_view text) {
  std::string why;
  return RequestPattern::parse(text, why) ? "<parsed>" : why;
}

// Those of `paths` that pattern `text` matches for a request with `method`.
Paths matched(std::string_view text, const Paths& paths, std::string_view method = "GET") {
  std::string why;
  const auto pattern = RequestPattern::parse(text, why);
  EXPECT_TRUE(pattern.has_value()) << text << ": " << why;
  Paths out;
  for (const std::string& path : paths) {
    if (pattern && pattern->matches(method, path)) out.push_back(path);
  }
  return out;
}

TEST(RequestPattern, ParsesMethodAndPathAsWritten) {
  std::string why;
  EXPECT_EQ(RequestPattern::parse("POST /payments/**", why)->text(), "POST /payments/**");
  for (const std::string_view text : {"/", "/notifications/**", "/a/*/b/**/c/", "VERSION-CONTROL /a", "M_SEARCH2 /a",
                                      "/%2Fa/b%20c"}) {
    EXPECT_EQ(refusal(text), "<parsed>") << text;
  }
}

TEST(RequestPattern, RefusesEachMalformedPatternWithItsReason) {
  const std::map<std::string, std::vector<std::string_view>> texts_by_reason = {
      {"empty pattern", {""}},
      {"the method must be an upper-case token (\"POST\")", {"post /a", "Post /a", "1GET /a", "GE*T /a", " /a"}},
      {"a method without a path", {"POST"}},
      {"more than one space between method and path", {"POST  /a"}},
      {"text after the path (only one space, between method and path, is allowed)", {"POST /a extra", "/a "}},
      {"the path must start with '/'", {"payments/**", "**", "POST payments", "POST "}},
      {"a control character in the path", {"/a\tb", "/a\x7f"}},
      {"a '?' in the path (patterns match the path alone, without the query)", {"/a?b=1"}},
      {"an empty segment ('//')", {"/a//b", "//", "/a//"}},
      {"a segment mixing '*' with other characters (a segment is literal, '*' or '**')",
       {"/a*", "/a/*b/c", "/***", "/a/**x"}},
  };
  for (const auto& [reason, texts] : texts_by_reason) {
    for (const std::string_view text : texts) EXPECT_EQ(refusal(text), reason) << "'" << text << "'";
  }
}

TEST(RequestPattern, MethodIsOptionalAndExact) {
  const Paths payment = {"/payments/1"};
  EXPECT_EQ(matched("POST /payments/**", payment, "POST"), payment);
  for (const std::string_view other : {"GET", "post", "POSTX", ""}) {
    EXPECT_EQ(matched("POST /payments/**", payment, other), Paths{}) << "methods are exact: '" << other << "'";
    EXPECT_EQ(matched("/payments/**", payment, other), payment) << "no method: any";
  }
}

TEST(RequestPattern, LiteralSegmentsCompareByteForByte) {
  EXPECT_EQ(matched("/users/me", {"/users/me", "/users/ME", "/users/me2", "/users", "/users/me/x", "/users/m%65"}),
            Paths{"/users/me"})
      << "the path is matched still percent-encoded";
  EXPECT_EQ(matched("/a%2Fb", {"/a%2Fb", "/a/b", "/a%2fb"}), Paths{"/a%2Fb"});
}

TEST(RequestPattern, TrailingSlashIsIgnoredOnBothSides) {
  const Paths candidates = {"/a/b", "/a/b/", "/a/b//"};
  EXPECT_EQ(matched("/a/b", candidates), (Paths{"/a/b", "/a/b/"})) << "only one trailing '/' is ignored";
  EXPECT_EQ(matched("/a/b/", candidates), (Paths{"/a/b", "/a/b/"}));
}

TEST(RequestPattern, RootMatchesOnlyRoot) {
  const Paths candidates = {"/", "/a", "/a/b/c", "", "*"};
  EXPECT_EQ(matched("/", candidates), Paths{"/"}) << "an empty path or an asterisk-form target is no path";
  EXPECT_EQ(matched("/**", candidates), (Paths{"/", "/a", "/a/b/c"}));
  EXPECT_EQ(matched("/*", candidates), Paths{"/a"});
}

TEST(RequestPattern, SingleStarIsExactlyOneSegment) {
  EXPECT_EQ(matched("/users/*/orders",
                    {"/users/7/orders", "/users/7/orders/", "/users/orders", "/users/7/8/orders", "/users//orders"}),
            (Paths{"/users/7/orders", "/users/7/orders/", "/users//orders"}))
      << "an empty segment is still a segment";
  EXPECT_EQ(matched("/*/*", {"/a/b", "/a", "/a/b/c"}), Paths{"/a/b"});
}

TEST(RequestPattern, DoubleStarAtTheEndTakesAnyDepthIncludingNone) {
  EXPECT_EQ(matched("/notifications/**", {"/notifications", "/notifications/", "/notifications/1",
                                          "/notifications/1/read/all", "/notificationsx", "/v1/notifications/1"}),
            (Paths{"/notifications", "/notifications/", "/notifications/1", "/notifications/1/read/all"}));
}

TEST(RequestPattern, DoubleStarAtTheStart) {
  EXPECT_EQ(matched("/**/refund", {"/refund", "/payments/7/refund", "/a/refund/b/refund", "/payments/7/refund/x",
                                   "/payments/7/refunds"}),
            (Paths{"/refund", "/payments/7/refund", "/a/refund/b/refund"}));
}

TEST(RequestPattern, DoubleStarInTheMiddle) {
  EXPECT_EQ(matched("/api/**/payments/*", {"/api/payments/1", "/api/v1/payments/1", "/api/v1/eu/payments/1",
                                           "/api/payments/payments/1", "/api/v1/payments", "/api/v1/payments/1/2",
                                           "/v1/payments/1"}),
            (Paths{"/api/payments/1", "/api/v1/payments/1", "/api/v1/eu/payments/1", "/api/payments/payments/1"}));
}

TEST(RequestPattern, SeveralDoubleStars) {
  EXPECT_EQ(matched("/**/a/**/b/**", {"/a/b", "/x/a/y/z/b/w", "/a/a/b/b", "/b/a/b", "/b/a", "/a"}),
            (Paths{"/a/b", "/x/a/y/z/b/w", "/a/a/b/b", "/b/a/b"}));
  EXPECT_EQ(matched("/**/**", {"/", "/x/y"}), (Paths{"/", "/x/y"}));
  EXPECT_EQ(matched("/**/*/**", {"/", "/x", "/x/y"}), (Paths{"/x", "/x/y"})) << "at least one segment";
  EXPECT_EQ(matched("/**/a/*/b/**/c", {"/a/x/b/c", "/a/a/x/b/q/c", "/a/b/c"}), (Paths{"/a/x/b/c", "/a/a/x/b/q/c"}));
}

TEST(RequestPattern, ManyDoubleStarsOnALongPathStayFast) {
  // An exponential matcher would try every way of sharing 60 segments among 20 `**`; this must finish at once.
  std::string text;
  for (int i = 0; i < 20; ++i) text += "/**/a";
  text += "/b";
  std::string path;
  for (int i = 0; i < 60; ++i) path += "/a";
  EXPECT_EQ(matched(text, {path, path + "/b"}), Paths{path + "/b"});
}

}  // namespace
}  // namespace apigw::routing
