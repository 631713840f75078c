// A finished span, as apigw exports it, and its OTLP/JSON encoding (OpenTelemetry's protocol over HTTP with the
// JSON encoding: https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding). Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "apigw/tracing/trace_context.h"

namespace apigw::tracing {

// OTLP's SpanKind values.
enum class SpanKind : int { kInternal = 1, kServer = 2, kClient = 3 };
// OTLP's status codes: unset, or error (apigw never sets "ok": that is left to the application).
enum class SpanStatus : int { kUnset = 0, kError = 2 };

using AttributeValue = std::variant<std::string, std::int64_t, bool>;

struct Attribute {
  std::string key;
  AttributeValue value;
};

struct SpanEvent {
  std::string name;
  std::uint64_t time_unix_ns = 0;
  std::vector<Attribute> attributes;
};

struct SpanLink {
  TraceId trace{};
  SpanId span{};
};

struct Span {
  TraceId trace{};
  SpanId id{};
  std::optional<SpanId> parent;
  std::string trace_state;  // the tracestate the span was started with, as received
  std::string name;
  SpanKind kind = SpanKind::kServer;
  std::uint64_t start_unix_ns = 0;
  std::uint64_t end_unix_ns = 0;
  std::vector<Attribute> attributes;
  std::vector<SpanEvent> events;
  std::vector<SpanLink> links;
  SpanStatus status = SpanStatus::kUnset;
  std::string status_message;

  void add(std::string key, AttributeValue value) { attributes.push_back({std::move(key), std::move(value)}); }
};

// One span as an OTLP/JSON Span object: ids in lower-case hex, times as decimal strings of nanoseconds.
std::string span_json(const Span& span);

// A request body for POST /v1/traces: one resource (service.name, service.version, service.instance.id) and one
// scope ("apigw") around `spans`, each a span_json() object.
std::string export_request_json(std::string_view service_name, std::string_view service_version,
                                std::string_view instance_id, const std::vector<std::string>& spans);

}  // namespace apigw::tracing
