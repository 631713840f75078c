// Per-worker upstream connection pool (see upstream_pool.h). Never blocks: connects and waits are awaited.
#include "apigw/upstream/upstream_pool.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace apigw::upstream {
namespace asio = boost::asio;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

// An idle upstream connection longer than this is not trusted: most servers' keep-alive timeouts are ≥ 60 s.
constexpr auto kMaxIdleAge = std::chrono::seconds(50);

// A peer that closed an idle connection (or sent unexpected bytes) makes it readable: reusing it would fail.
bool still_open(UpstreamConnection& connection) {
  if (connection.buffer.size() != 0) return false;
  char byte;
  const ssize_t n = ::recv(connection.stream.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

UpstreamPool::UpstreamPool(asio::any_io_executor executor, const config::Upstream& upstream)
    : executor_(std::move(executor)), upstream_(upstream), random_(std::random_device{}()) {
  for (const config::ResolvedEndpoint& endpoint : upstream_.endpoints) {
    EndpointState state;
    state.address = asio::ip::tcp::endpoint(asio::ip::make_address(endpoint.address), endpoint.port);
    endpoints_.push_back(std::move(state));
  }
  next_ = endpoints_.empty() ? 0 : random_() % endpoints_.size();
}

UpstreamPool::~UpstreamPool() { close_idle(); }

std::size_t UpstreamPool::pick(std::size_t avoid) {
  const std::size_t count = endpoints_.size();
  if (count == 0) return kNoEndpoint;
  if (count == 1) return 0;
  switch (upstream_.config.balance) {
    case config::Balance::kRoundRobin: {
      std::size_t chosen = next_++ % count;
      if (chosen == avoid) chosen = next_++ % count;
      return chosen;
    }
    case config::Balance::kRandom: {
      std::size_t chosen = random_() % count;
      if (chosen == avoid) chosen = (chosen + 1) % count;
      return chosen;
    }
    case config::Balance::kLeastRequest: {
      // Fewest requests in flight on this worker; ties rotate so equal endpoints share the load.
      const std::size_t start = next_++ % count;
      std::size_t best = kNoEndpoint;
      for (std::size_t i = 0; i < count; ++i) {
        const std::size_t candidate = (start + i) % count;
        if (candidate == avoid) continue;
        if (best == kNoEndpoint || endpoints_[candidate].active < endpoints_[best].active) best = candidate;
      }
      return best;
    }
  }
  return 0;
}

UpstreamConnectionPtr UpstreamPool::take_idle(EndpointState& endpoint) {
  const auto now = std::chrono::steady_clock::now();
  while (!endpoint.idle.empty()) {
    UpstreamConnectionPtr connection = std::move(endpoint.idle.back());
    endpoint.idle.pop_back();
    if (now - connection->idle_since < kMaxIdleAge && still_open(*connection)) return connection;
    --open_;
    boost::system::error_code ignored;
    connection->stream.socket().close(ignored);
  }
  return nullptr;
}

bool UpstreamPool::close_one_idle() {
  for (EndpointState& endpoint : endpoints_) {
    if (endpoint.idle.empty()) continue;
    boost::system::error_code ignored;
    endpoint.idle.front()->stream.socket().close(ignored);
    endpoint.idle.erase(endpoint.idle.begin());
    --open_;
    return true;
  }
  return false;
}

asio::awaitable<AcquireResult> UpstreamPool::acquire(std::size_t index, bool fresh) {
  const auto deadline = std::chrono::steady_clock::now() + upstream_.config.connect_timeout;
  EndpointState& endpoint = endpoints_[index];
  for (;;) {
    if (!fresh) {
      if (UpstreamConnectionPtr connection = take_idle(endpoint)) {
        ++endpoint.active;
        co_return AcquireResult{std::move(connection), {}, true, false};
      }
    }
    if (open_ < upstream_.config.max_connections || close_one_idle()) {
      ++open_;
      ++endpoint.active;
      auto connection = std::make_unique<UpstreamConnection>(executor_, index);
      connection->stream.expires_at(deadline);
      auto [error] = co_await connection->stream.async_connect(endpoint.address, kNoThrow);
      if (error) {
        --open_;
        --endpoint.active;
        wake_one_waiter();
        co_return AcquireResult{nullptr, error, false, false};
      }
      connection->stream.expires_never();
      connection->stream.socket().set_option(asio::ip::tcp::no_delay(true), error);
      co_return AcquireResult{std::move(connection), {}, false, false};
    }
    // Full: wait for a release (it cancels our timer) or for the deadline.
    asio::steady_timer timer(executor_);
    timer.expires_at(deadline);
    waiters_.push_back(&timer);
    auto [error] = co_await timer.async_wait(kNoThrow);
    std::erase(waiters_, &timer);
    if (!error) co_return AcquireResult{nullptr, {}, false, true};
  }
}

void UpstreamPool::release(UpstreamConnectionPtr connection, bool reusable) {
  EndpointState& endpoint = endpoints_[connection->endpoint];
  --endpoint.active;
  if (reusable) {
    connection->idle_since = std::chrono::steady_clock::now();
    connection->stream.expires_never();
    endpoint.idle.push_back(std::move(connection));
  } else {
    boost::system::error_code ignored;
    connection->stream.socket().close(ignored);
    --open_;
  }
  wake_one_waiter();
}

void UpstreamPool::wake_one_waiter() {
  if (waiters_.empty()) return;
  asio::steady_timer* waiter = waiters_.front();
  waiters_.pop_front();
  waiter->cancel();
}

void UpstreamPool::close_idle() {
  for (EndpointState& endpoint : endpoints_) {
    for (UpstreamConnectionPtr& connection : endpoint.idle) {
      boost::system::error_code ignored;
      connection->stream.socket().close(ignored);
      --open_;
    }
    endpoint.idle.clear();
  }
}

}  // namespace apigw::upstream
