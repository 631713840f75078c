// Where a Location or Content-Location points relative to the request it answers: relative references resolved,
// absolute ones kept only for the request's own host, and anything that is not a URI reference refused.
#include "apigw/http/location.h"

#include <gtest/gtest.h>

#include <string>

namespace apigw::http {
namespace {

constexpr std::string_view kHost = "api.example.com";

// "<path>?<query>" of the target, "<none>" when there is none; the request is GET /a/b?q=1 on kHost unless given.
std::string target(std::string_view reference, std::string_view host = kHost, std::string_view path = "/a/b",
                   std::string_view query = "q=1") {
  const std::optional<SameHostTarget> out = same_host_target(reference, host, path, query);
  if (!out) return "<none>";
  return out->path + "?" + out->query;
}

TEST(SameHostTarget, RelativeReferencesResolveAgainstTheRequest) {
  EXPECT_EQ(target("/items/7"), "/items/7?");
  EXPECT_EQ(target("/items/7?x=2"), "/items/7?x=2");
  EXPECT_EQ(target("c"), "/a/c?") << "a relative path replaces the last segment";
  EXPECT_EQ(target("c/d?e"), "/a/c/d?e");
  EXPECT_EQ(target("./c/"), "/a/c/?");
  EXPECT_EQ(target("../c"), "/c?");
  EXPECT_EQ(target("?x=2"), "/a/b?x=2") << "a query alone keeps the path";
  EXPECT_EQ(target(""), "/a/b?q=1") << "an empty reference is the request itself";
  EXPECT_EQ(target("#top"), "/a/b?q=1") << "a fragment alone too";
  EXPECT_EQ(target("/items#frag"), "/items?") << "fragments are dropped";
  EXPECT_EQ(target("//api.example.com/p?k"), "/p?k") << "a network-path reference to the same host";
  EXPECT_EQ(target("c", kHost, "/a/b/", ""), "/a/b/c?");
  EXPECT_EQ(target("c", kHost, "", ""), "/c?") << "an empty request path counts as /";
}

TEST(SameHostTarget, SurroundingWhitespaceIsIgnored) {
  EXPECT_EQ(target("  /items/7 "), "/items/7?");
  EXPECT_EQ(target("\thttp://api.example.com/x\t"), "/x?");
}

TEST(SameHostTarget, DotSegmentsAreRemoved) {
  EXPECT_EQ(target("/x/./y/../z"), "/x/z?");
  EXPECT_EQ(target("/x/y/.."), "/x/?");
  EXPECT_EQ(target("/x/%2e%2E/y"), "/y?") << "encoded dots are dots, as in the request target";
  EXPECT_EQ(target("/x/.hidden/..y"), "/x/.hidden/..y?") << "only whole dot segments";
}

// RFC 3986 §5.2.4 and its examples in §5.4.2 ("../../../g" from http://a/b/c/d;p?q is http://a/g): a ".." at
// the root is dropped, so the result has no dot segment left (location.h: "dot segments removed"). A path
// starting "/.." can never be a request's path (parse_request_target refuses it), so invalidating it misses the
// resource the upstream named.
TEST(SameHostTarget, DotSegmentsAboveTheRootAreDropped) {
  EXPECT_EQ(target("../../../../c"), "/c?");
  EXPECT_EQ(target("/../c"), "/c?");
  EXPECT_EQ(target("http://api.example.com/a/../../b"), "/b?");
}

TEST(SameHostTarget, PathAndQueryStayPercentEncoded) {
  EXPECT_EQ(target("/a%20b?c=%2F&d=e+f"), "/a%20b?c=%2F&d=e+f");
  EXPECT_EQ(target("/caf%C3%A9"), "/caf%C3%A9?");
  EXPECT_EQ(target("/x?"), "/x?") << "an empty query is no query";
}

// location.h: the path is "still percent-encoded". %2F is an encoded reserved character: "/a%2Fb" is one
// segment and another resource than "/a/b" (RFC 3986 §2.2, §6.2.2.2), and the request target keeps it encoded,
// so decoding it here points the invalidation at the wrong resource.
TEST(SameHostTarget, AnEncodedSlashStaysEncoded) {
  EXPECT_EQ(target("/a%2Fb"), "/a%2Fb?");
  EXPECT_EQ(target("/a%2fb/c"), "/a%2fb/c?");
  EXPECT_EQ(target("x%2Fy"), "/a/x%2Fy?");
}

TEST(SameHostTarget, AbsoluteUrisOfTheSameHost) {
  EXPECT_EQ(target("http://api.example.com/x?y=1"), "/x?y=1");
  EXPECT_EQ(target("https://api.example.com/x"), "/x?");
  EXPECT_EQ(target("http://api.example.com"), "/?") << "an empty path is /";
  EXPECT_EQ(target("http://api.example.com?z"), "/?z");
  // Scheme and host compare case-insensitively; the path does not change case.
  EXPECT_EQ(target("HTTP://API.Example.COM/X"), "/X?");
  EXPECT_EQ(target("http://api.example.com/x", "API.EXAMPLE.COM"), "/x?");
  // A trailing dot and a default port aside, on either side.
  EXPECT_EQ(target("http://api.example.com./x"), "/x?");
  EXPECT_EQ(target("http://api.example.com:80/x"), "/x?");
  EXPECT_EQ(target("https://api.example.com:443/x"), "/x?");
  EXPECT_EQ(target("http://api.example.com/x", "api.example.com:80"), "/x?");
  EXPECT_EQ(target("https://api.example.com/x", "api.example.com.:443"), "/x?");
  // Another port is another authority, unless the request named it too.
  EXPECT_EQ(target("http://api.example.com:8080/x", "api.example.com:8080"), "/x?");
  EXPECT_EQ(target("http://[::1]:80/x", "[::1]"), "/x?");
  EXPECT_EQ(target("http://[::1]:8080/x", "[::1]:8080"), "/x?");
}

TEST(SameHostTarget, OtherHostsAndSchemesAreNotTargets) {
  EXPECT_EQ(target("http://other.example.com/x"), "<none>");
  EXPECT_EQ(target("https://api.example.com.evil.com/x"), "<none>");
  EXPECT_EQ(target("http://example.com/x"), "<none>");
  EXPECT_EQ(target("//other.example.com/x"), "<none>");
  EXPECT_EQ(target("http://api.example.com:8080/x"), "<none>");
  EXPECT_EQ(target("http://api.example.com/x", "api.example.com:8080"), "<none>");
  EXPECT_EQ(target("http://[::1]:8080/x", "[::1]"), "<none>");
  EXPECT_EQ(target("http://user@api.example.com/x"), "<none>") << "userinfo makes another authority";
  EXPECT_EQ(target("ftp://api.example.com/x"), "<none>");
  EXPECT_EQ(target("ws://api.example.com/x"), "<none>");
  EXPECT_EQ(target("mailto:admin@api.example.com"), "<none>");
  EXPECT_EQ(target("javascript:alert(1)"), "<none>");
  EXPECT_EQ(target("urn:isbn:0451450523"), "<none>");
}

TEST(SameHostTarget, WhatIsNotAUriReferenceIsRefused) {
  for (const std::string_view garbage : {"/a b", "http://[::1/x", "%zz", "/a%2", "/x\r\nSet-Cookie: a=1",
                                         "http://exa mple.com/", "/\x01", "/caf\xc3\xa9", "<a>", "/a{b}"}) {
    EXPECT_EQ(target(garbage), "<none>") << garbage;
  }
}

}  // namespace
}  // namespace apigw::http
