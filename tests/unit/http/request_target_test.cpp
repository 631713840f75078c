// Request-target parsing, dot-segment resolution and prefix stripping.
#include "apigw/http/request_target.h"

#include <gtest/gtest.h>

namespace apigw::http {
namespace {

struct Parsed {
  std::string error;
  std::string path;
  std::string query;
  bool has_query = false;
  std::string authority;
};

Parsed parse_target(std::string_view raw) {
  RequestTarget target;
  std::string storage;
  const std::string_view error = parse_request_target(raw, target, storage);
  return {std::string(error), std::string(target.path), std::string(target.query), target.has_query,
          std::string(target.authority)};
}

TEST(RequestTarget, OriginFormSplitsPathAndQuery) {
  const Parsed p = parse_target("/users/7?a=1&b=2");
  EXPECT_EQ(p.error, "");
  EXPECT_EQ(p.path, "/users/7");
  EXPECT_EQ(p.query, "a=1&b=2");
  EXPECT_TRUE(p.has_query);
  EXPECT_FALSE(parse_target("/users/7").has_query);
  EXPECT_TRUE(parse_target("/users/7?").has_query);
}

TEST(RequestTarget, AbsoluteFormKeepsAuthority) {
  const Parsed p = parse_target("http://api.example.com:8080/users/7?x=1");
  EXPECT_EQ(p.error, "");
  EXPECT_EQ(p.authority, "api.example.com:8080");
  EXPECT_EQ(p.path, "/users/7");
  EXPECT_EQ(p.query, "x=1");
  EXPECT_EQ(parse_target("HTTP://a/b").path, "/b");
}

TEST(RequestTarget, RejectsOtherForms) {
  EXPECT_NE(parse_target("").error, "");
  EXPECT_NE(parse_target("users/7").error, "");
  EXPECT_NE(parse_target("*").error, "");
  EXPECT_NE(parse_target("https://a/b").error, "");
  EXPECT_NE(parse_target("http:///b").error, "");
  EXPECT_NE(parse_target("http://a").error, "");
  EXPECT_NE(parse_target("/a#frag").error, "");
}

TEST(RequestTarget, RejectsBytesOutsideAscii) {
  // RFC 9112 §3.2: raw UTF-8 or Latin-1 must be percent-encoded by the client.
  for (const std::string_view raw : {"/caf\xc3\xa9", "/caf\xe9", "/a?q=\xc3\xa9", "/\x80", "/a\xff/b",
                                     "http://h\xc3\xa9.example/a", "\xc3\xa9/a"}) {
    const Parsed p = parse_target(raw);
    EXPECT_NE(p.error, "") << raw;
    EXPECT_EQ(p.path, "") << raw;
  }
  // The same characters percent-encoded are fine.
  EXPECT_EQ(parse_target("/caf%C3%A9").error, "");
  EXPECT_EQ(parse_target("/caf%C3%A9").path, "/caf%C3%A9");
  EXPECT_EQ(parse_target("/a?q=%E9").query, "q=%E9");
}

TEST(RequestTarget, ResolvesDotSegments) {
  EXPECT_EQ(parse_target("/public/../admin").path, "/admin");
  EXPECT_EQ(parse_target("/a/./b").path, "/a/b");
  EXPECT_EQ(parse_target("/a/b/..").path, "/a/");
  EXPECT_EQ(parse_target("/a/%2e%2E/b").path, "/b");
  EXPECT_EQ(parse_target("/a/.hidden/b").path, "/a/.hidden/b");
  EXPECT_EQ(parse_target("/a/..b").path, "/a/..b");
  EXPECT_EQ(parse_target("/a/b/../c?q=/../x").path, "/a/c");
  EXPECT_EQ(parse_target("/a/b/../c?q=/../x").query, "q=/../x");
}

TEST(RequestTarget, RejectsClimbingAboveRoot) {
  EXPECT_NE(parse_target("/../etc/passwd").error, "");
  EXPECT_NE(parse_target("/a/../../b").error, "");
  EXPECT_NE(parse_target("/%2e%2e/b").error, "");
}

TEST(RequestTarget, StripPrefixOnlyAtSegmentBoundary) {
  EXPECT_EQ(strip_path_prefix("/v1/users/7", "/v1"), "/users/7");
  EXPECT_EQ(strip_path_prefix("/v1", "/v1"), "/");
  EXPECT_EQ(strip_path_prefix("/v1/", "/v1"), "/");
  EXPECT_EQ(strip_path_prefix("/v10/users", "/v1"), "/v10/users");
  EXPECT_EQ(strip_path_prefix("/users", "/v1"), "/users");
  EXPECT_EQ(strip_path_prefix("/users", ""), "/users");
}

TEST(PercentDecode, DecodesEscapesAndOptionallyPlus) {
  EXPECT_EQ(percent_decode("user%3A42%2Fa", false), "user:42/a");
  EXPECT_EQ(percent_decode("a+b%20c", false), "a+b c");
  EXPECT_EQ(percent_decode("a+b%20c", true), "a b c");
  EXPECT_EQ(percent_decode("%e2%82%AC", false), "\xe2\x82\xac");
  EXPECT_EQ(percent_decode("%00", false), std::string(1, '\0'));
  EXPECT_EQ(percent_decode("", false), "");
}

TEST(PercentDecode, RefusesBrokenEscapes) {
  EXPECT_FALSE(percent_decode("%", false));
  EXPECT_FALSE(percent_decode("a%2", false));
  EXPECT_FALSE(percent_decode("%zz", false));
  EXPECT_FALSE(percent_decode("%%41", false));
}

}  // namespace
}  // namespace apigw::http
