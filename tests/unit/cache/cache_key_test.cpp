// Tests for response-cache keys: their shape, what tells two requests apart and what does not, resource keys
// (every variant of one URL shares one), and key checks.
#include "apigw/cache/cache_key.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace apigw::cache {
namespace {

namespace bhttp = boost::beast::http;

config::RouteCacheConfig rule(std::vector<std::string> vary = {},
                              config::CacheScope scope = config::CacheScope::kShared) {
  config::RouteCacheConfig out;
  out.enabled = true;
  out.ttl = std::chrono::seconds(30);
  out.vary = std::move(vary);
  out.scope = scope;
  return out;
}

KeyRequest get(std::string_view path, std::string_view query = {}, std::string_view host = "api.example.com") {
  return KeyRequest{"GET", host, path, query, nullptr, std::nullopt};
}

std::string key(const KeyRequest& request, const config::RouteCacheConfig& r = rule(),
                std::string_view route = "users", std::string_view prefix = "apigw:") {
  const auto built = build_cache_key(prefix, route, r, request);
  return built.value_or("<none>");
}

std::string resource(const KeyRequest& request, const config::RouteCacheConfig& r = rule(),
                     std::string_view route = "users", std::string_view prefix = "apigw:") {
  const auto built = build_resource_key(prefix, route, r, request);
  return built.value_or("<none>");
}

// Both keys: under scope user, alice, bob, an empty user id and no user each get their own; shared scope ignores
// the user.
template <class Key>
void expect_user_scope_keys_on_the_user(Key build) {
  const auto user = rule({}, config::CacheScope::kUser);
  KeyRequest alice = get("/me");
  alice.user_id = "alice";
  KeyRequest bob = get("/me");
  bob.user_id = "bob";
  KeyRequest empty = get("/me");
  empty.user_id = "";
  const KeyRequest anonymous = get("/me");
  EXPECT_NE(build(alice, user), build(bob, user));
  EXPECT_NE(build(alice, user), build(anonymous, user));
  EXPECT_NE(build(empty, user), build(anonymous, user));
  EXPECT_EQ(build(alice, rule()), build(bob, rule())) << "shared scope ignores the user";
  EXPECT_NE(build(anonymous, user), build(anonymous, rule()));
}

TEST(CacheKey, LayoutIsPrefixVersionRouteAndSha256Hex) {
  const std::string k = key(get("/users/7"));
  ASSERT_EQ(k.size(), std::string("apigw:v2:users:").size() + 64);
  EXPECT_TRUE(k.starts_with("apigw:v2:users:"));
  const std::string digest = k.substr(k.size() - 64);
  EXPECT_EQ(digest.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_TRUE(valid_key(k));
  EXPECT_EQ(k, key(get("/users/7"))) << "the key is deterministic";
}

TEST(CacheKey, KnownDigestsPinTheLayout) {
  // Entries written by one apigw must be found by the next: a change here needs a new kKeyVersion. The digest is
  // SHA-256 of "2:v2" "5:users" "3:GET" "15:api.example.com" "8:/users/7" "7:a=1&b=2" (and, with a vary header,
  // "15:accept-language" "+2:en"), computed independently of this code.
  EXPECT_EQ(kKeyVersion, "v2");
  EXPECT_EQ(key(KeyRequest{"GET", "API.example.com:80", "/users/7", "b=2&a=1", nullptr, std::nullopt}),
            "apigw:v2:users:91a0350a2f8d8c040b55484c3cc98074f0d7ca73219eb41ff2d95f7dcb5d096c");
  bhttp::fields headers;
  headers.set(bhttp::field::accept_language, "en");
  EXPECT_EQ(key(KeyRequest{"GET", "api.example.com", "/users/7", "a=1&b=2", &headers, std::nullopt},
                rule({"Accept-Language"})),
            "apigw:v2:users:b5a3a08f1d6d41711a69874cd57e05c3a156e3e6abef81ae4271958e5f91fd92");
}

TEST(ResourceKey, KnownDigestsPinTheLayout) {
  // SHA-256 of "2:r2" "5:users" "15:api.example.com" "8:/users/7" "7:a=1&b=2" (and, for scope user,
  // "+5:alice"): no method, no vary header.
  EXPECT_EQ(kResourceKeyVersion, "r2");
  bhttp::fields headers;
  headers.set(bhttp::field::accept_language, "en");
  EXPECT_EQ(resource(KeyRequest{"GET", "API.example.com:80", "/users/7", "b=2&a=1", &headers, std::nullopt},
                     rule({"Accept-Language"})),
            "apigw:r2:users:34a1eff86a5aa6bdbfda66daf07872849dc7ae2779c7b637a6b1cfaba1c5098f");
  EXPECT_EQ(resource(KeyRequest{"HEAD", "api.example.com", "/users/7", "a=1&b=2", nullptr, "alice"},
                     rule({}, config::CacheScope::kUser)),
            "apigw:r2:users:64c953e12a1100fedc74b121607aeceb88511f7fd7a6f97e26b67f08bfcdb9d0");
}

TEST(ResourceKey, LayoutIsPrefixVersionRouteAndSha256Hex) {
  const std::string r = resource(get("/users/7"));
  ASSERT_EQ(r.size(), std::string("apigw:r2:users:").size() + 64);
  EXPECT_TRUE(r.starts_with("apigw:r2:users:"));
  EXPECT_EQ(r.substr(r.size() - 64).find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_TRUE(valid_key(r));
  EXPECT_EQ(r, resource(get("/users/7"))) << "deterministic";
  EXPECT_NE(r.substr(r.size() - 64), key(get("/users/7")).substr(r.size() - 64))
      << "never the digest of an entry key";
}

TEST(ResourceKey, VariantsShareTheirResource) {
  const auto vary = rule({"Accept-Language", "X-Tenant"});
  bhttp::fields english;
  english.insert("Accept-Language", "en");
  bhttp::fields french;
  french.insert("Accept-Language", "fr");
  french.insert("X-Tenant", "t1");
  const bhttp::fields no_headers;
  const KeyRequest en{"GET", "api.example.com", "/p", "a=1", &english, std::nullopt};
  const KeyRequest fr{"GET", "api.example.com", "/p", "a=1", &french, std::nullopt};
  const KeyRequest none{"GET", "api.example.com", "/p", "a=1", &no_headers, std::nullopt};
  const KeyRequest head{"HEAD", "api.example.com", "/p", "a=1", &english, std::nullopt};
  ASSERT_NE(key(en, vary), key(fr, vary)) << "two entries";
  ASSERT_NE(key(en, vary), key(none, vary));
  EXPECT_EQ(resource(en, vary), resource(fr, vary)) << "one resource";
  EXPECT_EQ(resource(en, vary), resource(none, vary));
  EXPECT_EQ(resource(en, vary), resource(head, vary)) << "the method neither";
  EXPECT_EQ(resource(en, vary), resource(en, rule())) << "nor the route's vary list";
  EXPECT_EQ(resource(en, vary), resource(KeyRequest{"GET", "api.example.com", "/p", "a=1", nullptr, std::nullopt}))
      << "nor the presence of headers at all";
}

TEST(ResourceKey, EveryPartOfTheUrlTellsResourcesApart) {
  const std::string base = resource(get("/users/7", "a=1"));
  EXPECT_NE(base, resource(get("/users/8", "a=1")));
  EXPECT_NE(base, resource(get("/users/7", "a=2")));
  EXPECT_NE(base, resource(get("/users/7")));
  EXPECT_NE(base, resource(get("/users/7", "a=1", "other.example.com")));
  EXPECT_NE(base, resource(get("/users/7", "a=1", "api.example.com:8080")));
  EXPECT_NE(base, resource(get("/users/7", "a=1"), rule(), "accounts"));
  EXPECT_NE(base, resource(get("/users/7", "a=1"), rule(), "users", "other:"));
  EXPECT_NE(resource(get("/a", "b")), resource(get("/ab"))) << "field boundaries cannot be shifted";
  // The host as keyed.
  EXPECT_EQ(base, resource(get("/users/7", "a=1", "API.Example.com.:443")));
}

TEST(ResourceKey, QueryIsCanonicalAsInTheEntryKey) {
  const auto pair = [](std::string_view a, std::string_view b) {
    return std::make_pair(resource(get("/s", a)) == resource(get("/s", b)), key(get("/s", a)) == key(get("/s", b)));
  };
  for (const auto& [a, b] : std::initializer_list<std::pair<std::string_view, std::string_view>>{
           {"q=x&page=2", "page=2&q=x"}, {"q=x&", "q=x"}, {"a=1&&b=2&", "b=2&a=1"},
           {"ids=1&ids=2", "ids=2&ids=1"}, {"q=a%20b", "q=a+b"}, {"a", "a="}, {"", "&"}}) {
    const auto [same_resource, same_entry] = pair(a, b);
    EXPECT_EQ(same_resource, same_entry) << a << " | " << b;
  }
  EXPECT_EQ(resource(get("/s", "q=x&page=2")), resource(get("/s", "page=2&q=x")));
  EXPECT_NE(resource(get("/s", "ids=1&ids=2")), resource(get("/s", "ids=2&ids=1")));
}

TEST(ResourceKey, UserScopeKeysOnTheUserAndSharedScopeDoesNot) {
  expect_user_scope_keys_on_the_user(
      [](const KeyRequest& r, const config::RouteCacheConfig& c) { return resource(r, c); });
}

TEST(ResourceKey, LimitsAsTheEntryKey) {
  const std::string prefix(config::kMaxCacheKeyPrefixBytes, 'p');
  const std::string route(config::kMaxCachedRouteNameBytes, 'r');
  const auto longest = build_resource_key(prefix, route, rule(), get("/" + std::string(10000, 'x')));
  ASSERT_TRUE(longest.has_value());
  EXPECT_EQ(longest->size(), kMaxKeyBytes);
  EXPECT_TRUE(valid_key(*longest));
  EXPECT_FALSE(build_resource_key(std::string(200, 'p'), "users", rule(), get("/")).has_value());
  EXPECT_FALSE(build_resource_key("bad prefix:", "users", rule(), get("/")).has_value());
  EXPECT_FALSE(build_resource_key("apigw:", "us\ners", rule(), get("/")).has_value());
  const auto hostile = build_resource_key("apigw:", "users", rule(), get("/a b\r\n", "x=\x01", "evil host"));
  ASSERT_TRUE(hostile.has_value());
  EXPECT_TRUE(valid_key(*hostile));
}

TEST(CacheKey, EveryPartOfTheRequestTellsEntriesApart) {
  const std::string base = key(get("/users/7", "a=1"));
  EXPECT_NE(base, key(get("/users/8", "a=1")));
  EXPECT_NE(base, key(get("/users/7", "a=2")));
  EXPECT_NE(base, key(get("/users/7")));
  EXPECT_NE(base, key(get("/users/7", "a=1", "other.example.com")));
  EXPECT_NE(base, key(KeyRequest{"HEAD", "api.example.com", "/users/7", "a=1", nullptr, std::nullopt}));
  EXPECT_NE(base, key(get("/users/7", "a=1"), rule(), "accounts"));
  EXPECT_NE(base, key(get("/users/7", "a=1"), rule(), "users", "other:"));
}

TEST(CacheKey, FieldBoundariesCannotBeShifted) {
  // Moving bytes between path and query, or host and path, must not give the same digest.
  EXPECT_NE(key(get("/a", "b")), key(get("/ab")));
  EXPECT_NE(key(get("/x", "", "a.example.com")), key(get("m/x", "", "a.example.co")));
}

TEST(CacheKey, HostIsLowerCasedWithoutDefaultPortOrTrailingDot) {
  EXPECT_EQ(cache_key_host("API.Example.COM"), "api.example.com");
  EXPECT_EQ(cache_key_host("api.example.com:80"), "api.example.com");
  EXPECT_EQ(cache_key_host("api.example.com:443"), "api.example.com");
  EXPECT_EQ(cache_key_host("api.example.com.:443"), "api.example.com");
  EXPECT_EQ(cache_key_host("api.example.com:8080"), "api.example.com:8080");
  EXPECT_EQ(cache_key_host("[::1]"), "[::1]");
  EXPECT_EQ(cache_key_host("[::1]:80"), "[::1]");
  EXPECT_EQ(cache_key_host("[::1]:8443"), "[::1]:8443");
  EXPECT_EQ(cache_key_host(""), "");
  EXPECT_EQ(key(get("/", "", "API.example.com:80")), key(get("/", "", "api.example.com")));
  EXPECT_NE(key(get("/", "", "api.example.com:8080")), key(get("/", "", "api.example.com")));
}

TEST(CacheKey, QueryIsOrderedByNameKeepingEncodingAndRepeatedValuesInOrder) {
  EXPECT_EQ(canonical_query("b=2&a=1"), "a=1&b=2");
  EXPECT_EQ(canonical_query("z&a=%20x&m=1"), "a=%20x&m=1&z");
  EXPECT_EQ(canonical_query("ids=2&x=0&ids=1"), "ids=2&ids=1&x=0");
  EXPECT_EQ(canonical_query("a=1&&b=2&"), "a=1&b=2");
  EXPECT_EQ(canonical_query("&&"), "");
  EXPECT_EQ(canonical_query(""), "");
  EXPECT_EQ(canonical_query("a=%2F"), "a=%2F") << "no decoding";
  EXPECT_NE(canonical_query("a"), canonical_query("a="));
  EXPECT_EQ(key(get("/s", "q=x&page=2")), key(get("/s", "page=2&q=x")));
  EXPECT_NE(key(get("/s", "ids=1&ids=2")), key(get("/s", "ids=2&ids=1")));
  EXPECT_NE(key(get("/s", "q=a%20b")), key(get("/s", "q=a+b")));
  EXPECT_EQ(key(get("/s", "q=x&")), key(get("/s", "q=x")));
}

TEST(CacheKey, VaryHeadersAreCaseInsensitiveAbsentDiffersFromEmptyAndLinesJoin) {
  const auto vary = rule({"Accept-Language", "X-Tenant"});
  const auto with = [&](std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
    bhttp::fields headers;
    for (const auto& [name, value] : fields) headers.insert(name, value);
    KeyRequest request = get("/p");
    request.headers = &headers;
    return key(request, vary);
  };
  const std::string none = with({});
  EXPECT_EQ(none, key(get("/p"), vary)) << "no header container means every header is absent";
  EXPECT_NE(none, with({{"Accept-Language", ""}}));
  EXPECT_NE(with({{"Accept-Language", "en"}}), with({{"Accept-Language", "fr"}}));
  EXPECT_EQ(with({{"Accept-Language", "en"}}), with({{"accept-language", " en "}}));
  EXPECT_EQ(with({{"Accept-Language", "en"}, {"Accept-Language", "fr"}}), with({{"Accept-Language", "en, fr"}}));
  EXPECT_NE(with({{"Accept-Language", "en"}}), with({{"X-Tenant", "en"}})) << "each header keeps its place";
  EXPECT_EQ(with({{"Accept-Language", "en"}, {"Cookie", "a=1"}}), with({{"Accept-Language", "en"}}))
      << "headers not in vary do not count";
  EXPECT_NE(with({{"Accept-Language", "en"}}), key(get("/p"), rule())) << "a route with vary keys differently";
}

TEST(CacheKey, UserScopeKeysOnTheUserAndSharedScopeDoesNot) {
  expect_user_scope_keys_on_the_user([](const KeyRequest& r, const config::RouteCacheConfig& c) { return key(r, c); });
}

TEST(CacheKey, LongestConfiguredPrefixAndRouteStayWithinMemcachedLimit) {
  const std::string prefix(config::kMaxCacheKeyPrefixBytes, 'p');
  const std::string route(config::kMaxCachedRouteNameBytes, 'r');
  const std::string long_path = "/" + std::string(10000, 'x');
  const auto built = build_cache_key(prefix, route, rule(), get(long_path, std::string(5000, 'q')));
  ASSERT_TRUE(built.has_value());
  EXPECT_EQ(built->size(), kMaxKeyBytes);
  EXPECT_TRUE(valid_key(*built));
}

TEST(CacheKey, PrefixOrRouteThatCannotFormAKeyGiveNone) {
  EXPECT_FALSE(build_cache_key(std::string(200, 'p'), "users", rule(), get("/")).has_value());
  EXPECT_FALSE(build_cache_key("bad prefix:", "users", rule(), get("/")).has_value());
  EXPECT_FALSE(build_cache_key("apigw:", "us\ners", rule(), get("/")).has_value());
}

TEST(CacheKey, RequestBytesNeverReachTheKey) {
  const auto built = build_cache_key("apigw:", "users", rule(), get("/a b\r\n", "x=\x01", "evil host"));
  ASSERT_TRUE(built.has_value());
  EXPECT_TRUE(valid_key(*built));
}

TEST(CacheKey, ValidKeyForTheCacheApi) {
  EXPECT_TRUE(valid_key("a"));
  EXPECT_TRUE(valid_key("apigw:v2:users:abc"));
  EXPECT_TRUE(valid_key(std::string(250, 'k')));
  EXPECT_TRUE(valid_key("caf\xc3\xa9")) << "UTF-8 bytes are allowed";
  EXPECT_TRUE(valid_key("!~{}[]\"'"));
  EXPECT_FALSE(valid_key(""));
  EXPECT_FALSE(valid_key(std::string(251, 'k')));
  EXPECT_FALSE(valid_key("a b"));
  EXPECT_FALSE(valid_key("a\tb"));
  EXPECT_FALSE(valid_key("a\r\nb"));
  EXPECT_FALSE(valid_key(std::string("a\0b", 3)));
  EXPECT_FALSE(valid_key("a\x7f"));
  EXPECT_FALSE(valid_key("\x1f"));
}

}  // namespace
}  // namespace apigw::cache
