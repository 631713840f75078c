// The invalidation stream: a Redis Stream (cache.events.stream) whose entries name tags and keys to invalidate,
// read by the fleet as one consumer group (cache.events.group), so that each event is handled by one instance.
// The monolith, or a change-data-capture job, only XADDs:
//
//   XADD apigw:cache-events MAXLEN ~ 100000 * tags "product:7 user:42"
//   XADD apigw:cache-events * keys "apigw:v2:users:3f79..."
//
// Each instance is a consumer named <host>:<pid>. It reads new entries (XREADGROUP ... >) every `poll` (at once
// again while it gets full batches), invalidates what each names in both pools, then acknowledges it (XACK). An
// entry it cannot handle (the primary Memcached failing) stays pending; so do those of an instance that died
// before acknowledging: every claim_after/2, XAUTOCLAIM takes over entries pending longer than claim_after, from
// any consumer, this one included, and they are handled again (handling twice does no harm: a tag gets another
// new version). An entry that names nothing valid is acknowledged, counted as malformed and logged. The group is
// created at the end of the stream (MKSTREAM) when missing. Consumers gone for an hour with nothing pending are
// removed from the group.
//
// Main loop only.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "apigw/cache/cache_tags.h"
#include "apigw/cache/response_cache.h"
#include "apigw/config/snapshot.h"
#include "apigw/core/metrics.h"
#include "apigw/redis/reply.h"

namespace apigw::cache {

// One entry of a stream reply.
struct StreamEntry {
  std::string id;
  std::vector<std::pair<std::string, std::string>> fields;
};

// The entries of an XREADGROUP reply for one stream ([[stream, [[id, [field, value, ...]], ...]]]) or of the
// entry list of an XAUTOCLAIM reply ([next, [[id, [...]], ...], [deleted ids]]); entries whose fields were
// trimmed away (nil) come with none. nullopt when the reply is not of that shape.
std::optional<std::vector<StreamEntry>> read_group_entries(const redis::Reply& reply);
std::optional<std::vector<StreamEntry>> autoclaim_entries(const redis::Reply& reply, std::string& next);

struct EventStats {
  explicit EventStats(core::MetricsRegistry& registry);
  core::Counter& handled;
  core::Counter& failed;     // the invalidation failed: the entry stays pending, to be handled again
  core::Counter& malformed;  // acknowledged without effect
  core::Counter& claimed;    // taken over after claim_after (from a dead consumer, or this one's failures)
  core::Counter& redis_errors;
  core::Gauge& lag;      // entries of the stream not yet read by the group (XINFO GROUPS lag)
  core::Gauge& pending;  // read and not yet acknowledged, by any consumer of the group
};

class InvalidationEvents {
 public:
  // `cache` gives the pools to invalidate in (the admin loop's client of the running config's).
  InvalidationEvents(boost::asio::any_io_executor executor, core::MetricsRegistry& registry,
                     std::function<std::shared_ptr<ResponseCache>()> cache);
  ~InvalidationEvents();
  InvalidationEvents(const InvalidationEvents&) = delete;
  InvalidationEvents& operator=(const InvalidationEvents&) = delete;

  // Consumes as `snapshot`'s cache.events says: starts, restarts with new settings, or stops.
  void update(const config::SnapshotPtr& snapshot);
  void stop();
  // This instance's consumer name.
  const std::string& consumer() const { return consumer_; }

  struct Session;  // one run of the consumer, with its settings and Redis client

 private:
  boost::asio::any_io_executor executor_;
  EventStats stats_;
  std::function<std::shared_ptr<ResponseCache>()> cache_;
  std::string consumer_;
  std::shared_ptr<Session> session_;
  config::CacheEventsConfig running_;
  std::vector<config::ResolvedEndpoint> running_nodes_;
};

}  // namespace apigw::cache
