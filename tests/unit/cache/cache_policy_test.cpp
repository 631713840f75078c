// Tests for request cacheability, Cache-Control parsing and how long a response may be stored.
#include "apigw/cache/cache_policy.h"

#include <gtest/gtest.h>

#include <vector>

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

std::optional<seconds> storable(unsigned status, const std::vector<HeaderView>& headers,
                                const config::RouteCacheConfig& rule = route()) {
  return storable_for(status, headers, rule);
}

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
  EXPECT_FALSE(none.max_age || none.s_maxage || none.bad_age || none.no_store);
  EXPECT_FALSE(parse({"no-storex, xno-cache, privately"}).no_store);
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

}  // namespace
}  // namespace apigw::cache
