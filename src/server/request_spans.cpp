// A request's spans (see request_spans.h).
#include "request_spans.h"

#include <fmt/format.h>

namespace apigw::server {
namespace {

using Clock = core::Deadline::Clock;

std::int64_t status_of(const RequestContext& context) { return static_cast<std::int64_t>(context.status); }

}  // namespace

void export_request_spans(const RequestContext& context) {
  const tracing::RequestTrace& trace = context.trace;
  // Steady times, placed on the wall clock as of now.
  const Clock::time_point now = Clock::now();
  const auto wall_now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  const auto unix_ns = [&](Clock::time_point at) {
    return static_cast<std::uint64_t>(wall_now -
                                      std::chrono::duration_cast<std::chrono::nanoseconds>(now - at).count());
  };
  const bool failed = context.status >= 500;

  std::string name =
      context.route ? fmt::format("{} {}", context.method, context.route->name) : std::string(context.method);
  tracing::Span server =
      tracing::span_in(trace, trace.server, trace.parent, tracing::SpanKind::kServer, std::move(name));
  server.start_unix_ns = unix_ns(context.start);
  server.end_unix_ns = unix_ns(now);
  server.add("http.request.method", std::string(context.method));
  server.add("url.path", std::string(context.path()));
  server.add("http.response.status_code", status_of(context));
  server.add("client.address", context.peer.address);
  server.add("apigw.request_id", std::string(context.request_id.view()));
  if (context.route) {
    server.add("apigw.route", context.route->name);
    server.add("apigw.upstream", std::string(context.upstream));
  }
  if (!context.cache.status.empty()) server.add("apigw.cache", std::string(context.cache.status));
  if (context.split_moved) server.add("apigw.split.moved", *context.split_moved);
  if (!context.error.empty()) server.add("apigw.error", std::string(context.error));
  for (std::size_t i = 0; i < context.stage_mark_count; ++i) {
    server.events.push_back({std::string(context.stage_marks[i].stage), unix_ns(context.stage_marks[i].done), {}});
  }
  if (failed) server.status = tracing::SpanStatus::kError;
  tracing::SpanExporter& exporter = context.worker.spans();
  exporter.export_span(server);

  if (context.forward_start == Clock::time_point{}) return;  // answered without an upstream exchange
  tracing::Span upstream = tracing::span_in(trace, trace.upstream, trace.server, tracing::SpanKind::kClient,
                                            fmt::format("{} {}", context.method, context.upstream));
  upstream.start_unix_ns = unix_ns(context.forward_start);
  upstream.end_unix_ns = unix_ns(context.forward_end == Clock::time_point{} ? now : context.forward_end);
  upstream.add("http.request.method", std::string(context.method));
  upstream.add("apigw.upstream", std::string(context.upstream));
  if (!context.endpoint.empty()) upstream.add("server.address", std::string(context.endpoint));
  if (context.error.empty()) {
    upstream.add("http.response.status_code", status_of(context));
  } else {
    upstream.add("apigw.error", std::string(context.error));
  }
  if (failed) upstream.status = tracing::SpanStatus::kError;
  exporter.export_span(upstream);
}

}  // namespace apigw::server
