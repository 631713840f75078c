// UpstreamPool leases against loopback listeners: idle reuse, what ending a lease each way does to the connection,
// the max_connections wait, and the failures a lease reports (pool full, connect, no endpoint).
#include "apigw/upstream/lease.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "apigw/config/snapshot.h"
#include "apigw/core/metrics.h"
#include "apigw/upstream/health.h"
#include "apigw/upstream/upstream_pool.h"
#include "apigw/upstream/upstream_stats.h"
#include "coroutine_test.h"
#include "loopback_peer.h"

namespace apigw::upstream {
namespace {
namespace asio = boost::asio;
using Failure = LeaseResult::Failure;
using test_servers::listen_on_loopback;
using test_servers::run;
using test_servers::wait_until;

config::ResolvedEndpoint resolved(const asio::ip::tcp::endpoint& endpoint) {
  config::ResolvedEndpoint out;
  out.address = endpoint.address().to_string();
  out.port = endpoint.port();
  out.host = out.address;
  out.text = out.address + ":" + std::to_string(out.port);
  return out;
}

// A pool named "backend" over `endpoints`, with its health entries and metrics.
struct PoolRig {
  PoolRig(const asio::any_io_executor& executor, const std::vector<asio::ip::tcp::endpoint>& endpoints,
          unsigned max_connections = 16, std::chrono::milliseconds connect_timeout = std::chrono::seconds(5)) {
    upstream.config.name = "backend";
    upstream.config.max_connections = max_connections;
    upstream.config.connect_timeout = connect_timeout;
    for (const auto& endpoint : endpoints) {
      upstream.endpoints.push_back(resolved(endpoint));
      health.push_back(std::make_shared<EndpointHealth>("backend", upstream.endpoints.back().text));
    }
    pool = std::make_unique<UpstreamPool>(executor, upstream, health, stats);
  }

  std::uint64_t errors(UpstreamError kind) const { return stats.errors[static_cast<std::size_t>(kind)]->value(); }

  core::MetricsRegistry registry;
  UpstreamStats stats{registry, "backend"};
  config::Upstream upstream;
  std::vector<EndpointHealthPtr> health;
  std::unique_ptr<UpstreamPool> pool;
};

// Leases a connection to `endpoint` the way the forwarder does: an idle one, else a new one.
asio::awaitable<LeaseResult> lease(UpstreamPool& pool, std::size_t avoid = kNoEndpoint) {
  LeaseResult leased = pool.lease_idle(avoid);
  if (leased.pending()) leased = co_await pool.lease_new(leased.endpoint);
  co_return leased;
}

TEST(UpstreamLease, AnEmptyPoolHasNoIdleConnectionAndLeaseNewConnects) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto listener = listen_on_loopback(executor);
    PoolRig rig(executor, {listener.local_endpoint()});
    LeaseResult idle = rig.pool->lease_idle();
    EXPECT_TRUE(idle.pending());
    EXPECT_EQ(idle.endpoint, 0u);
    LeaseResult leased = co_await rig.pool->lease_new(idle.endpoint);
    CO_ASSERT(leased.lease);
    EXPECT_EQ(leased.failure, Failure::kNone);
    EXPECT_FALSE(leased.lease.reused());
    EXPECT_EQ(leased.lease.endpoint(), 0u);
    EXPECT_TRUE(leased.lease->socket.is_open());
    EXPECT_EQ(rig.stats.connections.value(), 1);
    asio::ip::tcp::socket accepted = co_await listener.async_accept(asio::use_awaitable);
    EXPECT_EQ(accepted.remote_endpoint(), leased.lease->socket.local_endpoint());
  });
}

TEST(UpstreamLease, AFinishedReusableConnectionServesTheNextLease) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto listener = listen_on_loopback(executor);
    PoolRig rig(executor, {listener.local_endpoint()});
    LeaseResult first = co_await lease(*rig.pool);
    CO_ASSERT(first.lease);
    const UpstreamConnection* const connection = &first.lease.connection();
    first.lease.finish(true);
    EXPECT_FALSE(first.lease);

    LeaseResult second = rig.pool->lease_idle();
    CO_ASSERT(second.lease);  // without suspending
    EXPECT_TRUE(second.lease.reused());
    EXPECT_EQ(&second.lease.connection(), connection);
    EXPECT_EQ(second.lease->requests, 1u);
    second.lease.finish(true);
    LeaseResult third = rig.pool->lease_idle();
    CO_ASSERT(third.lease);
    EXPECT_EQ(third.lease->requests, 2u);
    EXPECT_EQ(rig.stats.connections.value(), 1);
  });
}

TEST(UpstreamLease, ALeaseLetGoWithoutFinishClosesItsConnection) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto listener = listen_on_loopback(executor);
    PoolRig rig(executor, {listener.local_endpoint()});
    {
      LeaseResult leased = co_await lease(*rig.pool);
      CO_ASSERT(leased.lease);
    }
    EXPECT_EQ(rig.stats.connections.value(), 0);
    asio::ip::tcp::socket accepted = co_await listener.async_accept(asio::use_awaitable);
    EXPECT_TRUE(co_await test_servers::read_until_eof(accepted));

    LeaseResult next = rig.pool->lease_idle();
    EXPECT_TRUE(next.pending());
    next = co_await rig.pool->lease_new(next.endpoint);
    CO_ASSERT(next.lease);
    EXPECT_FALSE(next.lease.reused());
    EXPECT_EQ(next.lease->requests, 0u);
  });
}

TEST(UpstreamLease, DiscardClosesTheConnection) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto listener = listen_on_loopback(executor);
    PoolRig rig(executor, {listener.local_endpoint()});
    LeaseResult leased = co_await lease(*rig.pool);
    CO_ASSERT(leased.lease);
    leased.lease.discard();
    EXPECT_FALSE(leased.lease);
    EXPECT_EQ(rig.stats.connections.value(), 0);
    asio::ip::tcp::socket accepted = co_await listener.async_accept(asio::use_awaitable);
    EXPECT_TRUE(co_await test_servers::read_until_eof(accepted));
    EXPECT_TRUE(rig.pool->lease_idle().pending());
  });
}

TEST(UpstreamLease, FinishWithoutReuseClosesTheConnection) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto listener = listen_on_loopback(executor);
    PoolRig rig(executor, {listener.local_endpoint()});
    LeaseResult leased = co_await lease(*rig.pool);
    CO_ASSERT(leased.lease);
    leased.lease.finish(false);
    EXPECT_EQ(rig.stats.connections.value(), 0);
    asio::ip::tcp::socket accepted = co_await listener.async_accept(asio::use_awaitable);
    EXPECT_TRUE(co_await test_servers::read_until_eof(accepted));
    EXPECT_TRUE(rig.pool->lease_idle().pending());
  });
}

TEST(UpstreamLease, PutBackKeepsTheConnectionWithoutCountingARequest) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto listener = listen_on_loopback(executor);
    PoolRig rig(executor, {listener.local_endpoint()});
    LeaseResult leased = co_await lease(*rig.pool);
    CO_ASSERT(leased.lease);
    const UpstreamConnection* const connection = &leased.lease.connection();
    leased.lease.put_back();
    EXPECT_FALSE(leased.lease);
    LeaseResult again = rig.pool->lease_idle();
    CO_ASSERT(again.lease);
    EXPECT_EQ(&again.lease.connection(), connection);
    EXPECT_EQ(again.lease->requests, 0u);
    EXPECT_TRUE(again.lease->socket.is_open());
  });
}

TEST(UpstreamLease, MovingALeaseOverAnotherClosesTheConnectionItHeld) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto listener = listen_on_loopback(executor);
    PoolRig rig(executor, {listener.local_endpoint()});
    LeaseResult first = co_await lease(*rig.pool);
    LeaseResult second = co_await lease(*rig.pool);
    CO_ASSERT(first.lease && second.lease);
    EXPECT_EQ(rig.stats.connections.value(), 2);
    const UpstreamConnection* const kept = &second.lease.connection();
    first.lease = std::move(second.lease);
    EXPECT_FALSE(second.lease);
    EXPECT_EQ(&first.lease.connection(), kept);
    EXPECT_EQ(rig.stats.connections.value(), 1);
    first.lease.finish(true);
    LeaseResult idle = rig.pool->lease_idle();
    CO_ASSERT(idle.lease);
    EXPECT_EQ(&idle.lease.connection(), kept);
  });
}

TEST(UpstreamLease, AFullPoolMakesLeaseNewWaitAndThenReportPoolFull) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto listener = listen_on_loopback(executor);
    PoolRig rig(executor, {listener.local_endpoint()}, /*max_connections=*/1, std::chrono::milliseconds(50));
    LeaseResult held = co_await lease(*rig.pool);
    CO_ASSERT(held.lease);
    const auto start = std::chrono::steady_clock::now();
    LeaseResult waited = co_await lease(*rig.pool);
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(50));
    EXPECT_FALSE(waited.lease);
    EXPECT_EQ(waited.failure, Failure::kPoolFull);
    EXPECT_EQ(waited.endpoint, 0u);
    EXPECT_EQ(rig.errors(UpstreamError::kPoolFull), 1u);
    EXPECT_EQ(rig.stats.pool_waits.value(), 1u);
    EXPECT_EQ(rig.stats.connections.value(), 1);
  });
}

TEST(UpstreamLease, AReleasedConnectionGoesToTheLeaseWaitingForIt) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto listener = listen_on_loopback(executor);
    PoolRig rig(executor, {listener.local_endpoint()}, /*max_connections=*/1);
    LeaseResult held = co_await lease(*rig.pool);
    CO_ASSERT(held.lease);
    const UpstreamConnection* const connection = &held.lease.connection();
    std::optional<LeaseResult> waiter;
    asio::co_spawn(
        executor, [&]() -> asio::awaitable<void> { waiter = co_await lease(*rig.pool); }, asio::detached);
    co_await wait_until(executor, [&] { return rig.stats.pool_waits.value() == 1; });
    EXPECT_FALSE(waiter.has_value());
    held.lease.finish(true);
    co_await wait_until(executor, [&] { return waiter.has_value(); });
    CO_ASSERT(waiter.has_value());
    CO_ASSERT(waiter->lease);
    EXPECT_TRUE(waiter->lease.reused());
    EXPECT_EQ(&waiter->lease.connection(), connection);
    EXPECT_EQ(rig.errors(UpstreamError::kPoolFull), 0u);
  });
}

TEST(UpstreamLease, AFreshLeaseNeverReusesAnIdleConnection) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto listener = listen_on_loopback(executor);
    PoolRig rig(executor, {listener.local_endpoint()});
    LeaseResult first = co_await lease(*rig.pool);
    CO_ASSERT(first.lease);
    const UpstreamConnection* const idle = &first.lease.connection();
    first.lease.finish(true);
    LeaseResult fresh = rig.pool->lease_idle(kNoEndpoint, /*fresh=*/true);
    EXPECT_TRUE(fresh.pending());
    fresh = co_await rig.pool->lease_new(fresh.endpoint, /*fresh=*/true);
    CO_ASSERT(fresh.lease);
    EXPECT_FALSE(fresh.lease.reused());
    EXPECT_NE(&fresh.lease.connection(), idle);
    EXPECT_EQ(rig.stats.connections.value(), 2);
  });
}

TEST(UpstreamLease, AtMaxConnectionsAFreshLeaseClosesAnIdleConnectionForItsSlot) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto listener = listen_on_loopback(executor);
    PoolRig rig(executor, {listener.local_endpoint()}, /*max_connections=*/1);
    LeaseResult first = co_await lease(*rig.pool);
    CO_ASSERT(first.lease);
    first.lease.finish(true);
    asio::ip::tcp::socket first_accepted = co_await listener.async_accept(asio::use_awaitable);
    LeaseResult fresh = co_await rig.pool->lease_new(0, /*fresh=*/true);
    CO_ASSERT(fresh.lease);
    EXPECT_FALSE(fresh.lease.reused());
    EXPECT_EQ(rig.stats.connections.value(), 1);
    EXPECT_EQ(rig.stats.pool_waits.value(), 0u);
    EXPECT_TRUE(co_await test_servers::read_until_eof(first_accepted));
  });
}

TEST(UpstreamLease, AnIdleConnectionTheUpstreamClosesLeavesThePool) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto listener = listen_on_loopback(executor);
    PoolRig rig(executor, {listener.local_endpoint()});
    LeaseResult leased = co_await lease(*rig.pool);
    CO_ASSERT(leased.lease);
    leased.lease.finish(true);
    {
      asio::ip::tcp::socket accepted = co_await listener.async_accept(asio::use_awaitable);
    }  // the upstream closes its end of the idle connection
    co_await wait_until(executor, [&] { return rig.stats.connections.value() == 0; });
    EXPECT_EQ(rig.stats.connections.value(), 0);
    EXPECT_TRUE(rig.pool->lease_idle().pending());
  });
}

TEST(UpstreamLease, ARefusedConnectReportsTheError) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    asio::ip::tcp::endpoint closed;
    {
      auto listener = listen_on_loopback(executor);
      closed = listener.local_endpoint();
    }
    PoolRig rig(executor, {closed});
    LeaseResult leased = co_await lease(*rig.pool);
    EXPECT_FALSE(leased.lease);
    EXPECT_FALSE(leased.pending());
    EXPECT_EQ(leased.failure, Failure::kConnect);
    EXPECT_EQ(leased.error, asio::error::connection_refused) << leased.error.message();
    EXPECT_EQ(leased.endpoint, 0u);
    EXPECT_EQ(rig.errors(UpstreamError::kConnect), 1u);
    EXPECT_EQ(rig.stats.connections.value(), 0);
    EXPECT_EQ(rig.health[0]->connect_failures.load(), 1u);
  });
}

TEST(UpstreamLease, NoAvailableEndpointIsReported) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto listener = listen_on_loopback(executor);
    PoolRig rig(executor, {listener.local_endpoint()});
    rig.health[0]->probe_healthy = false;
    LeaseResult leased = rig.pool->lease_idle();
    EXPECT_FALSE(leased.lease);
    EXPECT_FALSE(leased.pending());
    EXPECT_EQ(leased.failure, Failure::kNoEndpoint);
    EXPECT_EQ(leased.endpoint, kNoEndpoint);

    PoolRig empty(executor, {});
    EXPECT_EQ(empty.pool->lease_idle().failure, Failure::kNoEndpoint);
    co_return;
  });
}

TEST(UpstreamLease, AnAvoidedEndpointIsSkippedWhileAnotherIsAvailable) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto first = listen_on_loopback(executor);
    auto second = listen_on_loopback(executor);
    PoolRig rig(executor, {first.local_endpoint(), second.local_endpoint()});
    for (int i = 0; i < 4; ++i) {
      LeaseResult leased = co_await lease(*rig.pool, /*avoid=*/0);
      CO_ASSERT(leased.lease);
      EXPECT_EQ(leased.endpoint, 1u);
      EXPECT_EQ(leased.lease->socket.remote_endpoint(), second.local_endpoint());
      leased.lease.finish(true);
    }
    // The avoided endpoint is still better than none.
    rig.health[1]->probe_healthy = false;
    LeaseResult leased = co_await lease(*rig.pool, /*avoid=*/0);
    CO_ASSERT(leased.lease);
    EXPECT_EQ(leased.endpoint, 0u);
    EXPECT_EQ(leased.lease->socket.remote_endpoint(), first.local_endpoint());
  });
}

}  // namespace
}  // namespace apigw::upstream
