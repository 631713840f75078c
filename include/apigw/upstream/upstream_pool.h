// Per-worker connections to one upstream: endpoint choice (balance), keep-alive reuse, the max_connections cap
// with a bounded wait for a free slot. Lives on one worker thread and is never touched from another.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include "apigw/config/snapshot.h"
#include "apigw/upstream/health.h"
#include "apigw/upstream/http_client.h"
#include "apigw/upstream/lease.h"
#include "apigw/upstream/upstream_connection.h"
#include "apigw/upstream/upstream_stats.h"

namespace apigw::upstream {

class UpstreamPool {
 public:
  // `health` holds the shared health entry of each endpoint, index for index; `stats` outlives the pool.
  UpstreamPool(boost::asio::any_io_executor executor, const config::Upstream& upstream,
               std::vector<EndpointHealthPtr> health, UpstreamStats& stats);
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  const config::Upstream& upstream() const { return upstream_; }
  std::size_t endpoint_count() const { return endpoints_.size(); }
  const std::string& endpoint_text(std::size_t index) const { return upstream_.endpoints[index].text; }

  // Chooses an available endpoint (healthy, not ejected) by the balance policy, skipping `avoid` when another
  // available endpoint exists; kNoEndpoint when none is available.
  std::size_t pick(std::size_t avoid = kNoEndpoint);
  UpstreamStats& stats() { return stats_; }

  // Leasing a connection takes one or two steps. lease_idle picks an endpoint (skipping `avoid` as pick does)
  // and leases an idle keep-alive connection to it without suspending: the common case. When there is none (or
  // with `fresh`, a retry after a stale connection, which never reuses one), the result is pending and lease_new
  // opens a connection within connect_timeout, waiting for a free slot while the pool is at max_connections.
  // Failures are counted in the upstream's metrics (pool_full, connect) and a connect failure in the endpoint's
  // passive health.
  LeaseResult lease_idle(std::size_t avoid = kNoEndpoint, bool fresh = false);
  boost::asio::awaitable<LeaseResult> lease_new(std::size_t endpoint, bool fresh = false);

  // Closes every idle connection (reload and shutdown).
  void close_idle();
  // A reload replaced this pool: idle connections close now, leased ones when their request ends.
  void retire();

 private:
  struct EndpointState {
    boost::asio::ip::tcp::endpoint address;
    std::optional<TlsTarget> tls;  // an HTTPS upstream: how its connections open TLS
    std::chrono::steady_clock::time_point tls_warned{};  // the last handshake failure logged
    std::vector<UpstreamConnectionPtr> idle;  // most recently used last
    unsigned active = 0;                      // leased connections = requests in flight
  };

  friend class Lease;
  // A connect to endpoint `index` failed (with `tls`, its TLS handshake): its slot is given back, and the failure
  // counted (metrics, passive health).
  void connect_failed(std::size_t index, const boost::system::error_code& error, bool tls);
  void tls_failed_warning(std::size_t index, const std::string& why);
  // Ends a lease: `reusable` connections go back to the idle list, watched for the upstream closing them;
  // others are closed. Wakes one waiter.
  void release(UpstreamConnectionPtr connection, bool reusable);
  UpstreamConnectionPtr take_idle(EndpointState& endpoint);
  bool close_one_idle();
  void watch_idle(const UpstreamConnectionPtr& connection);
  void drop_idle(const UpstreamConnectionPtr& connection);
  void close(UpstreamConnection& connection);
  void wake_one_waiter();

  boost::asio::any_io_executor executor_;
  config::Upstream upstream_;
  std::vector<EndpointState> endpoints_;
  std::vector<EndpointHealthPtr> health_;
  UpstreamStats& stats_;
  bool retired_ = false;
  unsigned open_ = 0;  // leased + idle, capped by max_connections
  std::deque<boost::asio::steady_timer*> waiters_;
  std::size_t next_ = 0;
  std::minstd_rand random_;
};

using UpstreamPoolPtr = std::shared_ptr<UpstreamPool>;

}  // namespace apigw::upstream
