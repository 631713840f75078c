// One request's part in a trace: the context it came with (or the trace it starts), the ids of the spans apigw
// makes for it, and the header lines that carry the context on to the upstream and to the shadow side. Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "apigw/tracing/span.h"
#include "apigw/tracing/trace_context.h"

namespace apigw::tracing {

struct RequestTrace {
  bool active = false;            // the gateway traces (a `tracing` section): the fields below are set
  TraceId trace{};
  std::optional<SpanId> parent;   // the caller's span, from a valid incoming traceparent
  SpanId server{};                // apigw's span for the request
  SpanId upstream{};              // the upstream exchange's span: the parent the upstream is told of
  std::uint8_t flags = 0;         // as sent on: the caller's, or the sampling decision for a new trace
  std::string state;              // the incoming tracestate when it may be passed on, else empty
  std::string headers;            // "traceparent: ...\r\n" and "tracestate: ...\r\n" for the upstream request

  bool sampled() const { return (flags & kSampledFlag) != 0; }
};

// What the request said: its traceparent and tracestate field values, and how many of each it had.
struct IncomingContext {
  std::string_view traceparent;
  std::size_t traceparents = 0;
  std::string_view tracestate;
  std::size_t tracestates = 0;
};

// Begins the request's trace. A request with exactly one valid traceparent continues the caller's trace, and its
// sampled flag decides (a parent-based sampler); its tracestate is passed on when there is one and it is valid.
// Any other request (none, several, or an invalid one, which is dropped) starts a new trace, sampled by `ratio`
// (0 to 1) on its trace id, and passes no tracestate on.
void begin_trace(RequestTrace& trace, const IncomingContext& incoming, double ratio, IdGenerator& ids);

// The traceparent (and tracestate) header lines of a request sent as `span`, a child in the trace.
std::string trace_headers(const RequestTrace& trace, const SpanId& span);

// A span `id` of the request's trace, child of `parent`, with the tracestate the request came with; times,
// attributes and status are the caller's to add.
Span span_in(const RequestTrace& trace, const SpanId& id, const std::optional<SpanId>& parent, SpanKind kind,
             std::string name);

}  // namespace apigw::tracing
