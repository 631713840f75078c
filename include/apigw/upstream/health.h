// Endpoint health shared by every worker: the active prober's verdict and passive ejection after consecutive
// connect failures. One entry per (upstream, endpoint), kept across reloads while the endpoint stays configured,
// read lock-free on the request path.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "apigw/config/snapshot.h"

namespace apigw::upstream {

struct EndpointHealth {
  using Clock = std::chrono::steady_clock;

  EndpointHealth(std::string upstream_name, std::string endpoint_text)
      : upstream(std::move(upstream_name)), endpoint(std::move(endpoint_text)) {}

  const std::string upstream;
  const std::string endpoint;  // as configured
  std::atomic<bool> probe_healthy{true};         // the active prober's verdict (true while unchecked)
  std::atomic<std::int64_t> ejected_until{0};    // Clock ticks; passive ejection ends then
  std::atomic<unsigned> connect_failures{0};     // consecutive, from real traffic on any worker
  std::atomic<std::uint64_t> ejections{0};       // passive ejections so far

  bool ejected(Clock::time_point now) const {
    const std::int64_t until = ejected_until.load(std::memory_order_relaxed);
    return until != 0 && now.time_since_epoch().count() < until;
  }
  // May this endpoint get traffic? Costs a clock read only while an ejection is recorded.
  bool available() const {
    if (!probe_healthy.load(std::memory_order_relaxed)) return false;
    return ejected_until.load(std::memory_order_relaxed) == 0 || !ejected(Clock::now());
  }
  // Real traffic could not connect; returns true when this failure ejected the endpoint. Without `may_eject`
  // (no other endpoint is available) the failure is only counted.
  bool record_connect_failure(const config::PassiveHealthConfig& passive, bool may_eject);
  void record_connect_success() {
    if (connect_failures.load(std::memory_order_relaxed) != 0) connect_failures.store(0, std::memory_order_relaxed);
  }
};

using EndpointHealthPtr = std::shared_ptr<EndpointHealth>;

class HealthTable {
 public:
  // The entries of `upstream`'s endpoints, index for index, created on first use.
  std::vector<EndpointHealthPtr> entries(const config::Upstream& upstream);
  // Forgets endpoints `snapshot` no longer names (pools of older snapshots keep theirs alive).
  void retain(const config::Snapshot& snapshot);
  std::vector<EndpointHealthPtr> all() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, EndpointHealthPtr> entries_;
};

}  // namespace apigw::upstream
