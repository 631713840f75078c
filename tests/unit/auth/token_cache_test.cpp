// The per-worker token cache: positive and negative entries, expiry, least-recently-used eviction.
#include <gtest/gtest.h>

#include "apigw/auth/token_cache.h"

namespace apigw::auth {
namespace {

using namespace std::chrono_literals;
using Clock = TokenCache::Clock;

TEST(TokenCache, RemembersUsersAndInvalidTokensUntilTheyExpire) {
  TokenCache cache(10);
  const Clock::time_point t0{};
  cache.store("good", std::string("user-1"), 5s, t0);
  cache.store("bad", std::nullopt, 1s, t0);
  const TokenCache::Entry* good = cache.find("good", t0 + 4s);
  ASSERT_NE(good, nullptr);
  EXPECT_EQ(good->user, "user-1");
  const TokenCache::Entry* bad = cache.find("bad", t0 + 500ms);
  ASSERT_NE(bad, nullptr);
  EXPECT_FALSE(bad->user.has_value());
  EXPECT_EQ(cache.find("bad", t0 + 1s), nullptr);   // negative entries expire sooner
  EXPECT_EQ(cache.find("good", t0 + 5s), nullptr);  // expiry is exclusive
  EXPECT_EQ(cache.size(), 0u);                      // expired entries are dropped when met
  EXPECT_EQ(cache.find("never", t0), nullptr);
}

TEST(TokenCache, EvictsTheLeastRecentlyUsed) {
  TokenCache cache(2);
  const Clock::time_point t0{};
  cache.store("a", std::string("1"), 10s, t0);
  cache.store("b", std::string("2"), 10s, t0);
  ASSERT_NE(cache.find("a", t0), nullptr);  // a is now the most recently used
  cache.store("c", std::string("3"), 10s, t0);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.find("b", t0), nullptr);
  EXPECT_NE(cache.find("a", t0), nullptr);
  EXPECT_NE(cache.find("c", t0), nullptr);
}

TEST(TokenCache, StoringAgainReplacesAndRefreshes) {
  TokenCache cache(2);
  const Clock::time_point t0{};
  cache.store("a", std::string("1"), 1s, t0);
  cache.store("a", std::nullopt, 3s, t0 + 500ms);  // the user's session was revoked
  const TokenCache::Entry* a = cache.find("a", t0 + 2s);
  ASSERT_NE(a, nullptr);
  EXPECT_FALSE(a->user.has_value());
  EXPECT_EQ(cache.size(), 1u);
}

TEST(TokenCache, OffWhenSizeOrTtlIsZero) {
  const Clock::time_point t0{};
  TokenCache none(0);
  none.store("a", std::string("1"), 5s, t0);
  EXPECT_EQ(none.find("a", t0), nullptr);
  TokenCache cache(10);
  cache.store("a", std::string("1"), 0s, t0);
  EXPECT_EQ(cache.find("a", t0), nullptr);
}

}  // namespace
}  // namespace apigw::auth
