// Active health probes (see health_checker.h).
#include "apigw/upstream/health_checker.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

namespace apigw::upstream {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr std::uint32_t kMaxProbeResponseBytes = 64 * 1024;
}  // namespace

struct HealthChecker::Target {
  Target(asio::any_io_executor executor, EndpointHealthPtr entry, config::ResolvedEndpoint endpoint,
         config::HealthCheckConfig check)
      : health(std::move(entry)), address(std::move(endpoint)), config(std::move(check)), timer(executor) {}

  EndpointHealthPtr health;
  config::ResolvedEndpoint address;
  config::HealthCheckConfig config;
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
    for (std::size_t i = 0; i < entries.size(); ++i) {
      if (!upstream.config.health_check.enabled) {
        entries[i]->probe_healthy.store(true, std::memory_order_relaxed);
        continue;
      }
      auto target = std::make_shared<Target>(executor_, entries[i], upstream.endpoints[i],
                                             upstream.config.health_check);
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
  beast::tcp_stream stream(executor_);
  stream.expires_after(target.config.timeout);  // one budget for connect, request and response
  auto [connect_error] = co_await stream.async_connect(asio::ip::tcp::endpoint(address, target.address.port),
                                                       kNoThrow);
  if (connect_error) co_return false;
  bhttp::request<bhttp::empty_body> request(bhttp::verb::get, target.config.path, 11);
  request.set(bhttp::field::host, target.address.text);
  request.set(bhttp::field::user_agent, "apigw-health-check");
  request.set(bhttp::field::connection, "close");
  auto [write_error, written] = co_await bhttp::async_write(stream, request, kNoThrow);
  if (write_error) co_return false;
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(kMaxProbeResponseBytes);
  auto [read_error, read] = co_await bhttp::async_read_header(stream, buffer, parser, kNoThrow);
  if (read_error) co_return false;
  const unsigned status = parser.get().result_int();
  boost::system::error_code ignored;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  co_return status >= 200 && status < 400;
}

}  // namespace apigw::upstream
