// The split stage (see split_stage.h).
#include "split_stage.h"

#include <random>
#include <string>

#include "apigw/migration/affinity.h"

namespace apigw::server {

bool in_migration_share(RequestContext& context, std::uint32_t threshold) {
  const config::Snapshot& snapshot = *context.snapshot;
  if (!context.user.empty() && snapshot.beta_users.contains(context.user)) return true;
  if (!context.bucket) {
    const config::MigrationConfig& migration = snapshot.config.migration;
    const std::optional<std::string> key =
        migration::affinity_key(migration.affinity, context.user, context.request(), client_address(context));
    // Without a key the request has no user to keep on one side: a draw of its own.
    context.bucket =
        key ? migration::bucket_of(*key, migration.buckets)
            : std::uniform_int_distribution<std::uint32_t>(0, migration.buckets - 1)(context.worker.random());
  }
  return migration::in_share(*context.bucket, threshold);
}

boost::asio::awaitable<StageResult> SplitStage::on_request(RequestContext& context) {
  const config::SideTarget& split = *context.route->split;
  const bool moved = in_migration_share(context, split.threshold);
  if (moved) {
    context.serving = split.upstream;
    context.upstream = context.pool().upstream().config.name;
  }
  context.split_moved = moved;
  context.route_stats().migration().record_split(moved);
  co_return StageResult::kContinue;
}

}  // namespace apigw::server
