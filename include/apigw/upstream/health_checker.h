// Active health checks: every `health_check.interval`, GET `health_check.path` on each endpoint of each upstream
// that configures a check, on the main thread's loop (one prober per process, not per worker). A 2xx or 3xx
// answer within `timeout` is a success; `unhealthy_after` failures in a row take the endpoint out of every
// worker's rotation, `healthy_after` successes bring it back. Verdicts go to the shared HealthTable.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "apigw/config/snapshot.h"
#include "apigw/upstream/health.h"

namespace apigw::upstream {

class HealthChecker {
 public:
  HealthChecker(boost::asio::any_io_executor executor, HealthTable& table);
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // Probes what `snapshot` configures from now on; probes of the previous snapshot stop. Endpoints keep their
  // verdict across reloads; an upstream without a check counts as healthy.
  void update(const config::SnapshotPtr& snapshot);
  void stop();

  // Probes run so far and probes that failed, for metrics.
  std::uint64_t probes() const { return probes_; }
  std::uint64_t failures() const { return failures_; }

 private:
  struct Target;
  boost::asio::awaitable<void> probe_loop(std::shared_ptr<Target> target);
  boost::asio::awaitable<bool> probe_once(Target& target);

  boost::asio::any_io_executor executor_;
  HealthTable& table_;
  std::vector<std::shared_ptr<Target>> targets_;
  std::uint64_t probes_ = 0;
  std::uint64_t failures_ = 0;
};

}  // namespace apigw::upstream
