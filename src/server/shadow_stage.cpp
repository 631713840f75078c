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

asio::awaitable<StageResult> ShadowStage::on_request(RequestContext& context) {
  context.shadow = plan(context);
  if (context.shadow) context.request_observer = context.shadow.get();
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
  context.shadow->audit(std::move(record));
  context.observers.add(context.shadow->primary_observer());
  co_return StageResult::kContinue;
}

}  // namespace apigw::server
