// The head of a response served from the cache, and the 304 answer to a client that holds the stored version.
#include "apigw/cache/stored_answer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <boost/beast/http/fields.hpp>

#include "apigw/http/http_date.h"

namespace apigw::cache {
namespace {

namespace bhttp = boost::beast::http;

constexpr std::string_view kStoredDate = "Tue, 14 Nov 2023 22:13:20 GMT";

// The values of every `name` line of a response head, in order.
std::vector<std::string> values(std::string_view head, std::string_view name) {
  std::vector<std::string> out;
  const std::string prefix = "\r\n" + std::string(name) + ": ";
  for (std::size_t at = head.find(prefix); at != std::string_view::npos; at = head.find(prefix, at + 1)) {
    const std::size_t begin = at + prefix.size();
    out.emplace_back(head.substr(begin, head.find("\r\n", begin) - begin));
  }
  return out;
}

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

TEST(CachedResponseHead, SaysStaleAndListsTagsWhenAsked) {
  CachedResponse stored = response(200, "hello");
  stored.tags = {{"product:7", 1}, {"catalog", 2}};
  CachedHead head;
  head.cache_status = "STALE";
  const std::string quiet = cached_response_head(stored, head);
  EXPECT_EQ(values(quiet, "X-Cache"), std::vector<std::string>{"STALE"});
  EXPECT_EQ(quiet.find("Surrogate-Key"), std::string::npos) << "tags only with the debug headers";
  head.tag_header = "Surrogate-Key";
  EXPECT_EQ(values(cached_response_head(stored, head), "Surrogate-Key"),
            std::vector<std::string>{"product:7 catalog"});
  EXPECT_EQ(cached_response_head(response(200, "x"), head).find("Surrogate-Key"), std::string::npos)
      << "a record without tags lists none";
}

TEST(CachedResponseHead, RepeatsTheStoredDate) {
  CachedResponse stored = response(200, "hello");
  stored.headers.insert(stored.headers.begin() + 1, {"Date", std::string(kStoredDate)});
  const std::string out = cached_response_head(stored, CachedHead{});
  EXPECT_EQ(values(out, "Date"), std::vector<std::string>{std::string(kStoredDate)}) << out;
  EXPECT_TRUE(out.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: " + std::string(kStoredDate) +
                              "\r\nETag: \"v1\"\r\n"))
      << "in its stored place: " << out;
  // A stored header name in another case is still the Date.
  stored.headers[1].name = "date";
  const std::string lower = cached_response_head(stored, CachedHead{});
  EXPECT_TRUE(values(lower, "Date").empty()) << lower;
  EXPECT_EQ(values(lower, "date"), std::vector<std::string>{std::string(kStoredDate)});
}

TEST(CachedResponseHead, AddsTheCurrentDateWhenNoneWasStored) {
  const auto before = std::chrono::system_clock::now();
  const std::string out = cached_response_head(response(200, "hello"), CachedHead{});
  const auto after = std::chrono::system_clock::now();
  const std::vector<std::string> dates = values(out, "Date");
  ASSERT_EQ(dates.size(), 1u) << out;
  const auto unix = [](std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
  };
  const std::optional<std::int64_t> sent = http::parse_http_date(dates[0], unix(after));
  ASSERT_TRUE(sent.has_value()) << dates[0];
  EXPECT_GE(*sent, unix(before) - 1);
  EXPECT_LE(*sent, unix(after) + 1);
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
                    {"Last-Modified", "Mon, 23 Nov 2026 10:00:00 GMT"}, {"X-Other", "x"},
                    {"Date", std::string(kStoredDate)}};
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

TEST(NotModified, The304KeepsOnlyValidityHeadersAndTheDate) {
  CachedResponse stored = with_validators();
  stored.stored_at = 1000;
  stored.ttl = std::chrono::seconds(60);
  stored.initial_age = std::chrono::seconds(4);
  stored.resource_version = 42;
  const CachedResponse reduced = not_modified_response(stored);
  EXPECT_EQ(reduced.status, 304u);
  EXPECT_TRUE(reduced.body.empty());
  std::vector<std::string> names;
  for (const auto& header : reduced.headers) names.push_back(header.name);
  EXPECT_EQ(names, (std::vector<std::string>{"ETag", "Cache-Control", "Last-Modified", "Date"}));
  EXPECT_EQ(reduced.stored_at, 1000);
  EXPECT_EQ(reduced.ttl, std::chrono::seconds(60));
  EXPECT_EQ(reduced.initial_age, std::chrono::seconds(4));
  EXPECT_EQ(reduced.resource_version, 42u);
  const std::string head = cached_response_head(reduced, CachedHead{});
  EXPECT_TRUE(head.starts_with("HTTP/1.1 304 Not Modified\r\n")) << head;
  EXPECT_EQ(head.find("Content-Length"), std::string::npos);
  EXPECT_EQ(values(head, "Date"), std::vector<std::string>{std::string(kStoredDate)}) << head;
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

TEST(AnswerFromStore, AgeCountsTheInitialAgeAndDateIsTheStoredOne) {
  CachedResponse stored = with_validators();
  stored.stored_at = 1000;
  stored.ttl = std::chrono::seconds(60);
  stored.initial_age = std::chrono::seconds(5);
  const bhttp::fields plain;
  const StoredAnswer full = answer_from_store(stored, plain, false, CachedHead{}, 1010);
  EXPECT_EQ(full.status, 200u);
  EXPECT_EQ(values(full.head, "Age"), std::vector<std::string>{"15"}) << full.head;
  EXPECT_EQ(values(full.head, "Date"), std::vector<std::string>{std::string(kStoredDate)});
  bhttp::fields conditional;
  conditional.insert(bhttp::field::if_none_match, "\"v7\"");
  const StoredAnswer not_modified = answer_from_store(stored, conditional, false, CachedHead{}, 1010);
  EXPECT_EQ(not_modified.status, 304u);
  EXPECT_EQ(values(not_modified.head, "Age"), std::vector<std::string>{"15"}) << not_modified.head;
  EXPECT_EQ(values(not_modified.head, "Date"), std::vector<std::string>{std::string(kStoredDate)});
}

}  // namespace
}  // namespace apigw::cache
