// The cache stage's fill (what it keeps of a relayed response) and the head of a response served from the cache.
#include <gtest/gtest.h>

#include <array>

#include "server/cache_stage.h"

namespace apigw::server {
namespace {

namespace bhttp = boost::beast::http;
using Field = http::ResponseParser::Field;

config::RouteCacheConfig rule() {
  config::RouteCacheConfig cache;
  cache.enabled = true;
  cache.ttl = std::chrono::seconds(30);
  return cache;
}

TEST(CacheFill, KeepsAWholeStorableResponse) {
  const config::RouteCacheConfig route = rule();
  CacheFill fill(route, 1024 * 1024);
  const std::array<Field, 3> fields{Field{bhttp::field::content_type, "Content-Type", "application/json"},
                                    Field{bhttp::field::cache_control, "Cache-Control", "max-age=10"},
                                    Field{bhttp::field::content_length, "Content-Length", "11"}};
  fill.on_head(200, fields);
  fill.on_body("{\"a\":");
  fill.on_body("\"b\"}");
  EXPECT_FALSE(fill.record(1000)) << "nothing until the response is complete";
  fill.on_complete();
  EXPECT_EQ(fill.ttl(), std::chrono::seconds(10));
  const auto record = fill.record(1000);
  ASSERT_TRUE(record);
  const auto stored = cache::decode_record(*record);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->status, 200u);
  EXPECT_EQ(stored->body, "{\"a\":\"b\"}");
  EXPECT_EQ(stored->stored_at, 1000);
  EXPECT_EQ(stored->ttl, std::chrono::seconds(10));
  ASSERT_EQ(stored->headers.size(), 2u);  // Content-Length is regenerated, not stored
  EXPECT_EQ(stored->headers[0].name, "Content-Type");
  EXPECT_EQ(stored->headers[1].value, "max-age=10");
}

TEST(CacheFill, KeepsNothingOfAResponseThatMayNotBeStored) {
  const config::RouteCacheConfig route = rule();
  CacheFill cookie(route, 1024);
  const std::array<Field, 1> set_cookie{Field{bhttp::field::set_cookie, "Set-Cookie", "a=b"}};
  cookie.on_head(200, set_cookie);
  cookie.on_body("x");
  cookie.on_complete();
  EXPECT_FALSE(cookie.record(1));

  CacheFill status(route, 1024);
  status.on_head(500, {});
  status.on_complete();
  EXPECT_FALSE(status.record(1));
}

TEST(CacheFill, GivesUpPastTheItemLimit) {
  const config::RouteCacheConfig route = rule();
  CacheFill fill(route, 100);
  fill.on_head(200, {});
  fill.on_body(std::string(60, 'a'));
  fill.on_body(std::string(60, 'b'));
  fill.on_complete();
  EXPECT_FALSE(fill.record(1));

  // The limit counts the whole record, not only the body.
  CacheFill close(route, 100);
  close.on_head(200, {});
  close.on_body(std::string(90, 'a'));
  close.on_complete();
  EXPECT_FALSE(close.record(1));
}

cache::CachedResponse response(unsigned status, std::string body) {
  cache::CachedResponse stored;
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

cache::CachedResponse with_validators() {
  cache::CachedResponse stored = response(200, "body");
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
  cache::CachedResponse untagged = response(200, "");
  untagged.headers.clear();
  EXPECT_FALSE(not_modified(untagged, tagged));
}

TEST(NotModified, The304KeepsOnlyValidityHeaders) {
  const cache::CachedResponse reduced = not_modified_response(with_validators());
  EXPECT_EQ(reduced.status, 304u);
  EXPECT_TRUE(reduced.body.empty());
  std::vector<std::string> names;
  for (const auto& header : reduced.headers) names.push_back(header.name);
  EXPECT_EQ(names, (std::vector<std::string>{"ETag", "Cache-Control", "Last-Modified"}));
  const std::string head = cached_response_head(reduced, CachedHead{});
  EXPECT_TRUE(head.starts_with("HTTP/1.1 304 Not Modified\r\n")) << head;
  EXPECT_EQ(head.find("Content-Length"), std::string::npos);
}

}  // namespace
}  // namespace apigw::server
