// Trace Context headers as clients send them (anything at all): parse_traceparent on the input's first line,
// valid_tracestate on the rest.
//
// Invariants: a traceparent that parses writes back (version 00) to a value that parses to the same fields, and
// equals the input when the input was exactly a version-00 value; its ids are never all zero; a tracestate said
// valid is at most 512 characters.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "apigw/tracing/trace_context.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = apigw::fuzz::as_text(data, size);
  const std::size_t newline = text.find('\n');
  const std::string_view traceparent = text.substr(0, newline);
  const std::string_view tracestate = newline == std::string_view::npos ? "" : text.substr(newline + 1);
  if (const auto parent = apigw::tracing::parse_traceparent(traceparent)) {
    const std::string written = apigw::tracing::format_traceparent(parent->trace, parent->parent, parent->flags);
    const auto again = apigw::tracing::parse_traceparent(written);
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(again->trace == parent->trace && again->parent == parent->parent && again->flags == parent->flags);
    if (traceparent.size() == 55 && traceparent.starts_with("00-")) FUZZ_CHECK(written == traceparent);
    FUZZ_CHECK(std::any_of(parent->trace.begin(), parent->trace.end(), [](std::uint8_t b) { return b != 0; }));
    FUZZ_CHECK(std::any_of(parent->parent.begin(), parent->parent.end(), [](std::uint8_t b) { return b != 0; }));
  }
  if (apigw::tracing::valid_tracestate(tracestate)) FUZZ_CHECK(tracestate.size() <= 512);
  return 0;
}
