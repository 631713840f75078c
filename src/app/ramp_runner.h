// Guarded ramps on one instance, on the main loop. Every check interval it reads the fleet's ramps; for the routes
// with one it adds what its workers counted per side since the last check to the fleet's figures in Redis; and
// the instance that holds the judge's lease (taken over when its holder stops renewing it) judges each running
// ramp over the figures since its step began: the next step, or the split back to 0 %, is written as an ordinary
// control change, so that every instance switches at one instant. It shows the ramps in /control and metrics.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "apigw/config/snapshot.h"
#include "apigw/core/metrics.h"
#include "apigw/fleet/ramp.h"
#include "apigw/fleet/store.h"

namespace apigw::app {

// How often the figures are published and the ramps judged: once per bucket of the fleet's figures.
inline constexpr auto kRampCheckInterval = std::chrono::milliseconds(fleet::kStatsBucketMs);

// Per route, each side's figures and the audit's, as counted so far by this instance's workers (cumulative).
using CountFigures = std::function<void(std::string_view route, fleet::SideFigures& route_side,
                                        fleet::SideFigures& split_side, fleet::AuditFigures& audit)>;

class RampRunner {
 public:
  RampRunner(boost::asio::io_context& loop, core::MetricsRegistry& metrics, CountFigures count);
  ~RampRunner();

  // Starts with `snapshot`'s control section (does nothing without one); stop() ends it.
  void start(const config::Snapshot& snapshot, std::string instance_id);
  void stop();

  // The ramps as last read, for /control.
  const std::vector<fleet::RampState>& ramps() const;
  bool judging() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Writes the control change that puts `route`'s split at `percent` (compare-and-set, retried when another change
// landed first); answers the new state, or the failure. Shared with `apigw ctl ramp`.
struct SplitChange {
  fleet::Failure failure;
  fleet::State state;
};
boost::asio::awaitable<SplitChange> write_split(fleet::Store& store, std::string route, std::string percent,
                                               std::chrono::milliseconds delay, std::string author,
                                               std::string why);

}  // namespace apigw::app
