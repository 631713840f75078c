// The head of a response served from the cache, and the 304 answer to a client that holds the stored version.
#include "apigw/cache/stored_answer.h"

#include <gtest/gtest.h>

#include <string>

#include <boost/beast/http/fields.hpp>

namespace apigw::cache {
namespace {

namespace bhttp = boost::beast::http;

CachedResponse response(unsigned status, std::string body) {
  CachedResponse stored;
  stored.status = status;
  stored.headers = {{"Content-Type", "text/plain"}, {"ETag", "\"v1\""}};
  stored.body = std::move(body);
  return stored;
}

TEST(CachedResponseHead, CarriesStoredHeadersAgeLengthAndHit) {
  CachedHead head;
  head.request_id = "rid-1";
  head.route = "items";
  head.upstream = "demo";
  head.age = std::chrono::seconds(7);
  const std::string out = cached_response_head(response(200, "hello"), head);
  EXPECT_TRUE(out.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nETag: \"v1\"\r\n")) << out;
  EXPECT_NE(out.find("\r\nAge: 7\r\n"), std::string::npos);
  EXPECT_NE(out.find("\r\nContent-Length: 5\r\n"), std::string::npos);
  EXPECT_NE(out.find("\r\nX-Request-Id: rid-1\r\n"), std::string::npos);
  EXPECT_NE(out.find("\r\nX-Cache: HIT\r\n"), std::string::npos);
  EXPECT_NE(out.find("\r\nX-Apigw-Route: items\r\nX-Apigw-Upstream: demo\r\n"), std::string::npos);
  EXPECT_NE(out.find("\r\nDate: "), std::string::npos);
  EXPECT_EQ(out.find("Connection"), std::string::npos);
  EXPECT_TRUE(out.ends_with("\r\n\r\n"));
}

TEST(CachedResponseHead, ConnectionFollowsKeepAliveAndVersion) {
  CachedHead head;
  head.keep_alive = false;
  EXPECT_NE(cached_response_head(response(200, ""), head).find("\r\nConnection: close\r\n"), std::string::npos);
  head.keep_alive = true;
  head.http10 = true;
  EXPECT_NE(cached_response_head(response(200, ""), head).find("\r\nConnection: keep-alive\r\n"),
            std::string::npos);
  // No debug headers unless given.
  EXPECT_EQ(cached_response_head(response(200, ""), head).find("X-Apigw-"), std::string::npos);
}

TEST(CachedResponseHead, NoLengthForStatusesWithoutBody) {
  const std::string out = cached_response_head(response(204, ""), CachedHead{});
  EXPECT_TRUE(out.starts_with("HTTP/1.1 204 No Content\r\n"));
  EXPECT_EQ(out.find("Content-Length"), std::string::npos);
}

CachedResponse with_validators() {
  CachedResponse stored = response(200, "body");
  stored.headers = {{"Content-Type", "text/plain"}, {"ETag", "W/\"v7\""}, {"Cache-Control", "max-age=60"},
                    {"Last-Modified", "Mon, 23 Nov 2026 10:00:00 GMT"}, {"X-Other", "x"}};
  return stored;
}

bool conditional(std::initializer_list<std::pair<bhttp::field, std::string_view>> headers) {
  bhttp::fields request;
  for (const auto& [name, value] : headers) request.insert(name, value);
  return not_modified(with_validators(), request);
}

TEST(NotModified, IfNoneMatchComparesTagsWeakly) {
  EXPECT_TRUE(conditional({{bhttp::field::if_none_match, "\"v7\""}}));
  EXPECT_TRUE(conditional({{bhttp::field::if_none_match, "W/\"v7\""}}));
  EXPECT_TRUE(conditional({{bhttp::field::if_none_match, "\"a\", \"v7\""}}));
  EXPECT_TRUE(conditional({{bhttp::field::if_none_match, "*"}}));
  EXPECT_FALSE(conditional({{bhttp::field::if_none_match, "\"v8\""}}));
  EXPECT_FALSE(conditional({{bhttp::field::if_none_match, ""}}));
  // If-None-Match decides alone when present.
  EXPECT_FALSE(conditional({{bhttp::field::if_none_match, "\"v8\""},
                            {bhttp::field::if_modified_since, "Mon, 23 Nov 2026 10:00:00 GMT"}}));
  EXPECT_FALSE(conditional({}));
}

TEST(NotModified, IfModifiedSinceMatchesLastModifiedExactly) {
  EXPECT_TRUE(conditional({{bhttp::field::if_modified_since, "Mon, 23 Nov 2026 10:00:00 GMT"}}));
  EXPECT_FALSE(conditional({{bhttp::field::if_modified_since, "Mon, 23 Nov 2026 10:00:01 GMT"}}));
}

TEST(NotModified, OnlyA200WithValidatorsIsAnsweredSo) {
  bhttp::fields request;
  request.insert(bhttp::field::if_none_match, "*");
  EXPECT_FALSE(not_modified(response(404, ""), request));
  bhttp::fields tagged;
  tagged.insert(bhttp::field::if_none_match, "\"v1\"");
  EXPECT_TRUE(not_modified(response(200, ""), tagged));  // response() stores ETag "v1"
  CachedResponse untagged = response(200, "");
  untagged.headers.clear();
  EXPECT_FALSE(not_modified(untagged, tagged));
}

TEST(NotModified, The304KeepsOnlyValidityHeaders) {
  const CachedResponse reduced = not_modified_response(with_validators());
  EXPECT_EQ(reduced.status, 304u);
  EXPECT_TRUE(reduced.body.empty());
  std::vector<std::string> names;
  for (const auto& header : reduced.headers) names.push_back(header.name);
  EXPECT_EQ(names, (std::vector<std::string>{"ETag", "Cache-Control", "Last-Modified"}));
  const std::string head = cached_response_head(reduced, CachedHead{});
  EXPECT_TRUE(head.starts_with("HTTP/1.1 304 Not Modified\r\n")) << head;
  EXPECT_EQ(head.find("Content-Length"), std::string::npos);
}

TEST(AnswerFromStore, SendsTheStoredBodyExceptToHead) {
  const CachedResponse stored = response(200, "hello");
  const bhttp::fields request;
  const StoredAnswer get = answer_from_store(stored, request, false, CachedHead{}, 0);
  EXPECT_EQ(get.status, 200u);
  EXPECT_EQ(get.body, "hello");
  EXPECT_NE(get.head.find("Content-Length: 5\r\n"), std::string::npos);
  const StoredAnswer head = answer_from_store(stored, request, true, CachedHead{}, 0);
  EXPECT_TRUE(head.body.empty());
  EXPECT_NE(head.head.find("Content-Length: 5\r\n"), std::string::npos) << "HEAD says the length GET would send";
}

TEST(AnswerFromStore, AClientHoldingTheStoredVersionGets304WithoutBody) {
  const CachedResponse stored = response(200, "hello");
  bhttp::fields request;
  request.insert(bhttp::field::if_none_match, "\"v1\"");
  const StoredAnswer answer = answer_from_store(stored, request, false, CachedHead{}, 0);
  EXPECT_EQ(answer.status, 304u);
  EXPECT_TRUE(answer.body.empty());
  EXPECT_EQ(answer.head.rfind("HTTP/1.1 304 ", 0), 0u);
  EXPECT_EQ(answer.head.find("Content-Type"), std::string::npos);
  EXPECT_EQ(answer.head.find("Content-Length"), std::string::npos);
}

}  // namespace
}  // namespace apigw::cache
