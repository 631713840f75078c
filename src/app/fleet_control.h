// The instance's side of fleet control, on the main loop: which state of the fleet it serves (from Redis, else its
// state file, else the YAML alone), when it switches to the next one (at the change's effective_at, by this
// host's clock, or at once when it hears of it later), the state file, the heartbeat, `/control` and the
// apigw_control_* metrics. Switching the workers is the owner's (app::Control): asked through `request_switch`,
// it calls build() when no other switch is in progress and switched() once every worker serves the result.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "apigw/config/snapshot.h"
#include "apigw/core/metrics.h"
#include "apigw/fleet/state.h"
#include "apigw/fleet/watcher.h"
#include "ramp_runner.h"

namespace apigw::app {

class FleetControl {
 public:
  // `count` gives this instance's per-side figures of a route, for guarded ramps.
  FleetControl(boost::asio::io_context& loop, std::function<void()> request_switch, CountFigures count);
  ~FleetControl();

  // Before the workers run: the snapshot to serve first. Reads Redis once (bounded by control.redis.timeout).
  config::SnapshotPtr start(const config::SnapshotPtr& baseline);
  // Starts watching the fleet's state (the workers serve).
  void run();
  // Draining: stops watching and removes the heartbeat.
  void stop();

  // A reload loaded `baseline`: what to serve with it (the overrides in force, while the fleet stays the same).
  config::SnapshotPtr on_reload(const config::SnapshotPtr& baseline);
  // Every worker serves the reload's snapshot, built by on_reload from `baseline`.
  void reloaded(const config::SnapshotPtr& baseline, std::uint64_t generation);

  // The snapshot of the state waiting to be applied, as `generation`; null when none waits.
  config::SnapshotPtr build(std::uint64_t generation);
  // Every worker serves what build() gave (at `at_ms`, Unix ms).
  void switched(std::int64_t at_ms, std::uint64_t generation);

  std::string view() const;  // the `/control` JSON
  const core::MetricsRegistry& metrics() const { return metrics_; }

 private:
  void on_state(const std::optional<fleet::State>& state);
  void on_failure(const fleet::Failure& failure);
  void want(fleet::State state);
  void schedule();  // the timer, to the first pending state's effective_at
  void start_watcher(const config::Snapshot& snapshot);
  config::SnapshotPtr overlay(const config::Snapshot& baseline, const fleet::Overrides& overrides,
                              std::uint64_t generation);
  void save_state_file();
  bool load_state_file(fleet::State& state);
  void count(const std::string& reason);
  fleet::Instance instance() const;

  boost::asio::io_context& loop_;
  std::function<void()> request_switch_;
  config::SnapshotPtr baseline_;  // the YAML's
  std::uint64_t generation_ = 0;  // served now
  std::unique_ptr<fleet::Watcher> watcher_;
  fleet::State applied_;               // what every worker serves (version 0: the YAML alone)
  std::string source_ = "yaml";        // where applied_ came from: "redis", "state_file" or "yaml"
  std::int64_t applied_at_ms_ = 0;     // 0: served since start
  std::vector<fleet::State> pending_;     // heard of, waiting for their effective_at (by version)
  std::optional<fleet::State> wanted_;    // due, waiting for a switch
  std::optional<fleet::State> building_;  // being switched to
  std::vector<std::string> dropped_;      // overrides the last overlay could not apply
  std::string last_error_;
  std::int64_t last_error_at_ms_ = 0;
  std::int64_t last_logged_ms_ = 0;
  bool failing_ = false;
  bool warned_missing_ = false;  // Redis holds no state while this instance serves one
  boost::asio::steady_timer timer_;  // to the first pending state's effective_at
  core::MetricsRegistry metrics_;
  core::Gauge& version_gauge_;
  core::Histogram& apply_delay_;
  RampRunner ramps_;  // after the metrics it writes
};

}  // namespace apigw::app
