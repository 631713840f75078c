// A request's metrics and access log line (see request_log.h).
#include "request_log.h"

#include "request_spans.h"
#include "token_redaction.h"

namespace apigw::server {

void log_request(const RequestContext& context) {
  if (context.spans) export_request_spans(context);
  const auto elapsed = core::Deadline::Clock::now() - context.start;
  if (context.generation) {
    RouteStats* stats = context.route ? context.generation->route_stats[context.route_index]
                                      : context.generation->unrouted;
    stats->record(context.method, context.status, elapsed);
    // Each side of a split, answered how and how fast: what a guarded ramp compares.
    if (context.route && context.split_moved) {
      stats->migration().record_outcome(*context.split_moved, context.status, !context.error.empty(), elapsed);
    }
  }
  core::AccessLogBuffer& access_log = context.worker.access_log();
  if (!access_log.enabled()) return;
  core::AccessRecord record;
  record.request_id = context.request_id;
  record.client = context.peer.address;
  record.method = context.method;
  // A token sent in the query string stays out of the log, whichever route the request took.
  const std::string redacted = redact_tokens(context.snapshot, context.target);
  record.path = redacted.empty() ? context.target : std::string_view(redacted);
  record.status = context.status;
  record.bytes = context.bytes;
  record.duration = std::chrono::duration_cast<std::chrono::microseconds>(elapsed);
  record.route = context.route ? std::string_view(context.route->name) : std::string_view();
  record.endpoint = context.endpoint;
  record.user = context.user;
  record.token = context.token_id;
  record.error = context.error;
  std::string trace;
  if (context.trace.active) {
    trace = tracing::to_hex(context.trace.trace);
    record.trace = trace;
  }
  access_log.record(record);
}

}  // namespace apigw::server
