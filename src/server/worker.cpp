// A worker thread and its loop (see worker.h): accepting, the deadline sweeper, draining.
#include "apigw/server/worker.h"

#include <sys/socket.h>

#include <unistd.h>

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "apigw/net/no_throw.h"
#include "apigw/redis/client_options.h"
#include "apigw/server/client_session.h"
#include "request_state.h"
#include "pipeline.h"

namespace apigw::server {
namespace asio = boost::asio;

namespace {
using net::kNoThrow;
// How often deadlines are checked: the precision of every client-side timeout.
constexpr auto kSweepInterval = std::chrono::milliseconds(100);
// The request states a worker keeps spare are trimmed to what the last second needed.
constexpr unsigned kSweepsPerTrim = 10;
// When a drain starts, idle keep-alive connections stay open this long (at most drain_timeout): a request that
// was already on its way is answered, with Connection: close, instead of meeting a closed connection.
constexpr auto kDrainIdleGrace = std::chrono::milliseconds(1000);
constexpr int kListenBacklog = 4096;
}  // namespace

ListenSocket open_listen_socket(const asio::ip::tcp::endpoint& endpoint) {
  // Opened on a throw-away context: only the descriptor is kept, and the worker adopts it on its own loop.
  asio::io_context scratch;
  asio::ip::tcp::acceptor acceptor(scratch);
  acceptor.open(endpoint.protocol());
  acceptor.set_option(asio::socket_base::reuse_address(true));
  // Every worker binds the same address; the kernel spreads new connections across them.
  const int one = 1;
  if (::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    throw boost::system::system_error(errno, boost::system::system_category(), "SO_REUSEPORT");
  }
  acceptor.bind(endpoint);
  acceptor.listen(kListenBacklog);
  return ListenSocket{endpoint.protocol(), acceptor.release()};
}

std::optional<asio::ip::tcp::endpoint> listening_address(int fd) {
  int listening = 0;
  socklen_t size = sizeof listening;
  if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) != 0 || !listening) return std::nullopt;
  asio::ip::tcp::endpoint endpoint;
  socklen_t length = static_cast<socklen_t>(endpoint.capacity());
  if (::getsockname(fd, endpoint.data(), &length) != 0) return std::nullopt;
  endpoint.resize(length);
  const int family = endpoint.data()->sa_family;
  if (family != AF_INET && family != AF_INET6) return std::nullopt;
  return endpoint;
}

Worker::Worker(unsigned index, core::AccessLog& access_log, upstream::HealthTable& health,
               migration::AuditSink& audit_sink, tracing::SpanExporter& spans)
    : index_(index),
      access_log_(access_log),
      health_(health),
      client_connections_(metrics_.gauge("apigw_client_connections", "Open client connections")),
      audit_sink_(audit_sink),
      spans_(spans),
      shadows_in_flight_(metrics_.gauge("apigw_migration_shadows_in_flight",
                                        "Copies of requests on their way to the shadow side")),
      shadow_dispatch_(std::make_unique<migration::ShadowDispatch>(context_.get_executor(), audit_sink_,
                                                                   shadows_in_flight_, drained_)),
      pipeline_(std::make_unique<RequestPipeline>(auth_stats_)),
      request_states_(std::make_unique<RequestStatePool>()) {
  heartbeat_.store(std::chrono::steady_clock::now().time_since_epoch().count());
}


Worker::~Worker() {
  join();
  for (const ListenSocket& socket : pending_listeners_) ::close(socket.fd);
}

void Worker::listen(ListenSocket socket) { pending_listeners_.push_back(socket); }

void Worker::listener_handshake(ListenerHandshake result) {
  static constexpr std::array<const char*, 3> kResults{"full", "resumed", "failed"};
  const auto index = static_cast<std::size_t>(result);
  core::Counter*& counter = listener_handshakes_[index];
  if (counter == nullptr) {
    counter = &metrics_.counter("apigw_tls_listener_handshakes_total", "TLS handshakes with clients by result",
                                {{"listener", "server"}, {"result", kResults[index]}});
  }
  counter->add();
}

GenerationPtr Worker::make_generation(config::SnapshotPtr snapshot, const Generation* previous) {
  auto generation = std::make_shared<Generation>();
  for (const config::Upstream& upstream : snapshot->upstreams) {
    upstream::UpstreamPoolPtr pool;
    if (previous) {
      for (std::size_t i = 0; i < previous->snapshot->upstreams.size() && !pool; ++i) {
        if (config::same_upstream(previous->snapshot->upstreams[i], upstream)) pool = previous->pools[i];
      }
    }
    if (!pool) {
      auto& stats = upstream_stats_[upstream.config.name];
      if (!stats) stats = std::make_unique<upstream::UpstreamStats>(metrics_, upstream.config.name);
      pool = std::make_shared<upstream::UpstreamPool>(context_.get_executor(), upstream, health_.entries(upstream),
                                                      *stats);
    }
    generation->pools.push_back(std::move(pool));
  }
  const auto route_stats = [this](std::string_view name) {
    auto found = route_stats_.find(name);
    if (found == route_stats_.end()) {
      found = route_stats_.emplace(std::string(name), std::make_unique<RouteStats>(metrics_, std::string(name))).first;
    }
    return found->second.get();
  };
  for (const config::Route& route : snapshot->routes) generation->route_stats.push_back(route_stats(route.name));
  generation->authenticator = make_authenticator(*snapshot, previous);
  generation->cache = make_cache(*snapshot, previous);
  generation->rate_limiter = make_rate_limiter(*snapshot, previous);
  if (generation->rate_limiter) {
    for (const config::RouteConfig& route : snapshot->config.routes) {
      generation->route_limits.push_back(limits::prepare_limits(route, metrics_));
    }
  }
  generation->unrouted = route_stats(kNoRoute);
  // Built at load, so this finds it (and the workers share it: a session ticket from one is good at another).
  if (snapshot->config.server.tls) generation->listener_tls = net::TlsServerContext::require(*snapshot->config.server.tls);
  if (previous) {
    // Pools the new generation does not use stop taking connections back; requests still on them finish.
    for (const upstream::UpstreamPoolPtr& old : previous->pools) {
      if (std::find(generation->pools.begin(), generation->pools.end(), old) == generation->pools.end()) {
        old->retire();
      }
    }
  }
  generation->snapshot = std::move(snapshot);
  return generation;
}

std::shared_ptr<auth::Authenticator> Worker::make_authenticator(const config::Snapshot& snapshot,
                                                                const Generation* previous) {
  const config::AuthConfig& auth = snapshot.config.auth;
  if (!auth.enabled) return nullptr;
  // An unchanged auth section keeps its connections and its cache of recent tokens.
  if (previous && previous->authenticator && previous->snapshot->config.auth == auth &&
      previous->snapshot->redis_nodes == snapshot.redis_nodes) {
    return previous->authenticator;
  }
  redis::ClientOptions options = redis::client_options(auth.redis, snapshot.redis_nodes);
  redis::ClientMetrics client_metrics;
  client_metrics.moved = &metrics_.counter("apigw_redis_redirects_total",
                                           "Redis Cluster redirections followed, by kind", {{"kind", "moved"}});
  client_metrics.ask = &metrics_.counter("apigw_redis_redirects_total", "", {{"kind", "ask"}});
  client_metrics.map_refreshes = &metrics_.counter("apigw_redis_cluster_map_refreshes_total",
                                                   "Redis Cluster slot maps fetched (CLUSTER SLOTS)");
  auth::LookupSettings settings;
  settings.key_template = auth.key;
  settings.user_id = auth.user_id;
  settings.ttl = std::chrono::duration_cast<std::chrono::milliseconds>(auth.cache.ttl);
  settings.negative_ttl = std::chrono::duration_cast<std::chrono::milliseconds>(auth.cache.negative_ttl);
  settings.max_entries = auth.cache.max_entries;
  auto client = std::make_unique<redis::Client>(context_.get_executor(), std::move(options), client_metrics);
  return std::make_shared<auth::Authenticator>(context_.get_executor(), std::move(settings), std::move(client),
                                               &metrics_);
}

std::shared_ptr<limits::RateLimiter> Worker::make_rate_limiter(const config::Snapshot& snapshot,
                                                               const Generation* previous) {
  const config::RateLimitsConfig& limits = snapshot.config.rate_limits;
  if (!limits.enabled) return nullptr;
  // An unchanged Redis keeps its connections and the budgets this worker holds (a changed limit keeps its keys'
  // buckets in Redis too: only the shape of the next grants changes).
  if (previous && previous->rate_limiter && previous->snapshot->config.rate_limits.redis == limits.redis &&
      previous->snapshot->rate_limit_redis_nodes == snapshot.rate_limit_redis_nodes) {
    return previous->rate_limiter;
  }
  auto client = std::make_unique<redis::Client>(
      context_.get_executor(), redis::client_options(limits.redis, snapshot.rate_limit_redis_nodes));
  return std::make_shared<limits::RateLimiter>(context_.get_executor(), std::move(client), &metrics_);
}

std::shared_ptr<cache::ResponseCache> Worker::make_cache(const config::Snapshot& snapshot,
                                                         const Generation* previous) {
  const config::CacheConfig& cache = snapshot.config.cache;
  if (!cache.enabled) return nullptr;
  // An unchanged cache section keeps its connections, its double-write queue and the fills in flight.
  if (previous && previous->cache && previous->snapshot->config.cache == cache &&
      previous->snapshot->cache_primary == snapshot.cache_primary &&
      previous->snapshot->cache_secondary == snapshot.cache_secondary) {
    return previous->cache;
  }
  return std::make_shared<cache::ResponseCache>(context_.get_executor(), cache,
                                                cache::memcache_servers(snapshot.cache_primary),
                                                cache::memcache_servers(snapshot.cache_secondary), cache_stats_);
}

void Worker::accept_on(std::vector<ListenSocket> listeners) {
  for (auto& acceptor : acceptors_) {
    boost::system::error_code ignored;
    acceptor->close(ignored);
  }
  acceptors_.clear();
  for (const ListenSocket& socket : listeners) {
    auto acceptor = std::make_shared<asio::ip::tcp::acceptor>(context_);
    boost::system::error_code error;
    acceptor->assign(socket.protocol, socket.fd, error);
    if (error) {
      spdlog::error("worker {}: cannot accept on a listening socket: {}", index_, error.message());
      ::close(socket.fd);
      continue;
    }
    acceptors_.push_back(acceptor);
    if (!draining_) asio::co_spawn(context_, accept_loop(std::move(acceptor)), asio::detached);
  }
  if (draining_) {
    boost::system::error_code ignored;
    for (auto& acceptor : acceptors_) acceptor->close(ignored);
  }
}

void Worker::start(config::SnapshotPtr snapshot) {
  generation_ = make_generation(std::move(snapshot), nullptr);
  accept_on(std::move(pending_listeners_));
  pending_listeners_.clear();
  schedule_sweep();
  thread_ = std::thread([this] {
    try {
      context_.run();
    } catch (const std::exception& error) {
      spdlog::critical("worker {} stopped on an unexpected error: {}", index_, error.what());
      std::abort();
    }
    exited_.store(true);
  });
}

void Worker::apply(config::SnapshotPtr snapshot, std::vector<ListenSocket> listeners, std::function<void()> done) {
  asio::post(context_, [this, snapshot = std::move(snapshot), listeners = std::move(listeners),
                        done = std::move(done)]() mutable {
    generation_ = make_generation(std::move(snapshot), generation_.get());
    if (!listeners.empty()) accept_on(std::move(listeners));
    done();
  });
}

void Worker::drain() {
  asio::post(context_, [this] { begin_drain(); });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::attach(ClientSession* session) {
  sessions_.insert(session);
  client_connections_.add(1);
}

void Worker::detach(ClientSession* session) {
  sessions_.erase(session);
  client_connections_.sub(1);
  if (draining_) finish_if_drained();
}

asio::awaitable<void> Worker::accept_loop(std::shared_ptr<asio::ip::tcp::acceptor> acceptor) {
  for (;;) {
    auto [error, socket] = co_await acceptor->async_accept(kNoThrow);
    if (!error) {
      // Served even if a drain closed the acceptor meanwhile: the client's connection is already established, and
      // closing it would fail a request that the next process cannot answer either.
      serve(std::move(socket));
      if (!acceptor->is_open()) co_return;
      continue;
    }
    if (error == asio::error::operation_aborted || !acceptor->is_open()) co_return;
    // Out of descriptors or memory: back off briefly instead of spinning on the same error.
    spdlog::warn("worker {}: accept failed: {}", index_, error.message());
    asio::steady_timer pause(context_, std::chrono::milliseconds(50));
    co_await pause.async_wait(kNoThrow);
  }
}

void Worker::serve(asio::ip::tcp::socket socket) {
  try {
    // The session attaches before this returns, so a drain cannot finish without it.
    std::make_shared<ClientSession>(*this, std::move(socket))->start();
  } catch (const std::exception& error) {
    spdlog::error("worker {}: client session ended on an error: {}", index_, error.what());
  }
}

void Worker::schedule_sweep() {
  sweep_timer_.expires_after(kSweepInterval);
  sweep_timer_.async_wait([this](const boost::system::error_code& error) {
    // A sweep already due when the drain finished still runs: it must not schedule another one, or the loop
    // would never run out of work.
    if (error || drained_) return;
    const auto now = core::Deadline::Clock::now();
    heartbeat_.store(std::chrono::steady_clock::now().time_since_epoch().count());
    // check_deadline may end a session's operation but never detaches synchronously, so iterating is safe.
    for (ClientSession* session : sessions_) session->check_deadline(now);
    access_log_.flush();
    if (++sweeps_ % kSweepsPerTrim == 0) request_states_->trim();
    schedule_sweep();
  });
}

void Worker::begin_drain() {
  if (draining_) return;
  draining_ = true;
  for (auto& acceptor : acceptors_) {
    boost::system::error_code ignored;
    acceptor->close(ignored);
  }
  const auto drain_timeout = generation_->snapshot->config.server.drain_timeout;
  idle_grace_timer_.expires_after(std::min<core::Duration>(drain_timeout, kDrainIdleGrace));
  idle_grace_timer_.async_wait([this](const boost::system::error_code& error) {
    if (error) return;
    idle_grace_over_ = true;
    std::vector<ClientSession*> sessions(sessions_.begin(), sessions_.end());
    for (ClientSession* session : sessions) session->on_drain();
  });
  drain_timer_.expires_after(drain_timeout);
  drain_timer_.async_wait([this](const boost::system::error_code& error) {
    if (error) return;
    if (!sessions_.empty()) spdlog::warn("worker {}: drain timeout, closing {} connections", index_, sessions_.size());
    std::vector<ClientSession*> sessions(sessions_.begin(), sessions_.end());
    for (ClientSession* session : sessions) session->force_close();
  });
  // After the accepts that completed before the acceptors closed: their connections are served, not dropped.
  asio::post(context_, [this] { finish_if_drained(); });
}

void Worker::finish_if_drained() {
  if (!sessions_.empty()) return;
  drained_ = true;
  sweep_timer_.cancel();
  drain_timer_.cancel();
  idle_grace_timer_.cancel();
  access_log_.flush();
  for (auto& pool : generation_->pools) pool->close_idle();
  // Redis and Memcached connections keep reading until closed, which would keep the loop from ending.
  if (generation_->authenticator) generation_->authenticator->close();
  if (generation_->rate_limiter) generation_->rate_limiter->close();
  if (generation_->cache) generation_->cache->close();
}

}  // namespace apigw::server
