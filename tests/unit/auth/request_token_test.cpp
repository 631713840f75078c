// Tests for finding a request's token among the configured sources (redaction: http_query_test.cpp).
#include "apigw/auth/request_token.h"

#include <gtest/gtest.h>

#include <vector>

namespace apigw::auth {
namespace {

namespace bhttp = boost::beast::http;

// "header:Authorization" and the like, as the config holds them.
std::vector<TokenSource> sources(std::initializer_list<std::string_view> texts) {
  std::vector<TokenSource> out;
  for (std::string_view text : texts) {
    const std::size_t colon = text.find(':');
    const std::string_view kind = text.substr(0, colon);
    out.push_back({kind == "header"   ? TokenSource::Kind::kHeader
                   : kind == "cookie" ? TokenSource::Kind::kCookie
                                      : TokenSource::Kind::kQuery,
                   std::string(text.substr(colon + 1))});
  }
  return out;
}

TEST(RequestToken, AuthorizationTakesBearerOnly) {
  const auto from = sources({"header:Authorization"});
  bhttp::fields headers;
  headers.set(bhttp::field::authorization, "Bearer abc.DEF-123");
  RequestToken token = find_request_token(headers, "", false, from);
  EXPECT_TRUE(token.found);
  EXPECT_EQ(token.token, "abc.DEF-123");
  EXPECT_EQ(token.shape, TokenShape::kValid);

  headers.set(bhttp::field::authorization, "Basic dXNlcjpwYXNz");
  EXPECT_FALSE(find_request_token(headers, "", false, from).found) << "another scheme is not ours";

  headers.set(bhttp::field::authorization, "Bearer ");
  token = find_request_token(headers, "", false, from);
  EXPECT_TRUE(token.found);
  EXPECT_EQ(token.shape, TokenShape::kEmpty);
}

TEST(RequestToken, OtherHeadersTakeTheWholeValueOrBearer) {
  const auto from = sources({"header:X-Api-Token"});
  bhttp::fields headers;
  headers.set("X-Api-Token", "t0k3n");
  EXPECT_EQ(find_request_token(headers, "", false, from).token, "t0k3n");
  headers.set("X-Api-Token", "bearer t0k3n");
  EXPECT_EQ(find_request_token(headers, "", false, from).token, "t0k3n");
}

TEST(RequestToken, FirstSourcePresentWins) {
  const auto from = sources({"header:Authorization", "cookie:session_token", "query:access_token"});
  bhttp::fields headers;
  headers.insert(bhttp::field::cookie, "theme=dark");
  headers.insert(bhttp::field::cookie, "session_token=from-cookie; lang=en");
  RequestToken token = find_request_token(headers, "access_token=from-query", true, from);
  EXPECT_EQ(token.token, "from-cookie");
  EXPECT_EQ(token.kind, TokenSource::Kind::kCookie);

  headers.set(bhttp::field::authorization, "Bearer from-header");
  EXPECT_EQ(find_request_token(headers, "access_token=from-query", true, from).token, "from-header");

  const bhttp::fields none;
  token = find_request_token(none, "a=1&access_token=from%2Dquery", true, from);
  EXPECT_EQ(token.token, "from-query");
  EXPECT_EQ(token.kind, TokenSource::Kind::kQuery);
  EXPECT_FALSE(find_request_token(none, "a=1", true, from).found);
  EXPECT_FALSE(find_request_token(none, "", false, from).found);
}

TEST(RequestToken, BadShapesAreFoundButNotValid) {
  const auto from = sources({"header:Authorization", "query:access_token"});
  bhttp::fields headers;
  headers.set(bhttp::field::authorization, "Bearer a{b}c");
  EXPECT_EQ(find_request_token(headers, "", false, from).shape, TokenShape::kBadCharacter);
  headers.set(bhttp::field::authorization, "Bearer " + std::string(kMaxTokenBytes + 1, 'a'));
  EXPECT_EQ(find_request_token(headers, "", false, from).shape, TokenShape::kTooLong);

  const bhttp::fields none;
  RequestToken token = find_request_token(none, "access_token=%zz", true, from);
  EXPECT_TRUE(token.found);
  EXPECT_EQ(token.shape, TokenShape::kBadCharacter);
  token = find_request_token(none, "access_token=a%20b", true, from);  // a space, decoded
  EXPECT_EQ(token.shape, TokenShape::kBadCharacter);
  token = find_request_token(none, "access_token=", true, from);
  EXPECT_TRUE(token.found);
  EXPECT_EQ(token.shape, TokenShape::kEmpty);
}

}  // namespace
}  // namespace apigw::auth
