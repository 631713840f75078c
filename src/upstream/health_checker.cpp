// Active health probes (see health_checker.h).
#include "apigw/upstream/health_checker.h"

#include <array>
#include <optional>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "apigw/net/no_throw.h"
#include "apigw/upstream/http_client.h"

namespace apigw::upstream {
namespace asio = boost::asio;

namespace {
using net::kNoThrow;
}  // namespace

struct HealthChecker::Target {
  Target(asio::any_io_executor executor, EndpointHealthPtr entry, config::ResolvedEndpoint endpoint,
         config::HealthCheckConfig check)
      : health(std::move(entry)), address(std::move(endpoint)), config(std::move(check)), timer(executor) {}

  EndpointHealthPtr health;
  config::ResolvedEndpoint address;
  config::HealthCheckConfig config;
  std::optional<TlsTarget> tls;  // an HTTPS upstream is probed over TLS, its sessions resumed
  asio::steady_timer timer;
  bool stopped = false;
  unsigned failures = 0;   // consecutive
  unsigned successes = 0;  // consecutive
};

HealthChecker::HealthChecker(asio::any_io_executor executor, HealthTable& table)
    : executor_(std::move(executor)), table_(table) {}

HealthChecker::~HealthChecker() { stop(); }

void HealthChecker::stop() {
  for (const auto& target : targets_) {
    target->stopped = true;
    target->timer.cancel();
  }
  targets_.clear();
}

void HealthChecker::update(const config::SnapshotPtr& snapshot) {
  stop();
  for (const config::Upstream& upstream : snapshot->upstreams) {
    const std::vector<EndpointHealthPtr> entries = table_.entries(upstream);
    std::shared_ptr<net::TlsClientContext> tls_context;
    if (upstream.config.tls && upstream.config.health_check.enabled) {
      tls_context = net::TlsClientContext::require(*upstream.config.tls);
    }
    for (std::size_t i = 0; i < entries.size(); ++i) {
      if (!upstream.config.health_check.enabled) {
        entries[i]->probe_healthy.store(true, std::memory_order_relaxed);
        continue;
      }
      auto target = std::make_shared<Target>(executor_, entries[i], upstream.endpoints[i],
                                             upstream.config.health_check);
      if (tls_context) target->tls = tls_target(tls_context, upstream.endpoints[i]);
      targets_.push_back(target);
      asio::co_spawn(executor_, probe_loop(std::move(target)), asio::detached);
    }
  }
}

asio::awaitable<void> HealthChecker::probe_loop(std::shared_ptr<Target> target) {
  while (!target->stopped) {
    const bool ok = co_await probe_once(*target);
    if (target->stopped) co_return;
    ++probes_;
    EndpointHealth& health = *target->health;
    if (ok) {
      target->failures = 0;
      ++target->successes;
      if (!health.probe_healthy.load() && target->successes >= target->config.healthy_after) {
        health.probe_healthy.store(true);
        spdlog::info("upstream '{}' endpoint {} is healthy again ({} successful checks)", health.upstream,
                     health.endpoint, target->successes);
      }
    } else {
      ++failures_;
      target->successes = 0;
      ++target->failures;
      if (health.probe_healthy.load() && target->failures >= target->config.unhealthy_after) {
        health.probe_healthy.store(false);
        spdlog::warn("upstream '{}' endpoint {} is unhealthy ({} failed checks of {}): no traffic until it recovers",
                     health.upstream, health.endpoint, target->failures, target->config.path);
      }
    }
    target->timer.expires_after(target->config.interval);
    co_await target->timer.async_wait(kNoThrow);
  }
}

asio::awaitable<bool> HealthChecker::probe_once(Target& target) {
  boost::system::error_code error;
  const auto address = asio::ip::make_address(target.address.address, error);
  if (error) co_return false;
  UpstreamConnection connection(executor_, 0);
  // One budget for connect, request and response.
  const auto deadline = std::chrono::steady_clock::now() + target.config.timeout;
  ExchangeDeadline limit(executor_, deadline);
  const TlsTarget* tls = target.tls ? &*target.tls : nullptr;
  if (co_await connect(connection, asio::ip::tcp::endpoint(address, target.address.port), deadline, tls)) {
    co_return false;
  }
  limit.watch(connection);
  const std::string request = fmt::format("GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: apigw-health-check\r\n"
                                          "Connection: close\r\n\r\n",
                                          target.config.path, target.address.text);
  const std::array<asio::const_buffer, 1> buffers{asio::buffer(request)};
  auto [write_error, written] = co_await send_request(connection, buffers);
  bool got_bytes = false;
  ResponseReader reader;
  boost::system::error_code read_error = write_error;
  if (!write_error) read_error = co_await reader.read_head(connection, false, got_bytes);
  limit.unwatch();
  if (read_error) co_return false;
  const unsigned status = reader.status();
  connection.socket.shutdown(asio::ip::tcp::socket::shutdown_both, error);
  co_return status >= 200 && status < 400;
}

}  // namespace apigw::upstream
