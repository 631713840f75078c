// Tests for guarded ramps' arithmetic: p99 from the latency buckets, the judge's verdicts, and the ramp's JSON.
#include <gtest/gtest.h>

#include "apigw/fleet/ramp.h"

namespace apigw::fleet {
namespace {

// `requests` answers, `errors` of them 5xx, all in latency bucket `bucket` (bounds 0.5 ms, 1 ms, 2.5 ms, 5 ms, ...).
SideFigures side(std::uint64_t requests, std::uint64_t errors = 0, std::size_t bucket = 1) {
  SideFigures figures;
  figures.requests = requests;
  figures.upstream_errors = errors;
  figures.latency[bucket] = requests;
  return figures;
}

RampState running(std::int64_t since_ms = 0) {
  RampState state;
  state.plan.route = "users";
  state.plan.steps = {"1", "25", "100"};
  state.plan.hold_ms = 10'000;
  state.plan.min_requests = 100;
  state.step_since_ms = since_ms;
  return state;
}

TEST(RampFigures, P99InterpolatesWithinItsBucket) {
  SideFigures figures;
  EXPECT_EQ(figures.p99_seconds(), 0.0);
  figures.latency[0] = 99;  // under 0.5 ms
  figures.latency[3] = 1;   // 2.5 ms to 5 ms
  EXPECT_NEAR(figures.p99_seconds(), 0.0005, 1e-9);
  figures.latency[3] = 100;  // half the answers between 2.5 and 5 ms: the 99th percentile is near the top
  EXPECT_NEAR(figures.p99_seconds(), 0.0025 + 0.0025 * (0.99 * 199 - 99) / 100.0, 1e-9);
  SideFigures slow;
  slow.latency[kLatencyBuckets - 1] = 10;  // all above 10 s
  EXPECT_EQ(slow.p99_seconds(), 10.0);
}

TEST(RampFigures, ErrorRateCountsUpstreamAndGatewayErrors) {
  SideFigures figures = side(1000, 5);
  figures.gateway_errors = 5;
  EXPECT_DOUBLE_EQ(figures.error_rate(), 0.01);
  figures += side(1000);
  EXPECT_EQ(figures.requests, 2000u);
  EXPECT_DOUBLE_EQ(figures.error_rate(), 0.005);
}

TEST(RampJudge, WaitsForTheHoldThenAdvances) {
  const RampState state = running(0);
  Verdict verdict = judge(state, side(1000), side(1000), std::nullopt, 5'000);
  EXPECT_EQ(verdict.action, Verdict::Action::kWait);
  EXPECT_NE(verdict.reason.find("step 1 of 3 (1 %): held 5s of 10s"), std::string::npos) << verdict.reason;
  verdict = judge(state, side(1000), side(1000), std::nullopt, 10'000);
  EXPECT_EQ(verdict.action, Verdict::Action::kAdvance);
  EXPECT_NE(verdict.reason.find("on to 25 %"), std::string::npos) << verdict.reason;
  EXPECT_NE(verdict.reason.find("errors 0.00 % vs 0.00 %, p99 1.0 ms vs 1.0 ms"), std::string::npos) << verdict.reason;
}

TEST(RampJudge, AHeldStepWaitsForEnoughRequestsOnEachSide) {
  const Verdict verdict = judge(running(0), side(1000), side(99), std::nullopt, 60'000);
  EXPECT_EQ(verdict.action, Verdict::Action::kWait);
  EXPECT_NE(verdict.reason.find("waiting for 100 requests on each side"), std::string::npos) << verdict.reason;
}

TEST(RampJudge, TheLastStepHeldFinishes) {
  RampState state = running(0);
  state.step = 2;
  EXPECT_EQ(judge(state, side(1000), side(1000), std::nullopt, 10'000).action, Verdict::Action::kFinish);
  // At 100 % the route side serves nobody: the split side alone is judged, by the absolute bound.
  EXPECT_EQ(judge(state, side(0), side(1000), std::nullopt, 10'000).action, Verdict::Action::kFinish);
  EXPECT_EQ(judge(state, side(0), side(1000, 50), std::nullopt, 1'000).action, Verdict::Action::kRollBack);
  const Verdict verdict = judge(state, side(0), side(10), std::nullopt, 10'000);
  EXPECT_NE(verdict.reason.find("waiting for 100 requests on the split side"), std::string::npos) << verdict.reason;
}

TEST(RampJudge, RollsBackOnAnyGuardBeforeTheHoldEnds) {
  const RampState state = running(0);
  // 2 % errors on the split side: over the 1 % absolute bound.
  Verdict verdict = judge(state, side(1000), side(1000, 20), std::nullopt, 1'000);
  EXPECT_EQ(verdict.action, Verdict::Action::kRollBack);
  EXPECT_NE(verdict.reason.find("error rate 2.00 % above 1.00 %"), std::string::npos) << verdict.reason;
  // 0.8 % against 0.2 %: under 1 %, but four times the route side's.
  verdict = judge(state, side(1000, 2), side(1000, 8), std::nullopt, 1'000);
  EXPECT_EQ(verdict.action, Verdict::Action::kRollBack);
  EXPECT_NE(verdict.reason.find("error ratio 4.00 above 1.50"), std::string::npos) << verdict.reason;
  // The same ratio with fewer than five errors is not yet a trend.
  EXPECT_EQ(judge(state, side(1000, 0), side(1000, 4), std::nullopt, 1'000).action, Verdict::Action::kWait);
  // p99 in the 5-10 ms bucket against 0.5-1 ms.
  verdict = judge(state, side(1000), side(1000, 0, 4), std::nullopt, 1'000);
  EXPECT_EQ(verdict.action, Verdict::Action::kRollBack);
  EXPECT_NE(verdict.reason.find("p99 ratio"), std::string::npos) << verdict.reason;
  // Sub-millisecond differences are no regression.
  EXPECT_EQ(judge(state, side(1000, 0, 0), side(1000, 0, 1), std::nullopt, 1'000).action, Verdict::Action::kWait);
  // The audit's match rate, when the plan asks for one.
  RampState audited = state;
  audited.plan.min_audit_match = 0.99;
  verdict = judge(audited, side(1000), side(1000), 0.95, 1'000);
  EXPECT_EQ(verdict.action, Verdict::Action::kRollBack);
  EXPECT_NE(verdict.reason.find("audit match 95.00 % below 99.00 %"), std::string::npos) << verdict.reason;
}

TEST(RampJudge, TimeHeldBeforeAPauseCounts) {
  RampState state = running(100'000);
  state.paused_ms = 8'000;
  EXPECT_EQ(judge(state, side(1000), side(1000), std::nullopt, 101'000).action, Verdict::Action::kWait);
  EXPECT_EQ(judge(state, side(1000), side(1000), std::nullopt, 102'000).action, Verdict::Action::kAdvance);
}

TEST(RampState, RoundTripsThroughJson) {
  RampState state = running(123);
  state.revision = 4;
  state.phase = RampPhase::kPaused;
  state.step = 1;
  state.paused_ms = 2'000;
  state.reason = "paused by alice@ops";
  state.author = "alice@ops";
  state.why = "CHG-1";
  state.plan.min_audit_match = 0.99;
  state.route_side = side(10, 1);
  state.split_side = side(20, 2, 3);
  std::string why;
  const auto decoded = decode_ramp(encode(state), why);
  ASSERT_TRUE(decoded) << why;
  EXPECT_EQ(*decoded, state);
  EXPECT_FALSE(decode_ramp(R"({"plan":{}})", why));
  EXPECT_EQ(why, "the ramp has no revision");
}

TEST(RampPlan, Checks) {
  RampPlan plan = running().plan;
  EXPECT_EQ(check_plan(plan), "");
  plan.max_error_ratio = 0.9;
  EXPECT_EQ(check_plan(plan), "--max-error-ratio must be a number of at least 1");
  plan = running().plan;
  plan.steps.clear();
  EXPECT_EQ(check_plan(plan), "a ramp needs at least one step");
  plan = running().plan;
  plan.max_error_rate = 2;
  EXPECT_EQ(check_plan(plan), "--max-error-rate must be from 0 % to 100 %");
}

}  // namespace
}  // namespace apigw::fleet
