// Tests for core/units: the duration and size notations of the config, including what must be refused.
#include "apigw/core/units.h"

#include <gtest/gtest.h>

namespace apigw::core {
namespace {

using std::chrono::milliseconds;

TEST(Units, DurationsInEveryUnit) {
  EXPECT_EQ(parse_duration("250ms"), milliseconds(250));
  EXPECT_EQ(parse_duration("5s"), milliseconds(5'000));
  EXPECT_EQ(parse_duration("2m"), milliseconds(120'000));
  EXPECT_EQ(parse_duration("1h"), milliseconds(3'600'000));
  EXPECT_EQ(parse_duration("0"), milliseconds(0));
  EXPECT_EQ(parse_duration("0ms"), milliseconds(0));
  EXPECT_EQ(parse_duration("0s"), milliseconds(0));
}

TEST(Units, DurationRefusesMalformedText) {
  for (const char* text : {"", "5", "10", "s", "ms", "5 s", " 5s", "5s ", "-5s", "+5s", "1.5s", "5sec", "5S", "5ms5",
                           "5d", "5us", "0x10s"}) {
    EXPECT_EQ(parse_duration(text), std::nullopt) << text;
  }
}

TEST(Units, DurationRefusesOverflow) {
  EXPECT_EQ(parse_duration("99999999999999999999ms"), std::nullopt);
  EXPECT_EQ(parse_duration("9223372036854775807s"), std::nullopt);
  EXPECT_EQ(parse_duration("9223372036854775807ms"), milliseconds(9223372036854775807LL));
  EXPECT_EQ(parse_duration("9223372036854775808ms"), std::nullopt);
}

TEST(Units, SizesInEveryUnit) {
  EXPECT_EQ(parse_size("0"), 0u);
  EXPECT_EQ(parse_size("512"), 512u);
  EXPECT_EQ(parse_size("16KiB"), 16u * 1024);
  EXPECT_EQ(parse_size("8MiB"), 8u * 1024 * 1024);
  EXPECT_EQ(parse_size("1GiB"), 1024u * 1024 * 1024);
  EXPECT_EQ(parse_size("1KB"), 1024u);
  EXPECT_EQ(parse_size("2MB"), 2u * 1024 * 1024);
  EXPECT_EQ(parse_size("3GB"), 3ULL * 1024 * 1024 * 1024);
  EXPECT_EQ(parse_size("18446744073709551615"), 18446744073709551615ULL);
}

TEST(Units, SizeRefusesMalformedText) {
  for (const char* text : {"", "KiB", "16kib", "16kb", "16 KiB", "1.5MiB", "-1", "+1", "16KiBs", "16B", "16TiB",
                           "16k", " 16"}) {
    EXPECT_EQ(parse_size(text), std::nullopt) << text;
  }
}

TEST(Units, SizeRefusesOverflow) {
  EXPECT_EQ(parse_size("18446744073709551616"), std::nullopt);
  EXPECT_EQ(parse_size("17179869184GiB"), std::nullopt);  // 2^34 GiB = 2^64 bytes
  EXPECT_EQ(parse_size("17179869183GiB"), 17179869183ULL << 30);
}

}  // namespace
}  // namespace apigw::core
