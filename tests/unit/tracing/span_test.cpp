// Tests for the OTLP/JSON encoding of spans: read back with Boost.JSON, field by field as a collector reads them.
#include "apigw/tracing/span.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace apigw::tracing {
namespace {
namespace json = boost::json;

Span sample_span() {
  Span span;
  span.trace = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")->trace;
  span.id = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01")->parent;
  span.parent = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")->parent;
  span.trace_state = "rojo=1";
  span.name = "GET users \"quoted\"";
  span.start_unix_ns = 1'700'000'000'000'000'001;
  span.end_unix_ns = 1'700'000'000'002'000'001;
  span.add("http.request.method", std::string("GET"));
  span.add("http.response.status_code", std::int64_t{503});
  span.add("apigw.cache.hit", false);
  span.events.push_back({"auth", 1'700'000'000'001'000'000, {{"apigw.auth.decision", std::string("authenticated")}}});
  span.links.push_back({span.trace, span.id});
  span.status = SpanStatus::kError;
  span.status_message = "upstream timeout";
  return span;
}

TEST(SpanJson, CarriesEveryFieldAsOtlpJsonWritesIt) {
  const json::object span = json::parse(span_json(sample_span())).as_object();
  EXPECT_EQ(span.at("traceId"), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(span.at("spanId"), "1111111111111111");
  EXPECT_EQ(span.at("parentSpanId"), "00f067aa0ba902b7");
  EXPECT_EQ(span.at("traceState"), "rojo=1");
  EXPECT_EQ(span.at("name"), "GET users \"quoted\"");
  EXPECT_EQ(span.at("kind"), 2);
  EXPECT_EQ(span.at("startTimeUnixNano"), "1700000000000000001");
  EXPECT_EQ(span.at("endTimeUnixNano"), "1700000000002000001");
  const json::array& attributes = span.at("attributes").as_array();
  ASSERT_EQ(attributes.size(), 3u);
  EXPECT_EQ(attributes[0].at("key"), "http.request.method");
  EXPECT_EQ(attributes[0].at("value").at("stringValue"), "GET");
  EXPECT_EQ(attributes[1].at("value").at("intValue"), "503");
  EXPECT_EQ(attributes[2].at("value").at("boolValue"), false);
  const json::object& event = span.at("events").as_array().at(0).as_object();
  EXPECT_EQ(event.at("name"), "auth");
  EXPECT_EQ(event.at("timeUnixNano"), "1700000000001000000");
  EXPECT_EQ(event.at("attributes").as_array().at(0).at("value").at("stringValue"), "authenticated");
  EXPECT_EQ(span.at("links").as_array().at(0).at("spanId"), "1111111111111111");
  EXPECT_EQ(span.at("status").at("code"), 2);
  EXPECT_EQ(span.at("status").at("message"), "upstream timeout");
}

TEST(SpanJson, ARootSpanHasNoParentAndUnsetStatusNoMessage) {
  Span span = sample_span();
  span.parent.reset();
  span.trace_state.clear();
  span.events.clear();
  span.links.clear();
  span.status = SpanStatus::kUnset;
  span.status_message.clear();
  const json::object object = json::parse(span_json(span)).as_object();
  EXPECT_FALSE(object.contains("parentSpanId"));
  EXPECT_FALSE(object.contains("traceState"));
  EXPECT_FALSE(object.contains("events"));
  EXPECT_FALSE(object.contains("links"));
  EXPECT_EQ(object.at("status").as_object().size(), 1u);
}

TEST(ExportRequest, WrapsSpansInOneResourceAndScope) {
  const std::string first = span_json(sample_span());
  const json::value request = json::parse(export_request_json("apigw", "0.1.0", "host-1:8080", {first, first}));
  const json::object& resource_spans = request.at("resourceSpans").as_array().at(0).as_object();
  const json::array& resource = resource_spans.at("resource").at("attributes").as_array();
  EXPECT_EQ(resource.at(0).at("key"), "service.name");
  EXPECT_EQ(resource.at(0).at("value").at("stringValue"), "apigw");
  EXPECT_EQ(resource.at(2).at("value").at("stringValue"), "host-1:8080");
  const json::object& scope = resource_spans.at("scopeSpans").as_array().at(0).as_object();
  EXPECT_EQ(scope.at("scope").at("name"), "apigw");
  EXPECT_EQ(scope.at("spans").as_array().size(), 2u);
  // No spans still makes a valid request.
  EXPECT_NO_THROW(json::parse(export_request_json("apigw", "0.1.0", "x", {})));
}

}  // namespace
}  // namespace apigw::tracing
