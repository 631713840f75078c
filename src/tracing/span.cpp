// OTLP/JSON encoding of spans (see span.h). Written directly rather than through a JSON value tree: a span is
// encoded on the worker that finished it, once per sampled request.
#include "apigw/tracing/span.h"

#include <fmt/format.h>

#include "apigw/http/local_reply.h"

namespace apigw::tracing {

namespace {

void append_string(std::string& out, std::string_view text) {
  out += '"';
  http::append_json_escaped(out, text);
  out += '"';
}

void append_value(std::string& out, const AttributeValue& value) {
  if (const auto* text = std::get_if<std::string>(&value)) {
    out += "{\"stringValue\":";
    append_string(out, *text);
    out += '}';
  } else if (const auto* number = std::get_if<std::int64_t>(&value)) {
    // OTLP/JSON writes 64-bit integers as strings.
    fmt::format_to(std::back_inserter(out), "{{\"intValue\":\"{}\"}}", *number);
  } else {
    out += std::get<bool>(value) ? "{\"boolValue\":true}" : "{\"boolValue\":false}";
  }
}

void append_attributes(std::string& out, const std::vector<Attribute>& attributes) {
  out += '[';
  for (std::size_t i = 0; i < attributes.size(); ++i) {
    if (i > 0) out += ',';
    out += "{\"key\":";
    append_string(out, attributes[i].key);
    out += ",\"value\":";
    append_value(out, attributes[i].value);
    out += '}';
  }
  out += ']';
}

}  // namespace

std::string span_json(const Span& span) {
  std::string out;
  out.reserve(512);
  fmt::format_to(std::back_inserter(out), "{{\"traceId\":\"{}\",\"spanId\":\"{}\"", to_hex(span.trace),
                 to_hex(span.id));
  if (span.parent) fmt::format_to(std::back_inserter(out), ",\"parentSpanId\":\"{}\"", to_hex(*span.parent));
  if (!span.trace_state.empty()) {
    out += ",\"traceState\":";
    append_string(out, span.trace_state);
  }
  out += ",\"name\":";
  append_string(out, span.name);
  fmt::format_to(std::back_inserter(out), ",\"kind\":{},\"startTimeUnixNano\":\"{}\",\"endTimeUnixNano\":\"{}\"",
                 static_cast<int>(span.kind), span.start_unix_ns, span.end_unix_ns);
  out += ",\"attributes\":";
  append_attributes(out, span.attributes);
  if (!span.events.empty()) {
    out += ",\"events\":[";
    for (std::size_t i = 0; i < span.events.size(); ++i) {
      const SpanEvent& event = span.events[i];
      if (i > 0) out += ',';
      fmt::format_to(std::back_inserter(out), "{{\"timeUnixNano\":\"{}\",\"name\":", event.time_unix_ns);
      append_string(out, event.name);
      out += ",\"attributes\":";
      append_attributes(out, event.attributes);
      out += '}';
    }
    out += ']';
  }
  if (!span.links.empty()) {
    out += ",\"links\":[";
    for (std::size_t i = 0; i < span.links.size(); ++i) {
      if (i > 0) out += ',';
      fmt::format_to(std::back_inserter(out), "{{\"traceId\":\"{}\",\"spanId\":\"{}\"}}", to_hex(span.links[i].trace),
                     to_hex(span.links[i].span));
    }
    out += ']';
  }
  fmt::format_to(std::back_inserter(out), ",\"status\":{{\"code\":{}", static_cast<int>(span.status));
  if (!span.status_message.empty()) {
    out += ",\"message\":";
    append_string(out, span.status_message);
  }
  out += "}}";
  return out;
}

std::string export_request_json(std::string_view service_name, std::string_view service_version,
                                std::string_view instance_id, const std::vector<std::string>& spans) {
  std::size_t size = 256;
  for (const std::string& span : spans) size += span.size() + 1;
  std::string out;
  out.reserve(size);
  out += "{\"resourceSpans\":[{\"resource\":{\"attributes\":";
  append_attributes(out, {{"service.name", std::string(service_name)},
                          {"service.version", std::string(service_version)},
                          {"service.instance.id", std::string(instance_id)}});
  out += "},\"scopeSpans\":[{\"scope\":{\"name\":\"apigw\",\"version\":";
  append_string(out, service_version);
  out += "},\"spans\":[";
  for (std::size_t i = 0; i < spans.size(); ++i) {
    if (i > 0) out += ',';
    out += spans[i];
  }
  out += "]}]}]}";
  return out;
}

}  // namespace apigw::tracing
