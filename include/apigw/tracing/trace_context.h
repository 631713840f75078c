// W3C Trace Context (https://www.w3.org/TR/trace-context/): the traceparent and tracestate request headers, read
// from a client and written to upstreams, and the ids and sampling decision of the spans apigw makes. Pure.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace apigw::tracing {

using TraceId = std::array<std::uint8_t, 16>;
using SpanId = std::array<std::uint8_t, 8>;

constexpr std::uint8_t kSampledFlag = 0x01;

// A traceparent's fields: the trace, the caller's span (the parent of apigw's) and the trace flags.
struct TraceParent {
  TraceId trace{};
  SpanId parent{};
  std::uint8_t flags = 0;

  bool sampled() const { return (flags & kSampledFlag) != 0; }
};

// A traceparent header value as the recommendation allows it: version 00 exactly ("00-" 32 hex "-" 16 hex "-" 2
// hex, lower case), or a later version with at least those fields, and anything after them starting with '-'.
// Version ff, an all-zero trace id or parent id, upper-case hex or any other shape is invalid: nullopt.
std::optional<TraceParent> parse_traceparent(std::string_view value);

// Whether a tracestate header value may be passed on: at most 32 list members, each "key=value" with the
// recommendation's key and value grammar, at most 512 characters in all (the size a vendor must accept; longer
// ones may be cut, and apigw drops them whole rather than choose which members to keep). Empty members (",,")
// are allowed, as the grammar allows them.
bool valid_tracestate(std::string_view value);

// "00-<trace>-<span>-<flags>": version 00, which is what apigw writes whatever version it read.
std::string format_traceparent(const TraceId& trace, const SpanId& span, std::uint8_t flags);

std::string to_hex(const TraceId& id);
std::string to_hex(const SpanId& id);

// Head sampling by trace id, as OpenTelemetry's TraceIdRatioBased sampler: the trace's last 8 bytes read as a
// big-endian number below ratio × 2^64. Every instance that sees the trace decides alike. `ratio` 0 to 1.
bool sampled_by_ratio(const TraceId& trace, double ratio);

// Random, never all-zero ids; one per worker (not thread safe).
class IdGenerator {
 public:
  IdGenerator();
  TraceId trace_id();
  SpanId span_id();

 private:
  std::mt19937_64 random_;
};

}  // namespace apigw::tracing
