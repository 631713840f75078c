// One worker thread: its own io_context, its own listening socket (SO_REUSEPORT), its client sessions and its
// upstream pools. Nothing here is shared with another worker except the immutable config snapshot.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <memory>
#include <thread>
#include <unordered_set>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "apigw/auth/auth_stats.h"
#include "apigw/auth/authenticator.h"
#include "apigw/cache/response_cache.h"
#include "apigw/config/snapshot.h"
#include "apigw/core/access_log.h"
#include "apigw/core/metrics.h"
#include "apigw/limits/rate_limiter.h"
#include "apigw/limits/route_limits.h"
#include "apigw/migration/audit_sink.h"
#include "apigw/migration/shadow_dispatch.h"
#include "apigw/net/tls.h"
#include "apigw/server/request_stats.h"
#include "apigw/tracing/span_exporter.h"
#include "apigw/tracing/trace_context.h"
#include "apigw/upstream/health.h"
#include "apigw/upstream/upstream_pool.h"

namespace apigw::server {

class ClientSession;
class RequestPipeline;
class RequestStatePool;

// What one worker serves with: a snapshot, this worker's pools for its upstreams, its token authenticator and its
// response cache. A request holds the generation it started with, so all of these outlive a reload until it ends.
struct Generation {
  config::SnapshotPtr snapshot;
  std::vector<upstream::UpstreamPoolPtr> pools;        // by snapshot upstream index
  std::shared_ptr<auth::Authenticator> authenticator;  // null without an auth section
  std::shared_ptr<cache::ResponseCache> cache;         // null without a cache section
  std::shared_ptr<limits::RateLimiter> rate_limiter;   // null without a rate_limits section
  std::vector<std::vector<limits::PreparedLimit>> route_limits;  // by snapshot route index; empty: no limits
  std::vector<RouteStats*> route_stats;                // by snapshot route index; owned by the worker
  RouteStats* unrouted = nullptr;                      // requests no route answered
  std::shared_ptr<net::TlsServerContext> listener_tls;  // server.tls made usable; null for plain HTTP
};

// How a TLS listener's handshake with a client ended, as apigw_tls_listener_handshakes_total counts it.
enum class ListenerHandshake { kFull, kResumed, kFailed };
using GenerationPtr = std::shared_ptr<const Generation>;

// A listening socket bound and listening, opened by the main thread (so that failures are reported there) and
// handed to a worker.
struct ListenSocket {
  boost::asio::ip::tcp protocol = boost::asio::ip::tcp::v4();
  int fd = -1;
};
// Opens, binds (SO_REUSEPORT) and listens on `endpoint`; throws boost::system::system_error.
ListenSocket open_listen_socket(const boost::asio::ip::tcp::endpoint& endpoint);
// The local address of a listening socket handed over by the service manager (socket activation), or nullopt
// when `fd` is not a listening TCP socket.
std::optional<boost::asio::ip::tcp::endpoint> listening_address(int fd);

class Worker {
 public:
  Worker(unsigned index, core::AccessLog& access_log, upstream::HealthTable& health, migration::AuditSink& audit_sink,
         tracing::SpanExporter& spans);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Main thread, before start(): accepts on `socket` (the worker owns it from now on).
  void listen(ListenSocket socket);
  // Main thread: starts the thread with `snapshot`.
  void start(config::SnapshotPtr snapshot);
  // Any thread: serve new requests with `snapshot`; pools of upstreams whose definition is unchanged are kept,
  // others retire. With `listeners`, accepting moves to them and the old listeners close (their connections
  // stay). Calls `done` on the worker thread once applied.
  void apply(config::SnapshotPtr snapshot, std::vector<ListenSocket> listeners, std::function<void()> done);
  // Any thread: stop accepting, let in-flight requests finish within the snapshot's drain_timeout, then stop.
  void drain();
  void join();
  // Any thread: the worker's loop has ended (it drained).
  bool exited() const { return exited_.load(); }
  // Any thread: when the worker's loop last ran its 100 ms sweep (steady clock), for the service watchdog.
  std::chrono::steady_clock::time_point heartbeat() const {
    return std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(heartbeat_.load()));
  }
  // Any thread may render it; only the worker writes to it.
  const core::MetricsRegistry& metrics() const { return metrics_; }
  // Worker thread only: the way every request takes once its head is read (routing, stages, forwarder).
  RequestPipeline& pipeline() { return *pipeline_; }
  // Worker thread only: sends the migration shadow's copies, and counts them in flight.
  migration::ShadowDispatch& shadow_dispatch() { return *shadow_dispatch_; }
  // Any thread: where audit records go (shared by every worker).
  migration::AuditSink& audit_sink() { return audit_sink_; }
  // Any thread: where finished spans go (shared by every worker).
  tracing::SpanExporter& spans() { return spans_; }
  // Worker thread only: the ids of new traces and spans.
  tracing::IdGenerator& trace_ids() { return trace_ids_; }
  boost::asio::any_io_executor executor() { return context_.get_executor(); }

  // Worker thread only: the read buffers and parsers of the requests being read or served.
  RequestStatePool& request_states() { return *request_states_; }

  // Worker thread only: draws for requests that carry no affinity key.
  std::minstd_rand& random() { return random_; }

  // Worker thread only.
  unsigned index() const { return index_; }
  const config::SnapshotPtr& snapshot() const { return generation_->snapshot; }
  const GenerationPtr& generation() const { return generation_; }
  core::AccessLogBuffer& access_log() { return access_log_; }
  bool draining() const { return draining_; }
  // Drained: no session is left, and nothing may keep the loop alive (an idle pooled connection would).
  bool drained() const { return drained_; }
  const bool& draining_flag() const { return draining_; }
  // Draining, and idle keep-alive connections are being closed rather than waited on.
  bool idle_grace_over() const { return idle_grace_over_; }
  // Worker thread only: counts a TLS listener's handshake.
  void listener_handshake(ListenerHandshake result);
  void attach(ClientSession* session);
  void detach(ClientSession* session);

 private:
  boost::asio::awaitable<void> accept_loop(std::shared_ptr<boost::asio::ip::tcp::acceptor> acceptor);
  void serve(boost::asio::ip::tcp::socket socket);  // an accepted connection: its session, on this loop
  GenerationPtr make_generation(config::SnapshotPtr snapshot, const Generation* previous);
  std::shared_ptr<auth::Authenticator> make_authenticator(const config::Snapshot& snapshot,
                                                          const Generation* previous);
  std::shared_ptr<cache::ResponseCache> make_cache(const config::Snapshot& snapshot, const Generation* previous);
  std::shared_ptr<limits::RateLimiter> make_rate_limiter(const config::Snapshot& snapshot,
                                                         const Generation* previous);
  void accept_on(std::vector<ListenSocket> listeners);
  void schedule_sweep();
  void begin_drain();
  void finish_if_drained();

  unsigned index_;
  core::AccessLogBuffer access_log_;
  upstream::HealthTable& health_;
  core::MetricsRegistry metrics_;
  core::Gauge& client_connections_;
  migration::AuditSink& audit_sink_;
  tracing::SpanExporter& spans_;
  tracing::IdGenerator trace_ids_;
  core::Gauge& shadows_in_flight_;
  auth::AuthStats auth_stats_{metrics_};
  cache::CacheStats cache_stats_{metrics_};
  std::array<core::Counter*, 3> listener_handshakes_{};  // by ListenerHandshake, registered at first use
  std::map<std::string, std::unique_ptr<RouteStats>, std::less<>> route_stats_;
  std::map<std::string, std::unique_ptr<upstream::UpstreamStats>, std::less<>> upstream_stats_;
  std::atomic<bool> exited_{false};
  std::atomic<std::chrono::steady_clock::rep> heartbeat_{0};
  // One thread runs the loop, and only that thread touches the sockets and timers on it: other threads only post()
  // to it. So Asio locks its scheduler (for those posts) but not each socket's reactor state.
  boost::asio::io_context context_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  std::unique_ptr<migration::ShadowDispatch> shadow_dispatch_;
  std::unique_ptr<RequestPipeline> pipeline_;
  std::unique_ptr<RequestStatePool> request_states_;
  std::vector<ListenSocket> pending_listeners_;  // until start()
  std::vector<std::shared_ptr<boost::asio::ip::tcp::acceptor>> acceptors_;
  boost::asio::steady_timer sweep_timer_{context_};
  boost::asio::steady_timer drain_timer_{context_};
  boost::asio::steady_timer idle_grace_timer_{context_};
  std::thread thread_;
  GenerationPtr generation_;
  std::unordered_set<ClientSession*> sessions_;
  std::minstd_rand random_{std::random_device{}()};
  unsigned sweeps_ = 0;
  bool draining_ = false;
  bool idle_grace_over_ = false;
  bool drained_ = false;  // draining and no session left: nothing may schedule more work
};

}  // namespace apigw::server
