// Tests for affinity buckets: numeric keys land exactly, others by a pinned hash, shares are stable as they grow,
// and the key comes from the first source present.
#include "apigw/migration/affinity.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace apigw::migration {
namespace {

namespace bhttp = boost::beast::http;
using Kind = config::AffinitySource::Kind;

TEST(Affinity, NumericKeysAreTheirValueModBuckets) {
  EXPECT_EQ(bucket_of("123456789", 10000), 6789u);
  EXPECT_EQ(bucket_of("1001", 10000), 1001u);
  EXPECT_EQ(bucket_of("0001001", 10000), 1001u) << "leading zeros are allowed";
  EXPECT_EQ(bucket_of("0", 10000), 0u);
  EXPECT_EQ(bucket_of("10000", 10000), 0u);
  EXPECT_EQ(bucket_of("9999", 10000), 9999u);
  EXPECT_EQ(bucket_of("7", 3), 1u);
  EXPECT_EQ(bucket_of("0000000000000000042", 100), 42u) << "19 digits, most of them zeros";
}

TEST(Affinity, NineteenDigitsAreExact) {
  EXPECT_EQ(bucket_of("9999999999999999999", 10000), 9999u);
  EXPECT_EQ(bucket_of("9999999999999999999", 4294967295u), 347022084u);
  EXPECT_EQ(bucket_of("1234567890123456789", 10000), 6789u);
}

TEST(Affinity, OtherKeysAreHashedWithFnv1a64ThenMixed) {
  // FNV-1a 64 ("a" → 0xaf63dc4c8601ec8c, "foobar" → 0x85944171f73967e8, the published vectors), then
  // MurmurHash3's fmix64; pinned, since changing either would move users between sides.
  EXPECT_EQ(bucket_of("a", 10000), 8315u);
  EXPECT_EQ(bucket_of("foobar", 10000), 7275u);
  EXPECT_EQ(bucket_of("foobar", 7), 3u);
  EXPECT_EQ(bucket_of("10.0.0.1", 10000), 1640u);
  EXPECT_EQ(bucket_of("", 10000), 4342u);
}

TEST(Affinity, WhatIsNotNumericIsHashed) {
  EXPECT_EQ(bucket_of("12345678901234567890", 10000), 8033u) << "20 digits would overflow: hashed";
  EXPECT_NE(bucket_of("12345678901234567890", 10000), 7890u);
  EXPECT_EQ(bucket_of("12a", 10000), 4447u);
  EXPECT_NE(bucket_of("+12", 10000), 12u);
  EXPECT_NE(bucket_of("-12", 10000), 12u);
  EXPECT_NE(bucket_of(" 12", 10000), 12u);
  EXPECT_NE(bucket_of("12.0", 10000), 12u);
  EXPECT_EQ(bucket_of("user-42", 10000), bucket_of("user-42", 10000)) << "stable";
}

TEST(Affinity, OneBucketHoldsEveryone) {
  EXPECT_EQ(bucket_of("123", 1), 0u);
  EXPECT_EQ(bucket_of("abc", 1), 0u);
  EXPECT_EQ(bucket_of("abc", 0), 0u) << "never a division by zero";
}

TEST(Affinity, BucketsAreEvenlySpreadForHashedKeys) {
  constexpr std::uint32_t kBuckets = 10000;
  constexpr int kKeys = 200000;
  for (const std::string prefix : {"device-", "10.1.", "d41d8cd9-"}) {
    std::vector<int> tenths(10, 0);
    int in_one_percent = 0;
    for (int i = 0; i < kKeys; ++i) {
      const std::uint32_t bucket = bucket_of(prefix + std::to_string(i), kBuckets);
      ASSERT_LT(bucket, kBuckets);
      ++tenths[bucket / 1000];
      if (in_share(bucket, 100)) ++in_one_percent;
    }
    for (const int count : tenths) EXPECT_NEAR(count, kKeys / 10, kKeys / 100) << prefix;
    EXPECT_NEAR(in_one_percent, kKeys / 100, kKeys / 400) << prefix;
  }
}

TEST(Affinity, ShareGrowsWithoutMovingAnyoneOut) {
  // A key in at 0.01 % (threshold 1 of 10000) is in at every higher percent.
  const std::vector<std::uint32_t> ramp = {1, 100, 2500, 10000};
  for (int i = 0; i < 5000; ++i) {
    const std::uint32_t bucket = bucket_of("user-" + std::to_string(i), 10000);
    bool was_in = false;
    for (const std::uint32_t threshold : ramp) {
      const bool in = in_share(bucket, threshold);
      EXPECT_TRUE(in || !was_in);
      was_in = in;
    }
    EXPECT_TRUE(was_in) << "100 % holds everyone";
  }
  EXPECT_FALSE(in_share(0, 0));
  EXPECT_TRUE(in_share(0, 1));
  EXPECT_FALSE(in_share(1, 1));
}

std::vector<config::AffinitySource> sources(std::vector<config::AffinitySource> list) { return list; }

const std::vector<config::AffinitySource> kAll = sources({{Kind::kUserId, {}},
                                                          {Kind::kHeader, "X-Device-Id"},
                                                          {Kind::kCookie, "device_id"},
                                                          {Kind::kClientIp, {}}});

TEST(AffinityKey, TakesTheFirstSourcePresentInOrder) {
  bhttp::fields headers;
  headers.set("X-Device-Id", "dev-1");
  headers.set(bhttp::field::cookie, "device_id=cookie-1");
  EXPECT_EQ(affinity_key(kAll, "1001", headers, "10.0.0.1"), "1001");
  EXPECT_EQ(affinity_key(kAll, "", headers, "10.0.0.1"), "dev-1");
  headers.erase("X-Device-Id");
  EXPECT_EQ(affinity_key(kAll, "", headers, "10.0.0.1"), "cookie-1");
  headers.erase(bhttp::field::cookie);
  EXPECT_EQ(affinity_key(kAll, "", headers, "10.0.0.1"), "10.0.0.1");
  EXPECT_EQ(affinity_key(kAll, "", headers, ""), std::nullopt);
}

TEST(AffinityKey, OrderIsTheConfiguredOne) {
  bhttp::fields headers;
  headers.set("X-Device-Id", "dev-1");
  const auto ip_first = sources({{Kind::kClientIp, {}}, {Kind::kUserId, {}}});
  EXPECT_EQ(affinity_key(ip_first, "1001", headers, "192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(affinity_key(ip_first, "1001", headers, ""), "1001");
  const auto header_only = sources({{Kind::kHeader, "X-Device-Id"}});
  EXPECT_EQ(affinity_key(header_only, "1001", headers, "192.0.2.7"), "dev-1");
  EXPECT_EQ(affinity_key({}, "1001", headers, "192.0.2.7"), std::nullopt) << "no source, no key";
}

TEST(AffinityKey, HeaderValuesAreTrimmedAndEmptyOnesSkipped) {
  const auto header_then_ip = sources({{Kind::kHeader, "X-Device-Id"}, {Kind::kClientIp, {}}});
  bhttp::fields headers;
  headers.set("x-device-id", " \tdev-2 \t");
  EXPECT_EQ(affinity_key(header_then_ip, "", headers, "ip"), "dev-2") << "names are case-insensitive";
  headers.set("X-Device-Id", "  ");
  EXPECT_EQ(affinity_key(header_then_ip, "", headers, "ip"), "ip");
  headers.insert("X-Device-Id", "dev-3");
  EXPECT_EQ(affinity_key(header_then_ip, "", headers, "ip"), "dev-3") << "the first non-empty line";
}

TEST(AffinityKey, CookiesAreReadFromEveryCookieLine) {
  const auto cookie_then_ip = sources({{Kind::kCookie, "device_id"}, {Kind::kClientIp, {}}});
  bhttp::fields headers;
  headers.insert(bhttp::field::cookie, "session=abc; theme=dark");
  EXPECT_EQ(affinity_key(cookie_then_ip, "", headers, "ip"), "ip");
  headers.insert(bhttp::field::cookie, "a=1; device_id=\"dev-4\"; b=2");
  EXPECT_EQ(affinity_key(cookie_then_ip, "", headers, "ip"), "dev-4") << "second line, quotes removed";
  bhttp::fields empty_first;
  empty_first.insert(bhttp::field::cookie, "device_id=");
  empty_first.insert(bhttp::field::cookie, "device_id=dev-5");
  EXPECT_EQ(affinity_key(cookie_then_ip, "", empty_first, "ip"), "dev-5") << "an empty value counts as absent";
  bhttp::fields other_name;
  other_name.insert(bhttp::field::cookie, "xdevice_id=dev-6");
  EXPECT_EQ(affinity_key(cookie_then_ip, "", other_name, "ip"), "ip");
}

TEST(AffinityKey, NumericUserIdsLandInTheirOwnBucket) {
  const bhttp::fields headers;
  const auto key = affinity_key(kAll, "1002", headers, "10.0.0.1");
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(bucket_of(*key, 10000), 1002u);
}

}  // namespace
}  // namespace apigw::migration
