// Tests for request cacheability, Cache-Control parsing, and whether and how long a response may be stored
// (freshness lifetime from s-maxage, max-age or Expires; its age from Age, Date and the exchange's times).
#include "apigw/cache/cache_policy.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "apigw/http/http_date.h"

namespace apigw::cache {
namespace {

namespace bhttp = boost::beast::http;
using std::chrono::seconds;

RequestCacheability classify(std::string_view method,
                             std::initializer_list<std::pair<std::string_view, std::string_view>> fields = {}) {
  bhttp::fields headers;
  for (const auto& [name, value] : fields) headers.insert(name, value);
  return classify_request(method, headers);
}

config::RouteCacheConfig route(seconds ttl = seconds(30), std::vector<unsigned> statuses = {200},
                               std::vector<std::string> vary = {},
                               config::CacheScope scope = config::CacheScope::kShared) {
  config::RouteCacheConfig out;
  out.enabled = true;
  out.ttl = ttl;
  out.statuses = std::move(statuses);
  out.vary = std::move(vary);
  out.scope = scope;
  return out;
}

// When the response in most tests arrived: the request went upstream at the same second, unless a test says.
constexpr std::int64_t kNow = 1'700'000'000;
constexpr ExchangeTimes kTimes{kNow, kNow};

// What is left of the lifetime of a stored response (its lifetime when it arrived fresh, without Age or Date).
std::optional<seconds> storable(unsigned status, const std::vector<HeaderView>& headers,
                                const config::RouteCacheConfig& rule = route(), const ExchangeTimes& times = kTimes,
                                bool shared_authorization = false) {
  const std::optional<Storable> out = storable_for(status, headers, rule, times, shared_authorization);
  if (!out) return std::nullopt;
  return out->remaining();
}

// The HTTP-date `offset` seconds from kNow.
std::string date(std::int64_t offset = 0) { return http::format_http_date(kNow + offset); }

CacheControl parse(std::initializer_list<std::string_view> values) {
  CacheControl control;
  for (const auto value : values) control.add(value);
  return control;
}

TEST(CachePolicy, OnlyGetAndHeadAreLookedUp) {
  EXPECT_EQ(classify("GET"), RequestCacheability::kLookup);
  EXPECT_EQ(classify("HEAD"), RequestCacheability::kLookup);
  for (const auto method : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "get", "Get"}) {
    EXPECT_EQ(classify(method), RequestCacheability::kBypass) << method;
  }
}

TEST(CachePolicy, RequestDirectives) {
  EXPECT_EQ(classify("GET", {{"Cache-Control", "no-cache"}}), RequestCacheability::kRevalidate);
  EXPECT_EQ(classify("GET", {{"cache-control", "No-Cache"}}), RequestCacheability::kRevalidate);
  EXPECT_EQ(classify("GET", {{"Cache-Control", "max-age=0"}}), RequestCacheability::kRevalidate);
  EXPECT_EQ(classify("GET", {{"Pragma", "no-cache"}}), RequestCacheability::kRevalidate);
  EXPECT_EQ(classify("GET", {{"Pragma", "x, NO-CACHE"}}), RequestCacheability::kRevalidate);
  EXPECT_EQ(classify("GET", {{"Cache-Control", "max-age=60"}, {"Cache-Control", "no-cache"}}),
            RequestCacheability::kRevalidate);
  EXPECT_EQ(classify("GET", {{"Cache-Control", "no-store"}}), RequestCacheability::kBypass);
  EXPECT_EQ(classify("HEAD", {{"Cache-Control", "no-cache, no-store"}}), RequestCacheability::kBypass);
  EXPECT_EQ(classify("POST", {{"Cache-Control", "no-cache"}}), RequestCacheability::kBypass);
  EXPECT_EQ(classify("GET", {{"Cache-Control", "max-age=60"}}), RequestCacheability::kLookup);
  EXPECT_EQ(classify("GET", {{"Cache-Control", "max-age=abc"}}), RequestCacheability::kLookup);
  EXPECT_EQ(classify("GET", {{"Cache-Control", "only-if-cached, max-stale"}}), RequestCacheability::kLookup);
  EXPECT_EQ(classify("GET", {{"Pragma", "no-cache-please"}}), RequestCacheability::kLookup);
  EXPECT_EQ(classify("GET", {{"Authorization", "Bearer x"}}), RequestCacheability::kLookup);
}

TEST(CachePolicy, CacheControlParsing) {
  const CacheControl a = parse({"public, MAX-AGE=60 , s-maxage=\"30\""});
  EXPECT_EQ(a.max_age, seconds(60));
  EXPECT_EQ(a.s_maxage, seconds(30));
  EXPECT_FALSE(a.no_store || a.no_cache || a.is_private || a.bad_age);

  const CacheControl b = parse({"private=\"Set-Cookie, X-A\", no-cache=\"X-B\"", "max-age=5"});
  EXPECT_TRUE(b.is_private);
  EXPECT_TRUE(b.no_cache);
  EXPECT_EQ(b.max_age, seconds(5)) << "a comma inside quotes does not split";
  EXPECT_FALSE(b.no_store);

  EXPECT_TRUE(parse({",,  no-store ,"}).no_store);
  EXPECT_TRUE(parse({"x=\"a\\\"no-store\""}).no_store == false) << "an escaped quote stays inside the string";
  EXPECT_EQ(parse({"max-age=60, max-age=10"}).max_age, seconds(10));
  EXPECT_EQ(parse({"max-age=10", "max-age=60"}).max_age, seconds(10));
  EXPECT_EQ(parse({"max-age=99999999999999999999999"}).max_age, seconds(std::int64_t{1} << 31));
  EXPECT_EQ(parse({"max-age = 7"}).max_age, seconds(7));
  for (const auto bad : {"max-age=abc", "max-age=-1", "max-age=", "max-age", "s-maxage=1.5", "max-age=\"12",
                         "max-age=\"1\"x", "max-age=1 2"}) {
    EXPECT_TRUE(parse({bad}).bad_age) << bad;
  }
  const CacheControl none = parse({""});
  EXPECT_FALSE(none.max_age || none.s_maxage || none.bad_age || none.no_store || none.is_public ||
               none.must_revalidate);
  EXPECT_FALSE(parse({"no-storex, xno-cache, privately"}).no_store);
}

TEST(CachePolicy, PublicAndMustRevalidateAreRead) {
  const CacheControl a = parse({"PUBLIC", "Must-Revalidate, max-age=5"});
  EXPECT_TRUE(a.is_public);
  EXPECT_TRUE(a.must_revalidate);
  EXPECT_EQ(a.max_age, seconds(5));
  const CacheControl b = parse({"publicly, must-revalidate-not, proxy-revalidate"});
  EXPECT_FALSE(b.is_public);
  EXPECT_FALSE(b.must_revalidate);
  EXPECT_FALSE(parse({"x=\"public\""}).is_public) << "a quoted argument is not a directive";
  EXPECT_TRUE(parse({"no-cache=\"a, b\", public"}).is_public);
}

TEST(CachePolicy, RouteTtlUnlessTheResponseSaysLess) {
  EXPECT_EQ(storable(200, {}), seconds(30));
  EXPECT_EQ(storable(200, {{"Cache-Control", "max-age=10"}}), seconds(10));
  EXPECT_EQ(storable(200, {{"Cache-Control", "max-age=3600"}}), seconds(30)) << "never longer than the route's";
  EXPECT_EQ(storable(200, {{"Cache-Control", "max-age=10, s-maxage=20"}}), seconds(20)) << "s-maxage wins";
  EXPECT_EQ(storable(200, {{"Cache-Control", "s-maxage=5, max-age=20"}}), seconds(5));
  EXPECT_EQ(storable(200, {{"Cache-Control", "public, must-revalidate"}}), seconds(30));
  EXPECT_EQ(storable(200, {{"Cache-Control", "max-age=0"}}), std::nullopt);
  EXPECT_EQ(storable(200, {{"Cache-Control", "s-maxage=0, max-age=60"}}), std::nullopt);
  EXPECT_EQ(storable(200, {{"Cache-Control", "max-age=soon"}}), std::nullopt);
}

TEST(CachePolicy, StatusesComeFromTheRouteAndAuthFailuresNever) {
  const auto rule = route(seconds(30), {200, 203, 301, 404});
  EXPECT_EQ(storable(404, {}, rule), seconds(30));
  EXPECT_EQ(storable(301, {}, rule), seconds(30));
  EXPECT_EQ(storable(500, {}, rule), std::nullopt);
  EXPECT_EQ(storable(404, {}), std::nullopt) << "the default is 200 only";
  const auto odd = route(seconds(30), {200, 206, 304, 401, 407});
  for (const unsigned status : {206u, 304u, 401u, 407u}) EXPECT_EQ(storable(status, {}, odd), std::nullopt);
}

TEST(CachePolicy, WhatIsNeverStored) {
  EXPECT_EQ(storable(200, {{"Set-Cookie", "a=1"}}), std::nullopt);
  EXPECT_EQ(storable(200, {{"set-cookie2", "a=1"}}), std::nullopt);
  EXPECT_EQ(storable(200, {{"Cache-Control", "no-store"}}), std::nullopt);
  EXPECT_EQ(storable(200, {{"Cache-Control", "max-age=60"}, {"cache-control", "NO-STORE"}}), std::nullopt);
  EXPECT_EQ(storable(200, {{"Cache-Control", "no-cache"}}), std::nullopt);
  EXPECT_EQ(storable(200, {{"Cache-Control", "private"}}), std::nullopt);
  EXPECT_EQ(storable(200, {{"Cache-Control", "private=\"X-A\""}}), std::nullopt);
  EXPECT_EQ(storable(200, {{"Vary", "*"}}), std::nullopt);
  EXPECT_EQ(storable(200, {{"Vary", "Accept-Language"}}), std::nullopt);
  config::RouteCacheConfig off = route();
  off.enabled = false;
  EXPECT_EQ(storable(200, {}, off), std::nullopt);
}

TEST(CachePolicy, PrivateIsStoredForUserScope) {
  const auto user = route(seconds(30), {200}, {}, config::CacheScope::kUser);
  EXPECT_EQ(storable(200, {{"Cache-Control", "private, max-age=12"}}, user), seconds(12));
  EXPECT_EQ(storable(200, {{"Cache-Control", "private, no-store"}}, user), std::nullopt);
  EXPECT_EQ(storable(200, {{"Set-Cookie", "a=1"}}, user), std::nullopt);
}

TEST(CachePolicy, VaryMustBeCoveredByTheRouteKey) {
  const auto rule = route(seconds(30), {200}, {"Accept-Language", "Accept-Encoding"});
  EXPECT_EQ(storable(200, {{"Vary", "accept-language"}}, rule), seconds(30));
  EXPECT_EQ(storable(200, {{"Vary", "Accept-Encoding, Accept-Language"}, {"Vary", ""}}, rule), seconds(30));
  EXPECT_EQ(storable(200, {{"Vary", "Accept-Language, Origin"}}, rule), std::nullopt);
  EXPECT_EQ(storable(200, {{"Vary", "Accept-Language"}, {"Vary", "*"}}, rule), std::nullopt);
}

TEST(CachePolicy, ExpiresMinusDateIsTheLifetimeWithoutMaxAge) {
  EXPECT_EQ(storable(200, {{"Date", date()}, {"Expires", date(20)}}), seconds(20));
  EXPECT_EQ(storable(200, {{"date", date()}, {"EXPIRES", date(1)}}), seconds(1)) << "names are case-insensitive";
  EXPECT_EQ(storable(200, {{"Date", date()}, {"Expires", date(3600)}}), seconds(30)) << "capped by the route's ttl";
  EXPECT_EQ(storable(200, {{"Date", date()}, {"Expires", date(2 * kMaxDeltaSeconds.count())}}), seconds(30))
      << "a difference past 2^31 s saturates";
  // Expires and Date are both the upstream's clock: only their difference counts, whatever ours says.
  EXPECT_EQ(storable(200, {{"Date", http::format_http_date(1'000'000'000)},
                           {"Expires", http::format_http_date(1'000'000'012)}},
                     route(), ExchangeTimes{1'000'000'000, 1'000'000'000}),
            seconds(12));
  // Without a Date, the response's arrival stands for it.
  EXPECT_EQ(storable(200, {{"Expires", date(25)}}), seconds(25));
  EXPECT_EQ(storable(200, {{"Date", "not a date"}, {"Expires", date(25)}}), seconds(25));
  // The first Expires counts.
  EXPECT_EQ(storable(200, {{"Date", date()}, {"Expires", date(10)}, {"Expires", date(20)}}), seconds(10));
}

TEST(CachePolicy, MaxAgeAndSMaxAgeWinOverExpires) {
  EXPECT_EQ(storable(200, {{"Date", date()}, {"Expires", date(20)}, {"Cache-Control", "max-age=5"}}), seconds(5));
  EXPECT_EQ(storable(200, {{"Date", date()}, {"Expires", date(5)}, {"Cache-Control", "max-age=20"}}), seconds(20));
  EXPECT_EQ(storable(200, {{"Date", date()}, {"Expires", date(-60)}, {"Cache-Control", "s-maxage=7"}}),
            seconds(7));
  EXPECT_EQ(storable(200, {{"Expires", "0"}, {"Cache-Control", "max-age=9"}}), seconds(9))
      << "an invalid Expires is ignored when max-age is there";
  EXPECT_EQ(storable(200, {{"Date", date()}, {"Expires", date(20)}, {"Cache-Control", "max-age=10, s-maxage=3"}}),
            seconds(3));
}

TEST(CachePolicy, AnExpiresInThePastOrNotADateIsNotStored) {
  EXPECT_EQ(storable(200, {{"Date", date()}, {"Expires", date()}}), std::nullopt) << "expires on arrival";
  EXPECT_EQ(storable(200, {{"Date", date()}, {"Expires", date(-1)}}), std::nullopt);
  EXPECT_EQ(storable(200, {{"Date", date()}, {"Expires", "Thu, 01 Jan 1970 00:00:00 GMT"}}), std::nullopt);
  for (const auto invalid : {"0", "-1", "", "garbage", "never", "Sun, 06 Nov 1994 08:49:37", "1700000100",
                             "Mon, 32 Jan 2024 00:00:00 GMT"}) {
    EXPECT_EQ(storable(200, {{"Date", date()}, {"Expires", invalid}}), std::nullopt) << invalid;
    EXPECT_EQ(storable(200, {{"Expires", invalid}}), std::nullopt) << invalid;
  }
}

TEST(CachePolicy, TheDateIsRecordedOrStandsInForOne) {
  const auto dated = storable_for(200, std::vector<HeaderView>{{"Date", date(-2)}}, route(), kTimes);
  ASSERT_TRUE(dated.has_value());
  EXPECT_TRUE(dated->has_date);
  EXPECT_EQ(dated->date, kNow - 2);
  EXPECT_EQ(dated->lifetime, seconds(30));
  EXPECT_EQ(dated->initial_age, seconds(2));
  EXPECT_EQ(dated->remaining(), seconds(28));

  // The first Date counts.
  const auto twice =
      storable_for(200, std::vector<HeaderView>{{"Date", date(-1)}, {"Date", date(-9)}}, route(), kTimes);
  ASSERT_TRUE(twice.has_value());
  EXPECT_EQ(twice->date, kNow - 1);

  for (const std::vector<HeaderView>& headers :
       {std::vector<HeaderView>{}, std::vector<HeaderView>{{"Date", "yesterday"}},
        std::vector<HeaderView>{{"Date", ""}}}) {
    const auto undated = storable_for(200, headers, route(), ExchangeTimes{kNow - 3, kNow});
    ASSERT_TRUE(undated.has_value());
    EXPECT_FALSE(undated->has_date);
    EXPECT_EQ(undated->date, kNow) << "the response's arrival";
    EXPECT_EQ(undated->initial_age, seconds(3)) << "the response delay still counts";
  }
}

TEST(CachePolicy, AgeAndApparentAgeShortenWhatIsLeft) {
  // The Age the upstream reports.
  EXPECT_EQ(storable(200, {{"Cache-Control", "max-age=10"}, {"Age", "4"}}), seconds(6));
  EXPECT_EQ(storable(200, {{"Age", "29"}}), seconds(1)) << "the route's ttl is a lifetime too";
  // A lifetime capped by the route's ttl is aged as well: 30 s capped, 25 s old.
  EXPECT_EQ(storable(200, {{"Cache-Control", "max-age=3600"}, {"Age", "25"}}), seconds(5));
  // Apparent age: the response's Date is 8 s behind its arrival.
  EXPECT_EQ(storable(200, {{"Cache-Control", "max-age=10"}, {"Date", date(-8)}}), seconds(2));
  // A Date ahead of our clock gives no negative age.
  EXPECT_EQ(storable(200, {{"Cache-Control", "max-age=10"}, {"Date", date(100)}}), seconds(10));
  // The response delay is added to Age: the request went out 3 s before the response arrived.
  EXPECT_EQ(storable(200, {{"Cache-Control", "max-age=10"}, {"Age", "2"}}, route(), ExchangeTimes{kNow - 3, kNow}),
            seconds(5));
  // The larger of apparent and corrected age.
  EXPECT_EQ(storable(200, {{"Cache-Control", "max-age=20"}, {"Age", "2"}, {"Date", date(-9)}}), seconds(11));
  EXPECT_EQ(storable(200, {{"Cache-Control", "max-age=20"}, {"Age", "9"}, {"Date", date(-2)}}), seconds(11));
  // An Age that is no number is ignored; only the first Age field is read.
  EXPECT_EQ(storable(200, {{"Cache-Control", "max-age=10"}, {"Age", "soon"}}), seconds(10));
  EXPECT_EQ(storable(200, {{"Cache-Control", "max-age=10"}, {"Age", "-5"}}), seconds(10));
  EXPECT_EQ(storable(200, {{"Cache-Control", "max-age=10"}, {"age", "3"}, {"Age", "9"}}), seconds(7));
  EXPECT_EQ(storable(200, {{"Cache-Control", "max-age=10"}, {"Age", "x"}, {"Age", "9"}}), seconds(10));

  const auto aged = storable_for(200, std::vector<HeaderView>{{"Cache-Control", "max-age=10"}, {"Age", "4"}},
                                 route(), kTimes);
  ASSERT_TRUE(aged.has_value());
  EXPECT_EQ(aged->lifetime, seconds(10));
  EXPECT_EQ(aged->initial_age, seconds(4));
}

TEST(CachePolicy, AResponseStaleOnArrivalIsNotStored) {
  EXPECT_EQ(storable(200, {{"Cache-Control", "max-age=10"}, {"Age", "10"}}), std::nullopt);
  EXPECT_EQ(storable(200, {{"Cache-Control", "max-age=10"}, {"Age", "11"}}), std::nullopt);
  EXPECT_EQ(storable(200, {{"Age", "30"}}), std::nullopt) << "the route's ttl is used up";
  EXPECT_EQ(storable(200, {{"Age", "99999999999999999999"}}), std::nullopt);
  EXPECT_EQ(storable(200, {{"Cache-Control", "max-age=10"}, {"Date", date(-10)}}), std::nullopt);
  EXPECT_EQ(storable(200, {{"Date", date(-3600)}}), std::nullopt);
  EXPECT_EQ(storable(200, {{"Cache-Control", "max-age=10"}}, route(), ExchangeTimes{kNow - 10, kNow}), std::nullopt)
      << "the upstream took the whole lifetime to answer";
  EXPECT_EQ(storable(200, {{"Date", date(-20)}, {"Expires", date(-5)}}), std::nullopt);
  // Expires − Date is 15 s, but the Date was 15 s ago.
  EXPECT_EQ(storable(200, {{"Date", date(-15)}, {"Expires", date()}}), std::nullopt);
  EXPECT_EQ(storable(200, {{"Date", date(-14)}, {"Expires", date(1)}}), seconds(1));
}

TEST(CachePolicy, ASharedAnswerToAnAuthorizedRequestNeedsTheUpstreamsConsent) {
  // RFC 9111 §3.5: public, s-maxage or must-revalidate.
  const auto shared = [](const std::vector<HeaderView>& headers) {
    return storable(200, headers, route(), kTimes, true);
  };
  EXPECT_EQ(shared({}), std::nullopt);
  EXPECT_EQ(shared({{"Cache-Control", "max-age=10"}}), std::nullopt);
  EXPECT_EQ(shared({{"Cache-Control", "proxy-revalidate, max-age=10"}}), std::nullopt);
  EXPECT_EQ(shared({{"Date", date()}, {"Expires", date(20)}}), std::nullopt);
  EXPECT_EQ(shared({{"Cache-Control", "public"}}), seconds(30));
  EXPECT_EQ(shared({{"Cache-Control", "Public, max-age=10"}}), seconds(10));
  EXPECT_EQ(shared({{"Cache-Control", "s-maxage=12"}}), seconds(12));
  EXPECT_EQ(shared({{"Cache-Control", "must-revalidate"}}), seconds(30));
  EXPECT_EQ(shared({{"Cache-Control", "max-age=10"}, {"Cache-Control", "must-revalidate"}}), seconds(10));
  // The consent does not override what is never stored.
  EXPECT_EQ(shared({{"Cache-Control", "public, no-store"}}), std::nullopt);
  EXPECT_EQ(shared({{"Cache-Control", "public"}, {"Set-Cookie", "a=1"}}), std::nullopt);
  // Without an Authorization header, none of these is needed.
  EXPECT_EQ(storable(200, {{"Cache-Control", "max-age=10"}}, route(), kTimes, false), seconds(10));
}

TEST(CachePolicy, ParseAgeReadsTheFirstMemberAsDeltaSeconds) {
  EXPECT_EQ(parse_age("0"), seconds(0));
  EXPECT_EQ(parse_age("42"), seconds(42));
  EXPECT_EQ(parse_age(" 42 "), seconds(42));
  EXPECT_EQ(parse_age("007"), seconds(7));
  EXPECT_EQ(parse_age("5, 7"), seconds(5)) << "a repeated field folded into a list: the first counts";
  EXPECT_EQ(parse_age("5,x"), seconds(5));
  EXPECT_EQ(parse_age(", 9"), seconds(9)) << "empty list members are not members";
  EXPECT_EQ(parse_age("x, 5"), std::nullopt) << "the first member is not a number";
  for (const auto invalid : {"", " ", ",", "-1", "+1", "1.5", "1e3", "abc", "5s", "\"5\"", "0x10"}) {
    EXPECT_EQ(parse_age(invalid), std::nullopt) << invalid;
  }
  EXPECT_EQ(parse_age("2147483647"), seconds(2147483647));
  EXPECT_EQ(parse_age("2147483648"), kMaxDeltaSeconds);
  EXPECT_EQ(parse_age("2147483649"), kMaxDeltaSeconds) << "saturates";
  EXPECT_EQ(parse_age("99999999999999999999999999999999"), kMaxDeltaSeconds) << "no overflow";
  EXPECT_EQ(kMaxDeltaSeconds, seconds(2147483648));
}

TEST(CachePolicy, InitialAgeIsTheLargerOfApparentAndCorrectedAge) {
  // apparent = response_time − date; corrected = Age + (response_time − request_time).
  EXPECT_EQ(initial_age(std::nullopt, kNow, kTimes), seconds(0));
  EXPECT_EQ(initial_age(seconds(5), kNow, kTimes), seconds(5));
  EXPECT_EQ(initial_age(std::nullopt, kNow - 7, kTimes), seconds(7));
  EXPECT_EQ(initial_age(seconds(5), kNow - 7, kTimes), seconds(7));
  EXPECT_EQ(initial_age(seconds(5), kNow - 7, ExchangeTimes{kNow - 4, kNow}), seconds(9));
  EXPECT_EQ(initial_age(std::nullopt, kNow, ExchangeTimes{kNow - 4, kNow}), seconds(4));
  // Clocks that disagree give no negative term.
  EXPECT_EQ(initial_age(std::nullopt, kNow + 100, kTimes), seconds(0));
  EXPECT_EQ(initial_age(seconds(3), kNow + 100, ExchangeTimes{kNow + 50, kNow}), seconds(3));
}

TEST(CachePolicy, InitialAgeSaturates) {
  EXPECT_EQ(initial_age(kMaxDeltaSeconds, kNow, kTimes), kMaxDeltaSeconds);
  EXPECT_EQ(initial_age(kMaxDeltaSeconds, kNow, ExchangeTimes{kNow - 100, kNow}), kMaxDeltaSeconds);
  EXPECT_EQ(initial_age(kMaxDeltaSeconds - seconds(1), kNow, ExchangeTimes{kNow - 100, kNow}), kMaxDeltaSeconds);
  EXPECT_EQ(initial_age(std::nullopt, 0, ExchangeTimes{0, std::int64_t{1} << 40}), kMaxDeltaSeconds);
  EXPECT_EQ(initial_age(std::nullopt, kNow, ExchangeTimes{-(std::int64_t{1} << 40), kNow}), kMaxDeltaSeconds)
      << "a request time far back saturates the delay";
  EXPECT_EQ(initial_age(seconds(10), -(std::int64_t{1} << 40), ExchangeTimes{kNow - 1, kNow}), kMaxDeltaSeconds);
}

}  // namespace
}  // namespace apigw::cache
