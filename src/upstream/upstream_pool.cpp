// Per-worker upstream connection pool (see upstream_pool.h). Never blocks: connects and waits are awaited.
#include "apigw/upstream/upstream_pool.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/spdlog.h>

#include "apigw/net/no_throw.h"
#include "apigw/net/readiness.h"
#include "apigw/upstream/http_client.h"

namespace apigw::upstream {
namespace asio = boost::asio;

namespace {

using net::kNoThrow;

// An idle upstream connection longer than this is not trusted: most servers' keep-alive timeouts are ≥ 60 s.
constexpr auto kMaxIdleAge = std::chrono::seconds(50);

// Readiness on an idle connection means the upstream closed it or sent bytes nobody asked for, unless it is left
// over from the last response's own bytes: a peek tells.
bool idle_socket_is_quiet(asio::ip::tcp::socket& socket) {
  char byte;
  const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

// A connect error that says something about the endpoint (not about this process, such as running out of
// descriptors or local ports).
bool endpoint_failed(const boost::system::error_code& error) {
  return error == asio::error::connection_refused || error == asio::error::timed_out ||
         error == asio::error::host_unreachable || error == asio::error::network_unreachable ||
         error == asio::error::connection_reset || error == asio::error::connection_aborted;
}

}  // namespace

UpstreamPool::UpstreamPool(asio::any_io_executor executor, const config::Upstream& upstream,
                           std::vector<EndpointHealthPtr> health, UpstreamStats& stats)
    : executor_(std::move(executor)), upstream_(upstream), health_(std::move(health)), stats_(stats),
      random_(std::random_device{}()) {
  std::shared_ptr<net::TlsClientContext> tls_context;
  if (upstream_.config.tls) tls_context = net::TlsClientContext::require(*upstream_.config.tls);
  for (const config::ResolvedEndpoint& endpoint : upstream_.endpoints) {
    EndpointState state;
    state.address = asio::ip::tcp::endpoint(asio::ip::make_address(endpoint.address), endpoint.port);
    if (tls_context) state.tls = tls_target(tls_context, endpoint);
    endpoints_.push_back(std::move(state));
  }
  next_ = endpoints_.empty() ? 0 : random_() % endpoints_.size();
}

UpstreamPool::~UpstreamPool() { close_idle(); }

std::size_t UpstreamPool::pick(std::size_t avoid) {
  const std::size_t count = endpoints_.size();
  if (count == 1) return health_[0]->available() ? 0 : kNoEndpoint;
  if (count == 0) return kNoEndpoint;
  const auto usable = [&](std::size_t candidate) { return candidate != avoid && health_[candidate]->available(); };
  std::size_t best = kNoEndpoint;
  switch (upstream_.config.balance) {
    case config::Balance::kRoundRobin:
      for (std::size_t i = 0; i < count && best == kNoEndpoint; ++i) {
        const std::size_t candidate = next_++ % count;
        if (usable(candidate)) best = candidate;
      }
      break;
    case config::Balance::kRandom: {
      const std::size_t start = random_() % count;
      for (std::size_t i = 0; i < count && best == kNoEndpoint; ++i) {
        if (usable((start + i) % count)) best = (start + i) % count;
      }
      break;
    }
    case config::Balance::kLeastRequest: {
      // Fewest requests in flight on this worker; ties rotate so equal endpoints share the load.
      const std::size_t start = next_++ % count;
      for (std::size_t i = 0; i < count; ++i) {
        const std::size_t candidate = (start + i) % count;
        if (!usable(candidate)) continue;
        if (best == kNoEndpoint || endpoints_[candidate].active < endpoints_[best].active) best = candidate;
      }
      break;
    }
  }
  // The endpoint to avoid is still better than none.
  if (best == kNoEndpoint && avoid < count && health_[avoid]->available()) best = avoid;
  return best;
}

UpstreamConnectionPtr UpstreamPool::take_idle(EndpointState& endpoint) {
  const auto now = std::chrono::steady_clock::now();
  while (!endpoint.idle.empty()) {
    UpstreamConnectionPtr connection = std::move(endpoint.idle.back());
    endpoint.idle.pop_back();
    if (connection->watched) {
      // The watch is cancelled; its handler sees operation_aborted and leaves the connection alone.
      connection->watched = false;
      boost::system::error_code ignored;
      connection->socket.cancel(ignored);
    }
    if (now - connection->idle_since < kMaxIdleAge) return connection;
    close(*connection);
  }
  return nullptr;
}

bool UpstreamPool::close_one_idle() {
  for (EndpointState& endpoint : endpoints_) {
    if (endpoint.idle.empty()) continue;
    close(*endpoint.idle.front());
    endpoint.idle.erase(endpoint.idle.begin());
    return true;
  }
  return false;
}

void UpstreamPool::close(UpstreamConnection& connection) {
  boost::system::error_code ignored;
  connection.socket.close(ignored);
  --open_;
  stats_.connections.sub(1);
}

// An idle connection waits for readiness: the upstream closing it (or sending bytes nobody asked for) ends the
// wait, and the connection leaves the pool before a request can pick it. This costs no system call while nothing
// happens, unlike a peek before every reuse.
void UpstreamPool::watch_idle(const UpstreamConnectionPtr& connection) {
  connection->watched = true;
  net::async_wait_readable(
      connection->socket,
      [this, weak = std::weak_ptr<UpstreamConnection>(connection)](const boost::system::error_code& error) {
        // Aborted: the connection was leased or closed, and may not exist any more.
        if (error == asio::error::operation_aborted) return;
        const UpstreamConnectionPtr connection = weak.lock();
        if (!connection || !connection->watched) return;
        if (!error && idle_socket_is_quiet(connection->socket)) {
          watch_idle(connection);
          return;
        }
        connection->watched = false;
        drop_idle(connection);
      });
}

void UpstreamPool::drop_idle(const UpstreamConnectionPtr& connection) {
  std::vector<UpstreamConnectionPtr>& idle = endpoints_[connection->endpoint].idle;
  const auto it = std::find(idle.begin(), idle.end(), connection);
  if (it == idle.end()) return;
  close(*connection);
  idle.erase(it);
}

void Lease::end(bool reusable) {
  if (!connection_) return;
  pool_->release(std::move(connection_), reusable);
  connection_.reset();
}

LeaseResult UpstreamPool::lease_idle(std::size_t avoid, bool fresh) {
  LeaseResult result;
  result.endpoint = pick(avoid);
  if (result.endpoint == kNoEndpoint) {
    result.failure = LeaseResult::Failure::kNoEndpoint;
    return result;
  }
  if (fresh) return result;
  EndpointState& endpoint = endpoints_[result.endpoint];
  if (UpstreamConnectionPtr connection = take_idle(endpoint)) {
    ++endpoint.active;
    result.lease = Lease(*this, std::move(connection), true);
  }
  return result;
}

asio::awaitable<LeaseResult> UpstreamPool::lease_new(std::size_t index, bool fresh) {
  LeaseResult result;
  result.endpoint = index;
  const auto deadline = std::chrono::steady_clock::now() + upstream_.config.connect_timeout;
  EndpointState& endpoint = endpoints_[index];
  for (;;) {
    if (!fresh) {
      if (UpstreamConnectionPtr connection = take_idle(endpoint)) {
        ++endpoint.active;
        result.lease = Lease(*this, std::move(connection), true);
        co_return result;
      }
    }
    if (open_ < upstream_.config.max_connections || close_one_idle()) {
      ++open_;
      stats_.connections.add(1);
      ++endpoint.active;
      auto connection = std::make_shared<UpstreamConnection>(executor_, index);
      // Time spent waiting for a slot does not shorten the connect itself.
      const auto connect_deadline = std::chrono::steady_clock::now() + upstream_.config.connect_timeout;
      const TlsTarget* tls = endpoint.tls ? &*endpoint.tls : nullptr;
      const std::uint64_t resumed = tls ? tls->sessions->resumed : 0;
      const boost::system::error_code error =
          co_await connect(*connection, endpoint.address, connect_deadline, tls, &result.tls_failure);
      if (tls && !error) {
        stats_.handshake(tls->sessions->resumed != resumed ? TlsHandshake::kResumed : TlsHandshake::kFull);
      }
      if (error) {
        const bool tls_failed = !result.tls_failure.empty();
        if (tls_failed) tls_failed_warning(index, result.tls_failure);
        connect_failed(index, error, tls_failed);
        result.failure = tls_failed ? LeaseResult::Failure::kTls : LeaseResult::Failure::kConnect;
        result.error = error;
        co_return result;
      }
      health_[index]->record_connect_success();
      result.lease = Lease(*this, std::move(connection), false);
      co_return result;
    }
    // Full: wait for a release (it cancels our timer) or for the deadline.
    stats_.pool_waits.add();
    asio::steady_timer timer(executor_);
    timer.expires_at(deadline);
    waiters_.push_back(&timer);
    auto [error] = co_await timer.async_wait(kNoThrow);
    std::erase(waiters_, &timer);
    if (!error) {
      stats_.error(UpstreamError::kPoolFull);
      result.failure = LeaseResult::Failure::kPoolFull;
      co_return result;
    }
  }
}

void UpstreamPool::tls_failed_warning(std::size_t index, const std::string& why) {
  // Every failure is in its answer and in the metrics; the process log says it once in a while per endpoint.
  constexpr auto kEvery = std::chrono::seconds(10);
  const auto now = std::chrono::steady_clock::now();
  EndpointState& endpoint = endpoints_[index];
  if (endpoint.tls_warned != std::chrono::steady_clock::time_point{} && now - endpoint.tls_warned < kEvery) return;
  endpoint.tls_warned = now;
  spdlog::warn("upstream '{}' endpoint {}: TLS handshake failed: {}", upstream_.config.name, endpoint_text(index),
               why);
}

void UpstreamPool::connect_failed(std::size_t index, const boost::system::error_code& error, bool tls) {
  --open_;
  stats_.connections.sub(1);
  --endpoints_[index].active;
  stats_.error(tls ? UpstreamError::kTls : UpstreamError::kConnect);
  if (tls) stats_.handshake(TlsHandshake::kFailed);
  wake_one_waiter();
  // Ejecting the last available endpoint would only turn its 502s into 503s and hide its recovery.
  bool others = false;
  for (std::size_t i = 0; i < health_.size() && !others; ++i) others = i != index && health_[i]->available();
  // A failed handshake counts as a failed connect: the endpoint cannot serve.
  const bool failed = tls || endpoint_failed(error);
  if (failed && health_[index]->record_connect_failure(upstream_.config.passive_health, others)) {
    spdlog::warn("upstream '{}' endpoint {} ejected for {} ms after {} consecutive connect failures",
                 upstream_.config.name, endpoint_text(index),
                 std::chrono::duration_cast<std::chrono::milliseconds>(upstream_.config.passive_health.eject_for)
                     .count(),
                 upstream_.config.passive_health.unhealthy_after);
  }
}

void UpstreamPool::release(UpstreamConnectionPtr connection, bool reusable) {
  EndpointState& endpoint = endpoints_[connection->endpoint];
  --endpoint.active;
  if (reusable && !retired_) {
    connection->idle_since = std::chrono::steady_clock::now();
    watch_idle(connection);
    endpoint.idle.push_back(std::move(connection));
  } else {
    close(*connection);
  }
  wake_one_waiter();
}

void UpstreamPool::wake_one_waiter() {
  if (waiters_.empty()) return;
  asio::steady_timer* waiter = waiters_.front();
  waiters_.pop_front();
  waiter->cancel();
}

void UpstreamPool::retire() {
  retired_ = true;
  close_idle();
}

void UpstreamPool::close_idle() {
  for (EndpointState& endpoint : endpoints_) {
    for (UpstreamConnectionPtr& connection : endpoint.idle) close(*connection);
    endpoint.idle.clear();
  }
}

}  // namespace apigw::upstream
