// The cache stage's fill: what it keeps of a relayed response, how old and under which resource version it is
// stored; and the write observer, which reads what an unsafe request's response invalidates.
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

#include "apigw/http/http_date.h"
#include "server/cache_fill.h"

namespace apigw::server {
namespace {

namespace bhttp = boost::beast::http;
using Field = http::ResponseParser::Field;
using std::chrono::seconds;

config::RouteCacheConfig rule() {
  config::RouteCacheConfig cache;
  cache.enabled = true;
  cache.ttl = std::chrono::seconds(30);
  return cache;
}

CacheFill::Options sent_now(std::uint64_t version = 1) {
  CacheFill::Options options;
  options.version = version;
  options.request_time = cache::unix_now();
  return options;
}

// The stored values of every `name` header of a record, in order.
std::vector<std::string> stored_values(const cache::CachedResponse& record, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& header : record.headers) {
    if (header.name == name) out.push_back(header.value);
  }
  return out;
}

TEST(CacheFill, KeepsAWholeStorableResponse) {
  const config::RouteCacheConfig route = rule();
  const CacheFill::Options options = sent_now(77);
  CacheFill fill(route, 1024 * 1024, options);
  const std::array<Field, 3> fields{Field{bhttp::field::content_type, "Content-Type", "application/json"},
                                    Field{bhttp::field::cache_control, "Cache-Control", "max-age=10"},
                                    Field{bhttp::field::content_length, "Content-Length", "11"}};
  fill.on_head(200, fields);
  const std::int64_t after_head = cache::unix_now();
  fill.on_body("{\"a\":");
  fill.on_body("\"b\"}");
  EXPECT_FALSE(fill.record({})) << "nothing until the response is complete";
  fill.on_complete();
  const auto record = fill.record({});
  ASSERT_TRUE(record);
  const auto stored = cache::decode_record(*record);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->status, 200u);
  EXPECT_EQ(stored->body, "{\"a\":\"b\"}");
  // Stored when its head arrived; as old as the exchange took (0 or 1 s, as the clock ticks).
  EXPECT_GE(stored->stored_at, options.request_time);
  EXPECT_LE(stored->stored_at, after_head);
  EXPECT_EQ(stored->initial_age, seconds(stored->stored_at - options.request_time));
  EXPECT_EQ(stored->ttl, seconds(10)) << "the record keeps the whole lifetime";
  EXPECT_EQ(fill.ttl(), seconds(10) - stored->initial_age) << "Memcached keeps what is left of it";
  EXPECT_EQ(stored->resource_version, 77u);
  // Content-Length is regenerated, not stored; a Date is added, since the response had none.
  ASSERT_EQ(stored->headers.size(), 3u);
  EXPECT_EQ(stored->headers[0].name, "Content-Type");
  EXPECT_EQ(stored->headers[1].value, "max-age=10");
  EXPECT_EQ(stored->headers[2].name, "Date");
  EXPECT_EQ(stored->headers[2].value, http::format_http_date(stored->stored_at));
}

TEST(CacheFill, KeepsTheResponsesOwnDateAndAgesByIt) {
  const config::RouteCacheConfig route = rule();
  const CacheFill::Options options = sent_now();
  const std::string date = http::format_http_date(options.request_time - 5);
  CacheFill fill(route, 1024, options);
  const std::array<Field, 2> fields{Field{bhttp::field::date, "Date", date},
                                    Field{bhttp::field::cache_control, "Cache-Control", "max-age=20"}};
  fill.on_head(200, fields);
  fill.on_complete();
  const auto stored = cache::decode_record(fill.record({}).value_or(""));
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored_values(*stored, "Date"), std::vector<std::string>{date}) << "kept once, as sent";
  // Apparent age: the Date is 5 s before the request went out.
  EXPECT_EQ(stored->initial_age, seconds(stored->stored_at - options.request_time + 5));
  EXPECT_EQ(stored->ttl, seconds(20));
  EXPECT_EQ(fill.ttl(), seconds(20) - stored->initial_age);
}

TEST(CacheFill, AnUnreadableDateIsReplacedByTheArrivalTime) {
  const config::RouteCacheConfig route = rule();
  CacheFill fill(route, 1024, sent_now());
  const std::array<Field, 2> fields{Field{bhttp::field::date, "Date", "yesterday"},
                                    Field{bhttp::field::etag, "ETag", "\"x\""}};
  fill.on_head(200, fields);
  fill.on_complete();
  const auto stored = cache::decode_record(fill.record({}).value_or(""));
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored_values(*stored, "Date"), std::vector<std::string>{http::format_http_date(stored->stored_at)});
  EXPECT_EQ(stored_values(*stored, "ETag"), std::vector<std::string>{"\"x\""});
}

TEST(CacheFill, TheTagHeaderGivesTagsAndIsNotStored) {
  config::RouteCacheConfig route = rule();
  route.tag_header = "X-Tags";
  CacheFill fill(route, 1024, sent_now());
  const std::array<Field, 3> fields{Field{bhttp::field::unknown, "x-tags", "product:7  user:42\tproduct:7"},
                                    Field{bhttp::field::unknown, "X-Tags", "list"},
                                    Field{bhttp::field::unknown, "Surrogate-Key", "not-read"}};
  fill.on_head(200, fields);
  fill.on_complete();
  EXPECT_EQ(fill.header_tags(), (std::vector<std::string>{"product:7", "user:42", "list"}));
  const std::vector<cache::TagVersion> tags{{"product:7", 5}, {"route", 6}};
  const auto stored = cache::decode_record(fill.record(tags).value_or(""));
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->tags, tags);
  EXPECT_TRUE(stored_values(*stored, "X-Tags").empty());
  EXPECT_EQ(stored_values(*stored, "Surrogate-Key"), std::vector<std::string>{"not-read"});
}

TEST(CacheFill, ATagThatCannotBeFiledKeepsTheResponseOut) {
  const config::RouteCacheConfig route = rule();
  CacheFill fill(route, 1024 * 1024, sent_now());
  const std::string tags = "ok " + std::string(cache::kMaxTagBytes + 1, 't');  // the field's value is a view
  const std::array<Field, 1> fields{Field{bhttp::field::unknown, "Surrogate-Key", tags}};
  fill.on_head(200, fields);
  fill.on_complete();
  EXPECT_FALSE(fill.record({}));
}

TEST(CacheFill, StaleWindowsAreTheRoutesShortenedByTheResponse) {
  config::RouteCacheConfig route = rule();
  route.stale_while_revalidate = seconds(30);
  route.stale_if_error = seconds(600);
  const auto windows = [&](std::string_view cache_control) {
    CacheFill fill(route, 1024, sent_now());
    const std::array<Field, 1> fields{Field{bhttp::field::cache_control, "Cache-Control", cache_control}};
    fill.on_head(200, fields);
    fill.on_complete();
    EXPECT_EQ(fill.ttl(), seconds(10 + 600)) << "the route's longest window keeps the record in Memcached";
    const auto stored = cache::decode_record(fill.record({}).value_or(""));
    return stored ? stored->stale : cache::StaleWindows{seconds(-1), seconds(-1)};
  };
  EXPECT_EQ(windows("max-age=10"), (cache::StaleWindows{seconds(30), seconds(600)}));
  EXPECT_EQ(windows("max-age=10, stale-while-revalidate=5, stale-if-error=60"),
            (cache::StaleWindows{seconds(5), seconds(60)}));
  EXPECT_EQ(windows("max-age=10, stale-while-revalidate=3600, stale-if-error=86400"),
            (cache::StaleWindows{seconds(30), seconds(600)}));
  EXPECT_EQ(windows("max-age=10, stale-while-revalidate=x"), (cache::StaleWindows{seconds(30), seconds(600)}));
  EXPECT_EQ(windows("max-age=10, must-revalidate"), (cache::StaleWindows{}));
  EXPECT_EQ(windows("max-age=10, proxy-revalidate, stale-if-error=60"), (cache::StaleWindows{}));
}

TEST(CacheFill, TheUpstreamsAgeCountsAndIsNotStored) {
  const config::RouteCacheConfig route = rule();
  const CacheFill::Options options = sent_now();
  CacheFill fill(route, 1024, options);
  const std::array<Field, 2> fields{Field{bhttp::field::age, "Age", "7"},
                                    Field{bhttp::field::cache_control, "Cache-Control", "max-age=20"}};
  fill.on_head(200, fields);
  fill.on_complete();
  const auto stored = cache::decode_record(fill.record({}).value_or(""));
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->initial_age, seconds(7 + stored->stored_at - options.request_time));
  EXPECT_EQ(fill.ttl(), seconds(20) - stored->initial_age);
  EXPECT_TRUE(stored_values(*stored, "Age").empty());
  EXPECT_EQ(stored->age(stored->stored_at + 3), stored->initial_age + seconds(3));
}

TEST(CacheFill, KeepsNothingOfAResponseThatMayNotBeStored) {
  const config::RouteCacheConfig route = rule();
  CacheFill cookie(route, 1024, sent_now());
  const std::array<Field, 1> set_cookie{Field{bhttp::field::set_cookie, "Set-Cookie", "a=b"}};
  cookie.on_head(200, set_cookie);
  cookie.on_body("x");
  cookie.on_complete();
  EXPECT_FALSE(cookie.record({}));

  CacheFill status(route, 1024, sent_now());
  status.on_head(500, {});
  status.on_complete();
  EXPECT_FALSE(status.record({}));

  // Stale on arrival: older than its lifetime.
  CacheFill stale(route, 1024, sent_now());
  const std::array<Field, 2> old{Field{bhttp::field::age, "Age", "20"},
                                 Field{bhttp::field::cache_control, "Cache-Control", "max-age=10"}};
  stale.on_head(200, old);
  stale.on_complete();
  EXPECT_FALSE(stale.record({}));

  CacheFill expired(route, 1024, sent_now());
  const std::array<Field, 1> expires{Field{bhttp::field::expires, "Expires", "0"}};
  expired.on_head(200, expires);
  expired.on_complete();
  EXPECT_FALSE(expired.record({}));
}

TEST(CacheFill, ASharedAnswerToAnAuthorizedRequestNeedsPublic) {
  const config::RouteCacheConfig route = rule();
  CacheFill::Options options = sent_now();
  options.shared_authorization = true;
  CacheFill plain(route, 1024, options);
  const std::array<Field, 1> max_age{Field{bhttp::field::cache_control, "Cache-Control", "max-age=10"}};
  plain.on_head(200, max_age);
  plain.on_complete();
  EXPECT_FALSE(plain.record({}));

  CacheFill consented(route, 1024, options);
  const std::array<Field, 1> is_public{Field{bhttp::field::cache_control, "Cache-Control", "public, max-age=10"}};
  consented.on_head(200, is_public);
  consented.on_complete();
  EXPECT_TRUE(consented.record({}));
}

TEST(CacheFill, GivesUpPastTheItemLimit) {
  const config::RouteCacheConfig route = rule();
  CacheFill fill(route, 100, sent_now());
  fill.on_head(200, {});
  fill.on_body(std::string(60, 'a'));
  fill.on_body(std::string(60, 'b'));
  fill.on_complete();
  EXPECT_FALSE(fill.record({}));

  // The limit counts the whole record, not only the body.
  CacheFill close(route, 100, sent_now());
  close.on_head(200, {});
  close.on_body(std::string(90, 'a'));
  close.on_complete();
  EXPECT_FALSE(close.record({}));

  // The head and the Date added to it count as well: the same body fits once the limit allows for them.
  const std::size_t head = cache::kRecordHeadBytes + 2 + 4 + 4 + 29;  // "Date", an IMF-fixdate
  CacheFill exact(route, head + 90, sent_now());
  exact.on_head(200, {});
  exact.on_body(std::string(90, 'a'));
  exact.on_complete();
  ASSERT_TRUE(exact.record({}));
  EXPECT_EQ(exact.record({})->size(), head + 90);
}

TEST(WriteObserver, CapturesStatusAndLocationsThenDecidesOnce) {
  int calls = 0;
  unsigned seen_status = 0;
  std::optional<std::string> seen_location;
  std::optional<std::string> seen_content_location;
  WriteObserver observer([&](const WriteObserver& decided) {
    ++calls;
    seen_status = decided.status;
    seen_location = decided.location;
    seen_content_location = decided.content_location;
  });
  EXPECT_EQ(calls, 0) << "not before the head";
  const std::array<Field, 4> fields{Field{bhttp::field::content_type, "Content-Type", "application/json"},
                                    Field{bhttp::field::location, "Location", "/items/8"},
                                    Field{bhttp::field::content_location, "Content-Location", "/items/8?v=1"},
                                    Field{bhttp::field::location, "Location", "/other"}};
  observer.on_head(201, fields);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(seen_status, 201u) << "known when the callback runs";
  EXPECT_EQ(seen_location, "/items/8") << "the first Location";
  EXPECT_EQ(seen_content_location, "/items/8?v=1");
  EXPECT_EQ(observer.status, 201u);
  EXPECT_EQ(observer.location, "/items/8");
  EXPECT_EQ(observer.content_location, "/items/8?v=1");
  observer.on_body("{}");
  observer.on_complete();
  EXPECT_EQ(calls, 1) << "the body changes nothing";
}

TEST(WriteObserver, NoLocationsIsNoneAndNoCallbackIsFine) {
  int calls = 0;
  WriteObserver observer([&](const WriteObserver& decided) {
    ++calls;
    EXPECT_EQ(decided.status, 204u);
    EXPECT_FALSE(decided.location.has_value());
    EXPECT_FALSE(decided.content_location.has_value());
  });
  const std::array<Field, 1> fields{Field{bhttp::field::etag, "ETag", "\"x\""}};
  observer.on_head(204, fields);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(observer.status, 204u);
  EXPECT_FALSE(observer.location.has_value());

  WriteObserver silent(nullptr);
  silent.on_head(500, {});
  EXPECT_EQ(silent.status, 500u);
  EXPECT_FALSE(silent.location.has_value());
}

}  // namespace
}  // namespace apigw::server
