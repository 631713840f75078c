// The data plane as a whole: binds the listen address for every worker (SO_REUSEPORT), starts their threads
// with a snapshot, hands them new snapshots on reload, and drains them. Owned and driven by the main thread.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "apigw/config/snapshot.h"
#include "apigw/core/access_log.h"
#include "apigw/upstream/health.h"
#include "apigw/server/worker.h"

namespace apigw::server {

class Gateway {
 public:
  // Binds every worker's listener; throws std::runtime_error naming the address when binding fails.
  // `inherited` are listening sockets handed over by the service manager (socket activation): one bound to the
  // listen address is used instead of binding, so connections wait in its queue across a restart.
  // `audit_sink` takes the migration audit's records from every worker, `spans` their finished spans.
  Gateway(const config::SnapshotPtr& snapshot, core::AccessLog& access_log, upstream::HealthTable& health,
          migration::AuditSink& audit_sink, tracing::SpanExporter& spans, std::vector<int> inherited = {});
  ~Gateway();

  void start();
  // Main thread: every worker serves new requests with `snapshot` from now on; `applied` runs once all have
  // switched (on a worker thread). When the listen address changed, the new one is bound first; a bind failure
  // throws std::runtime_error and changes nothing. A changed worker count needs a restart: the count stays.
  void apply(const config::SnapshotPtr& snapshot, std::function<void()> applied);
  // Stops accepting and lets in-flight requests finish (bounded by server.drain_timeout), then returns.
  void drain_and_join();
  // drain_and_join in steps, for a caller that keeps its own loop running meanwhile.
  void drain();
  bool exited() const;
  void join();
  std::size_t worker_count() const { return workers_.size(); }
  const std::vector<std::unique_ptr<Worker>>& workers() const { return workers_; }

 private:
  std::vector<ListenSocket> bind_all(const config::Endpoint& listen) const;

  config::SnapshotPtr snapshot_;
  std::vector<int> inherited_;  // owned by the service manager's socket unit; never closed here
  std::size_t count_ = 0;
  std::vector<std::unique_ptr<Worker>> workers_;
};

// The number of worker threads `server.workers` asks for (0 = one per core).
unsigned effective_workers(unsigned configured);

}  // namespace apigw::server
