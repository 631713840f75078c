// The cache stage's fill: what it keeps of a relayed response.
#include <gtest/gtest.h>

#include <array>

#include "server/cache_fill.h"

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

}  // namespace
}  // namespace apigw::server
