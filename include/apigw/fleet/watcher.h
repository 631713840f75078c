// An instance's link to its fleet's state in Redis, on the main loop: it reads the state, waits for the next
// change by a blocking read of the history (so a change arrives at once; the wait ends after `poll` at most and
// the state is read again), and writes the instance's heartbeat every `poll`. A failed round is reported and
// retried after a backoff (100 ms doubling to `poll`). What to do with a state (when to apply it) is the owner's.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "apigw/config/config.h"
#include "apigw/config/snapshot.h"
#include "apigw/fleet/state.h"
#include "apigw/fleet/store.h"

namespace apigw::fleet {

struct WatcherOptions {
  config::ControlConfig control;
  std::vector<config::ResolvedEndpoint> nodes;  // control.redis.nodes, resolved
  Instance self;  // id, host and pid; the rest comes with report()
};

struct WatcherCallbacks {
  // Each successful read: the state, or nullopt when none has been written.
  std::function<void(const std::optional<State>&)> on_state;
  // Each failed round, and each failed heartbeat.
  std::function<void(const Failure&)> on_failure;
};

class Watcher {
 public:
  Watcher(boost::asio::any_io_executor executor, WatcherOptions options, WatcherCallbacks callbacks);
  ~Watcher();
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  void start();
  // Stops reading; removes this instance's heartbeat (in the background, bounded by the timeout) and closes the
  // connections.
  void stop();
  // What this instance serves now: sent as its heartbeat at once, then every poll.
  void report(const Instance& self);

  const config::ControlConfig& settings() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// The state Redis holds now, read once (blocking the calling thread, bounded by the timeout): at start-up, before
// the workers run.
ReadResult read_once(const config::ControlConfig& control, const std::vector<config::ResolvedEndpoint>& nodes);

// Unix time in milliseconds by this host's clock.
std::int64_t unix_ms();

}  // namespace apigw::fleet
