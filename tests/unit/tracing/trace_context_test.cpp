// Tests for Trace Context: traceparent as the W3C recommendation defines it (its own examples, versions, invalid
// shapes), tracestate's limits, ids and the ratio sampler.
#include "apigw/tracing/trace_context.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace apigw::tracing {
namespace {

constexpr std::string_view kExample = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(TraceParent, TheRecommendationsExampleReadsAndWritesBackUnchanged) {
  const auto parent = parse_traceparent(kExample);
  ASSERT_TRUE(parent);
  EXPECT_EQ(to_hex(parent->trace), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(to_hex(parent->parent), "00f067aa0ba902b7");
  EXPECT_TRUE(parent->sampled());
  EXPECT_EQ(format_traceparent(parent->trace, parent->parent, parent->flags), kExample);
  const auto unsampled = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  ASSERT_TRUE(unsampled);
  EXPECT_FALSE(unsampled->sampled());
  // Optional whitespace around the value is not part of it.
  EXPECT_TRUE(parse_traceparent(" \t" + std::string(kExample) + " "));
}

TEST(TraceParent, LaterVersionsAreReadByVersion00sFields) {
  const auto parent = parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-comes-next");
  ASSERT_TRUE(parent);
  EXPECT_EQ(parent->flags, 0x09);
  EXPECT_TRUE(parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  // ...but what follows the fields must start with '-'.
  EXPECT_FALSE(parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x"));
}

TEST(TraceParent, InvalidShapesAreRefused) {
  for (const std::string_view bad : {
           "",
           "00",
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // version ff is invalid
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   // all-zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   // all-zero parent id
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   // upper case
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",  // version 00 has nothing more
           "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",   // a dash out of place
           "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
           "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
       }) {
    EXPECT_FALSE(parse_traceparent(bad)) << bad;
  }
}

TEST(TraceState, MembersKeysValuesAndSizeAreChecked) {
  EXPECT_TRUE(valid_tracestate("congo=t61rcWkgMzE"));
  EXPECT_TRUE(valid_tracestate("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"));
  EXPECT_TRUE(valid_tracestate("rojo=00f067aa0ba902b7 , congo=t61rcWkgMzE,,"));
  EXPECT_TRUE(valid_tracestate("fw529a3039@dt=abc,0tenant@sys=x"));
  EXPECT_TRUE(valid_tracestate(""));
  EXPECT_FALSE(valid_tracestate("Rojo=1"));            // keys are lower case
  EXPECT_FALSE(valid_tracestate("rojo"));              // no value
  EXPECT_FALSE(valid_tracestate("rojo=a=b"));          // '=' in a value
  EXPECT_TRUE(valid_tracestate("rojo=abc "));          // the blank after a member is list whitespace
  EXPECT_FALSE(valid_tracestate("rojo=ab\x7f"));       // outside printable ASCII
  EXPECT_FALSE(valid_tracestate("rojo=\x01"));
  EXPECT_FALSE(valid_tracestate("0rojo=1"));           // a simple key starts with a letter
  std::string many;
  for (int i = 0; i < 33; ++i) many += (i ? ",k" : "k") + std::to_string(i) + "=v";
  EXPECT_FALSE(valid_tracestate(many));
  EXPECT_FALSE(valid_tracestate("k=" + std::string(511, 'v')));
}

TEST(Sampling, TheRatioDecidesByTheTraceIdsLastEightBytes) {
  TraceId low{};
  low[15] = 1;
  TraceId high{};
  high.fill(0xff);
  EXPECT_FALSE(sampled_by_ratio(low, 0.0));
  EXPECT_TRUE(sampled_by_ratio(low, 0.0001));
  EXPECT_FALSE(sampled_by_ratio(high, 0.9999));
  EXPECT_TRUE(sampled_by_ratio(high, 1.0));
  // Over random ids, about the ratio.
  IdGenerator ids;
  int sampled = 0;
  for (int i = 0; i < 100000; ++i) sampled += sampled_by_ratio(ids.trace_id(), 0.01);
  EXPECT_GT(sampled, 800);
  EXPECT_LT(sampled, 1200);
}

TEST(Ids, AreRandomAndNeverZero) {
  IdGenerator ids;
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    seen.insert(to_hex(ids.trace_id()));
    seen.insert(to_hex(ids.span_id()));
  }
  EXPECT_EQ(seen.size(), 2000u);
  EXPECT_EQ(seen.count(std::string(32, '0')), 0u);
}

}  // namespace
}  // namespace apigw::tracing
