// The shadow and audit stages (see shadow_stage.h).
#include "shadow_stage.h"

#include <chrono>
#include <random>

#include "apigw/http/query.h"
#include "apigw/migration/shadow_dispatch.h"
#include "apigw/migration/shadow_policy.h"
#include "apigw/proxy/forwarder.h"
#include "token_redaction.h"
#include "split_stage.h"

namespace apigw::server {
namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

namespace {

// The copy's span: a child of the request's, linked to the primary exchange's.
migration::ShadowTrace shadow_trace(RequestContext& context, const upstream::UpstreamPool& pool) {
  const tracing::RequestTrace& trace = context.trace;
  migration::ShadowTrace shadow;
  const tracing::SpanId id = context.worker.trace_ids().span_id();
  shadow.primary_headers = trace.headers;
  shadow.headers = tracing::trace_headers(trace, id);
  if (!context.spans) return shadow;
  tracing::Span& span = shadow.span;
  span = tracing::span_in(trace, id, trace.server, tracing::SpanKind::kClient, "shadow " + pool.upstream().config.name);
  span.links.push_back({trace.trace, trace.upstream});
  span.add("http.request.method", std::string(context.method));
  span.add("apigw.upstream", pool.upstream().config.name);
  span.add("apigw.shadow", true);
  span.add("apigw.request_id", std::string(context.request_id.view()));
  shadow.exporter = &context.worker.spans();
  return shadow;
}

}  // namespace

asio::awaitable<StageResult> ShadowStage::on_request(RequestContext& context) {
  context.shadow = plan(context);
  if (context.shadow) {
    context.request_observer = context.shadow.get();
    if (context.trace.active) {
      context.shadow->trace(shadow_trace(context, *context.generation->pools[context.route->shadow->upstream]));
    }
  }
  co_return StageResult::kContinue;
}

void ShadowStage::on_response(RequestContext& context, const proxy::ForwardResult& result) {
  if (context.shadow) context.shadow->primary_finished(result);
}

std::shared_ptr<migration::ShadowCopy> ShadowStage::plan(RequestContext& context) {
  const config::SideTarget& target = *context.route->shadow;
  // A request the split sent to the shadow's side already is not sent there twice.
  if (target.upstream == context.serving) return nullptr;
  const config::MigrationConfig& migration = context.snapshot->config.migration;
  const auto& request = context.request();
  // A copy is never copied again, whatever loop the two sides' routes make.
  if (request.find(migration.shadow.header) != request.end()) return nullptr;
  if (!in_migration_share(context, target.threshold)) return nullptr;
  migration::RouteMigrationStats& stats = context.route_stats().migration();
  if (migration::shadow_ignored(context.snapshot->shadow_ignore, context.method, context.path())) {
    stats.shadow_ignored();
    return nullptr;
  }
  const auto length = context.parser().content_length();
  if (length && *length > migration.shadow.max_body_bytes) {
    stats.shadow_dropped(migration::ShadowDrop::kBodyTooLarge);
    return nullptr;
  }
  return std::make_shared<migration::ShadowCopy>(migration::ShadowCopy::Params{
      context.worker.shadow_dispatch(), context.generation->snapshot, context.generation->pools[target.upstream],
      stats, length.has_value() || context.parser().chunked(), proxy::is_idempotent(request.method()),
      request.method() == bhttp::verb::head});
}

asio::awaitable<StageResult> AuditStage::on_request(RequestContext& context) {
  if (!context.shadow) co_return StageResult::kContinue;
  const config::MigrationConfig& migration = context.snapshot->config.migration;
  const unsigned sample = migration.audit.sample;
  const bool audited =
      sample > 0 && (sample >= 100 || std::uniform_int_distribution<unsigned>(0, 99)(context.worker.random()) < sample);
  if (!audited) co_return StageResult::kContinue;
  migration::AuditRecord record;
  record.time = std::chrono::system_clock::now();
  record.request_id = context.request_id;
  record.route = context.route->name;
  record.method = context.method;
  record.path = context.path();
  record.query = context.checked.target.query;
  if (std::string redacted = redact_tokens(context.snapshot, "?" + record.query); !redacted.empty()) {
    record.query = redacted.substr(1);
  }
  record.bucket = context.bucket;
  record.primary.upstream = context.upstream;
  if (context.trace.active) {
    record.trace_id = tracing::to_hex(context.trace.trace);
    record.primary.span_id = tracing::to_hex(context.trace.upstream);
  }
  context.shadow->audit(std::move(record));
  context.observers.add(context.shadow->primary_observer());
  co_return StageResult::kContinue;
}

}  // namespace apigw::server
