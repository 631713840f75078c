// Tests for a request's trace context: continuing the caller's trace, starting one, and the header lines sent on.
#include "apigw/tracing/request_trace.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace apigw::tracing {
namespace {

constexpr std::string_view kCallerParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

IncomingContext with_parent(std::string_view traceparent, std::string_view tracestate = {}) {
  IncomingContext incoming;
  incoming.traceparent = traceparent;
  incoming.traceparents = 1;
  incoming.tracestate = tracestate;
  incoming.tracestates = tracestate.empty() ? 0 : 1;
  return incoming;
}

TEST(RequestTrace, AValidTraceparentContinuesTheCallersTrace) {
  IdGenerator ids;
  RequestTrace trace;
  begin_trace(trace, with_parent(kCallerParent, "vendor=abc,other=1"), 0.0, ids);
  EXPECT_TRUE(trace.active);
  EXPECT_EQ(to_hex(trace.trace), "4bf92f3577b34da6a3ce929d0e0e4736");
  ASSERT_TRUE(trace.parent);
  EXPECT_EQ(to_hex(*trace.parent), "00f067aa0ba902b7");
  EXPECT_TRUE(trace.sampled()) << "the caller's decision, whatever the ratio";
  EXPECT_NE(trace.server, trace.upstream);
  EXPECT_EQ(trace.headers, "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-" + to_hex(trace.upstream) +
                               "-01\r\ntracestate: vendor=abc,other=1\r\n");
}

TEST(RequestTrace, AnUnsampledCallerStaysUnsampledAndUnknownFlagsAreNotPassedOn) {
  IdGenerator ids;
  RequestTrace trace;
  begin_trace(trace, with_parent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"), 1.0, ids);
  EXPECT_FALSE(trace.sampled());
  EXPECT_TRUE(trace.headers.ends_with("-00\r\n"));
  begin_trace(trace, with_parent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03"), 0.0, ids);
  EXPECT_TRUE(trace.sampled());
  EXPECT_TRUE(trace.headers.ends_with("-01\r\n")) << trace.headers;
}

TEST(RequestTrace, AMissingInvalidOrRepeatedTraceparentStartsANewTraceWithoutTracestate) {
  IdGenerator ids;
  std::set<std::string> traces;
  for (IncomingContext incoming : {IncomingContext{}, with_parent("00-zz-00f067aa0ba902b7-01", "vendor=abc"),
                                   with_parent("00-00000000000000000000000000000000-00f067aa0ba902b7-01")}) {
    RequestTrace trace;
    begin_trace(trace, incoming, 1.0, ids);
    EXPECT_FALSE(trace.parent);
    EXPECT_TRUE(trace.sampled()) << "a ratio of 1 samples every new trace";
    EXPECT_TRUE(trace.state.empty());
    EXPECT_EQ(trace.headers.find("tracestate"), std::string::npos);
    EXPECT_NE(to_hex(trace.trace), "4bf92f3577b34da6a3ce929d0e0e4736");
    traces.insert(to_hex(trace.trace));
  }
  EXPECT_EQ(traces.size(), 3u) << "each new trace has its own id";
  IncomingContext twice = with_parent(kCallerParent);
  twice.traceparents = 2;
  RequestTrace trace;
  begin_trace(trace, twice, 0.0, ids);
  EXPECT_FALSE(trace.parent);
  EXPECT_FALSE(trace.sampled()) << "a ratio of 0 samples no new trace";
}

TEST(RequestTrace, AnInvalidOrRepeatedTracestateIsDropped) {
  IdGenerator ids;
  RequestTrace trace;
  begin_trace(trace, with_parent(kCallerParent, "not a list member"), 0.0, ids);
  EXPECT_TRUE(trace.parent);
  EXPECT_TRUE(trace.state.empty());
  IncomingContext twice = with_parent(kCallerParent, "a=1");
  twice.tracestates = 2;
  begin_trace(trace, twice, 0.0, ids);
  EXPECT_TRUE(trace.state.empty());
}

TEST(RequestTrace, TheSampleRatioDecidesNewTraces) {
  IdGenerator ids;
  int sampled = 0;
  for (int i = 0; i < 10000; ++i) {
    RequestTrace trace;
    begin_trace(trace, {}, 0.1, ids);
    sampled += trace.sampled() ? 1 : 0;
  }
  // Binomial(10000, 0.1): the standard deviation is 30.
  EXPECT_GT(sampled, 850);
  EXPECT_LT(sampled, 1150);
}

TEST(RequestTrace, HeadersForAnotherChildSpan) {
  IdGenerator ids;
  RequestTrace trace;
  begin_trace(trace, with_parent(kCallerParent, "a=1"), 0.0, ids);
  const SpanId shadow = ids.span_id();
  EXPECT_EQ(trace_headers(trace, shadow),
            "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-" + to_hex(shadow) + "-01\r\ntracestate: a=1\r\n");
}

}  // namespace
}  // namespace apigw::tracing
