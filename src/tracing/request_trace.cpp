// A request's trace context (see request_trace.h).
#include "apigw/tracing/request_trace.h"

namespace apigw::tracing {

void begin_trace(RequestTrace& trace, const IncomingContext& incoming, double ratio, IdGenerator& ids) {
  trace.active = true;
  trace.state.clear();
  const std::optional<TraceParent> parent =
      incoming.traceparents == 1 ? parse_traceparent(incoming.traceparent) : std::nullopt;
  if (parent) {
    trace.trace = parent->trace;
    trace.parent = parent->parent;
    // Only the sampled flag is known to this version of the recommendation; other bits are not passed on.
    trace.flags = parent->flags & kSampledFlag;
    if (incoming.tracestates == 1 && !incoming.tracestate.empty() && valid_tracestate(incoming.tracestate)) {
      trace.state = std::string(incoming.tracestate);
    }
  } else {
    trace.trace = ids.trace_id();
    trace.parent.reset();
    trace.flags = sampled_by_ratio(trace.trace, ratio) ? kSampledFlag : 0;
  }
  trace.server = ids.span_id();
  trace.upstream = ids.span_id();
  trace.headers = trace_headers(trace, trace.upstream);
}

std::string trace_headers(const RequestTrace& trace, const SpanId& span) {
  std::string lines;
  lines.reserve(72 + (trace.state.empty() ? 0 : trace.state.size() + 14));
  lines += "traceparent: ";
  lines += format_traceparent(trace.trace, span, trace.flags);
  lines += "\r\n";
  if (!trace.state.empty()) {
    lines += "tracestate: ";
    lines += trace.state;
    lines += "\r\n";
  }
  return lines;
}

Span span_in(const RequestTrace& trace, const SpanId& id, const std::optional<SpanId>& parent, SpanKind kind,
             std::string name) {
  Span span;
  span.trace = trace.trace;
  span.id = id;
  span.parent = parent;
  span.trace_state = trace.state;
  span.kind = kind;
  span.name = std::move(name);
  return span;
}

}  // namespace apigw::tracing
