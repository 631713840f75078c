// The data plane as a whole: binds the listen address on every worker (SO_REUSEPORT), starts their threads with
// a snapshot, and drains them. Owned and driven by the main thread.
#pragma once

#include <memory>
#include <vector>

#include "apigw/config/snapshot.h"
#include "apigw/core/access_log.h"
#include "apigw/server/worker.h"

namespace apigw::server {

class Gateway {
 public:
  // Binds every worker's listener; throws std::runtime_error naming the address when binding fails.
  Gateway(const config::SnapshotPtr& snapshot, core::AccessLog& access_log);
  ~Gateway();

  void start();
  // Stops accepting and lets in-flight requests finish (bounded by server.drain_timeout), then returns.
  void drain_and_join();
  std::size_t worker_count() const { return workers_.size(); }

 private:
  config::SnapshotPtr snapshot_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

// The number of worker threads `server.workers` asks for (0 = one per core).
unsigned effective_workers(unsigned configured);

}  // namespace apigw::server
