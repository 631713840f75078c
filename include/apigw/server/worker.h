// One worker thread: its own io_context, its own listening socket (SO_REUSEPORT), its client sessions and its
// upstream pools. Nothing here is shared with another worker except the immutable config snapshot.
#pragma once

#include <atomic>
#include <memory>
#include <thread>
#include <unordered_set>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "apigw/config/snapshot.h"
#include "apigw/core/access_log.h"
#include "apigw/upstream/upstream_pool.h"

namespace apigw::server {

class ClientSession;

class Worker {
 public:
  Worker(unsigned index, core::AccessLog& access_log);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Main thread, before start(): binds a listening socket on this worker's loop. Throws on failure.
  void listen(const boost::asio::ip::tcp::endpoint& endpoint);
  // Main thread: starts the thread with `snapshot`.
  void start(config::SnapshotPtr snapshot);
  // Any thread: stop accepting, let in-flight requests finish within the snapshot's drain_timeout, then stop.
  void drain();
  void join();

  // Worker thread only.
  unsigned index() const { return index_; }
  const config::SnapshotPtr& snapshot() const { return snapshot_; }
  upstream::UpstreamPool& pool(std::uint32_t upstream) { return *pools_[upstream]; }
  core::AccessLogBuffer& access_log() { return access_log_; }
  bool draining() const { return draining_; }
  void attach(ClientSession* session);
  void detach(ClientSession* session);

 private:
  boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor& acceptor);
  void schedule_sweep();
  void begin_drain();
  void finish_if_drained();

  unsigned index_;
  core::AccessLogBuffer access_log_;
  boost::asio::io_context context_{1};
  std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> acceptors_;
  boost::asio::steady_timer sweep_timer_{context_};
  boost::asio::steady_timer drain_timer_{context_};
  std::thread thread_;
  config::SnapshotPtr snapshot_;
  std::vector<upstream::UpstreamPoolPtr> pools_;  // by snapshot upstream index
  std::unordered_set<ClientSession*> sessions_;
  bool draining_ = false;
  bool drained_ = false;  // draining and no session left: nothing may schedule more work
};

}  // namespace apigw::server
