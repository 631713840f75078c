// One exchange's hold on one upstream connection, from the pool's choice of endpoint to the release: the
// connection goes back to the pool exactly once, kept alive only when the holder says the exchange ended cleanly,
// and closed when the holder lets go of it without saying so (an error, an exception, a cancelled coroutine).
#pragma once

#include <cstddef>
#include <limits>
#include <string>
#include <utility>

#include <boost/system/error_code.hpp>

#include "apigw/upstream/upstream_connection.h"

namespace apigw::upstream {

inline constexpr std::size_t kNoEndpoint = std::numeric_limits<std::size_t>::max();

class UpstreamPool;

class Lease {
 public:
  Lease() = default;
  Lease(UpstreamPool& pool, UpstreamConnectionPtr connection, bool reused)
      : pool_(&pool), connection_(std::move(connection)), reused_(reused) {}
  Lease(Lease&& other) noexcept
      : pool_(other.pool_), connection_(std::move(other.connection_)), reused_(other.reused_) {}
  Lease& operator=(Lease&& other) noexcept {
    if (this != &other) {
      discard();
      pool_ = other.pool_;
      connection_ = std::move(other.connection_);
      reused_ = other.reused_;
    }
    return *this;
  }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  ~Lease() { discard(); }

  explicit operator bool() const { return connection_ != nullptr; }
  UpstreamConnection& connection() const { return *connection_; }
  UpstreamConnection* operator->() const { return connection_.get(); }
  std::size_t endpoint() const { return connection_->endpoint; }
  // The connection served requests before this one: it may have gone stale while idle.
  bool reused() const { return reused_; }

  // One response was read whole on the connection: counted, and the connection goes back to the pool's idle
  // list when `reusable` (the upstream keeps it open and nothing unread is left), or is closed.
  void finish(bool reusable) {
    if (!connection_) return;
    ++connection_->requests;
    end(reusable);
  }
  // Gives the connection back unused (nothing was sent on it): it stays open for the next request.
  void put_back() { end(true); }
  // Ends the lease with the connection closed: it failed, or its state is unknown.
  void discard() { end(false); }

 private:
  void end(bool reusable);

  UpstreamPool* pool_ = nullptr;
  UpstreamConnectionPtr connection_;
  bool reused_ = false;
};

// What asking the pool for a connection came to.
struct LeaseResult {
  enum class Failure {
    kNone,
    kNoEndpoint,  // no endpoint is available (none configured, or all unhealthy or ejected)
    kPoolFull,    // max_connections are in use and none was released within connect_timeout
    kConnect,     // connecting failed: `error` says why (timed_out for connect_timeout)
    kTls,         // the TLS handshake failed: `tls_failure` says why
  };
  Lease lease;
  Failure failure = Failure::kNone;
  boost::system::error_code error;
  std::string tls_failure;
  std::size_t endpoint = kNoEndpoint;  // the endpoint chosen, when one was

  // UpstreamPool::lease_idle found no idle connection: UpstreamPool::lease_new opens one.
  bool pending() const { return !lease && failure == Failure::kNone; }
};

}  // namespace apigw::upstream
