// The admin listener: health, readiness, metrics and read-only views of the running configuration, on its own
// address (loopback by default), separate from client traffic. Runs on the main thread's loop.
//   GET /healthz    200 while the process runs
//   GET /readyz     200 when the config is loaded, listeners are bound and apigw is not draining; 503 otherwise
//   GET /metrics    Prometheus text format
//   GET /config     the effective configuration as JSON
//   GET /routes     the route table in match order
//   GET /upstreams  upstreams, their endpoints and each endpoint's health
//   /_cache/...     the cache API, when configured (see cache_api.h)
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "apigw/cache/response_cache.h"
#include "apigw/config/snapshot.h"
#include "apigw/net/tls.h"
#include "apigw/upstream/health.h"

namespace apigw::admin {

struct AdminSources {
  std::function<std::string_view()> state;         // "starting", "ready" or "draining"
  std::function<config::SnapshotPtr()> snapshot;   // the configuration every worker serves with
  std::function<std::string()> metrics;            // the Prometheus text
  const upstream::HealthTable* health = nullptr;
  // This loop's client of the running config's cache pools, for the cache API; null without a cache section.
  std::function<std::shared_ptr<cache::ResponseCache>()> cache;
  // The `/control` JSON: the fleet's state this instance serves.
  std::function<std::string()> control;
};

class AdminServer {
 public:
  AdminServer(boost::asio::any_io_executor executor, AdminSources sources);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Listens on `endpoint` instead of the current address (if any). Throws std::runtime_error when binding fails;
  // the current listener then stays.
  void listen(const config::Endpoint& endpoint);
  const config::Endpoint& address() const { return address_; }
  // Closes the listener; open admin connections end after their current request (or their idle timeout).
  void stop();
  // Connections accepted from now on speak TLS with `tls` (admin.tls), or plain HTTP when null.
  void use_tls(std::shared_ptr<net::TlsServerContext> tls) { tls_ = std::move(tls); }

 private:
  struct Response;
  boost::asio::awaitable<void> accept_loop(std::shared_ptr<boost::asio::ip::tcp::acceptor> acceptor);
  boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket, std::shared_ptr<net::TlsServerContext> tls);
  // Requests on one connection, plain or TLS, until it ends.
  template <typename Stream>
  boost::asio::awaitable<void> exchange(Stream& stream);
  Response handle(std::string_view method, std::string_view target) const;

  boost::asio::any_io_executor executor_;
  AdminSources sources_;
  config::Endpoint address_;
  std::shared_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
  std::shared_ptr<net::TlsServerContext> tls_;
  std::shared_ptr<std::atomic<bool>> stopped_ = std::make_shared<std::atomic<bool>>(false);
  unsigned connections_ = 0;
};

// The JSON bodies of /config, /routes and /upstreams (pure; for the server and for tests).
std::string config_json(const config::Snapshot& snapshot);
std::string routes_json(const config::Snapshot& snapshot);
std::string upstreams_json(const config::Snapshot& snapshot, const upstream::HealthTable* health);

}  // namespace apigw::admin
