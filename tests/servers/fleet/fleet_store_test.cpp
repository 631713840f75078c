// fleet::Store and fleet::Watcher against a real redis-server: compare-and-set writes and the history they leave,
// the blocking wait that a write ends, heartbeats that expire, an unreadable state, and a watcher that hears of a
// change at once and reports Redis going away.
#include <gtest/gtest.h>

#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>

#include "apigw/fleet/store.h"
#include "apigw/fleet/watcher.h"
#include "coroutine_test.h"
#include "redis_server.h"

namespace apigw::fleet {
namespace {
namespace asio = boost::asio;
using test_servers::cmd;
using test_servers::RedisServer;
using test_servers::run;
using test_servers::wait_until;

redis::ClientOptions options_for(std::uint16_t port,
                                 std::chrono::milliseconds timeout = std::chrono::milliseconds(500)) {
  redis::ClientOptions options;
  options.nodes = {{"127.0.0.1", port}};
  options.timeout = timeout;
  options.connections = 1;
  return options;
}

State change(std::uint64_t version, std::string split) {
  State state;
  state.version = version;
  state.written_at_ms = unix_ms();
  state.effective_at_ms = state.written_at_ms;
  state.author = "test@host";
  state.overrides.routes["users"].split = std::move(split);
  state.previous_version = version - 1;
  return state;
}

TEST(FleetStore, CompareAndSetWritesOnceAndTheHistoryKeepsTheRefusedAttempt) {
  RedisServer server;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    redis::Client client(executor, options_for(server.port()));
    Store store(client, "blue");
    ReadResult empty = co_await store.read();
    EXPECT_FALSE(empty.failure) << empty.failure.message;
    EXPECT_FALSE(empty.state);

    WriteResult first = co_await store.write(change(1, "1"), 0);
    EXPECT_FALSE(first.failure) << first.failure.message;
    EXPECT_TRUE(first.written);
    // A second writer that read version 0 too: refused, told the version it found.
    WriteResult second = co_await store.write(change(1, "5"), 0);
    EXPECT_FALSE(second.written);
    EXPECT_EQ(second.found, 1u);

    ReadResult now = co_await store.read();
    EXPECT_TRUE(now.state && now.state->version == 1 && now.state->overrides.routes["users"].split == "1");
    HistoryResult history = co_await store.history(10);
    EXPECT_FALSE(history.failure);
    if (history.entries.size() == 2) {
      EXPECT_TRUE(history.entries[0].refused);
      EXPECT_EQ(history.entries[0].found, 1u);
      EXPECT_EQ(history.entries[0].state.overrides.routes["users"].split, "5");
      EXPECT_FALSE(history.entries[1].refused);
      EXPECT_EQ(history.entries[1].state.version, 1u);
    } else {
      ADD_FAILURE() << history.entries.size() << " history entries";
    }
    TimeResult clock = co_await store.now();
    EXPECT_LE(std::abs(clock.now_ms - unix_ms()), 1000);
    client.close();
  });
}

TEST(FleetStore, AWriteEndsTheBlockingWait) {
  RedisServer server;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    redis::Client client(executor, options_for(server.port()));
    redis::Client blocking(executor, options_for(server.port(), std::chrono::milliseconds(5500)));
    Store store(client, "blue");
    Store waits(blocking, "blue");
    WaitResult start = co_await store.last_id();
    EXPECT_EQ(start.last_id, "0-0");
    bool woke = false;
    std::string seen;
    const auto began = std::chrono::steady_clock::now();
    asio::co_spawn(
        executor,
        [&]() -> asio::awaitable<void> {
          WaitResult next = co_await waits.wait(start.last_id, std::chrono::milliseconds(5000));
          EXPECT_FALSE(next.failure) << next.failure.message;
          seen = next.last_id;
          woke = true;
        },
        asio::detached);
    asio::steady_timer pause(executor);
    pause.expires_after(std::chrono::milliseconds(100));
    co_await pause.async_wait(asio::use_awaitable);
    EXPECT_FALSE(woke);
    co_await store.write(change(1, "1"), 0);
    co_await wait_until(executor, [&] { return woke; });
    EXPECT_TRUE(woke);
    EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(2));
    EXPECT_NE(seen, "0-0");
    WaitResult newest = co_await store.last_id();
    EXPECT_EQ(newest.last_id, seen);
    // With nothing new, the wait ends after its block time with the id it was given.
    WaitResult idle = co_await waits.wait(seen, std::chrono::milliseconds(100));
    EXPECT_FALSE(idle.failure);
    EXPECT_EQ(idle.last_id, seen);
    client.close();
    blocking.close();
  });
}

TEST(FleetStore, HeartbeatsExpireAndAreForgotten) {
  RedisServer server;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    redis::Client client(executor, options_for(server.port()));
    Store store(client, "blue");
    Instance short_lived;
    short_lived.id = "h1:1";
    short_lived.version = 3;
    short_lived.heartbeat_at_ms = unix_ms();
    Instance long_lived = short_lived;
    long_lived.id = "h2:2";
    EXPECT_FALSE(co_await store.heartbeat(short_lived, std::chrono::milliseconds(200)));
    EXPECT_FALSE(co_await store.heartbeat(long_lived, std::chrono::milliseconds(10000)));
    InstancesResult both = co_await store.instances();
    EXPECT_EQ(both.instances.size(), 2u);
    asio::steady_timer pause(executor);
    pause.expires_after(std::chrono::milliseconds(300));
    co_await pause.async_wait(asio::use_awaitable);
    InstancesResult one = co_await store.instances();
    if (one.instances.size() == 1) {
      EXPECT_EQ(one.instances[0].id, "h2:2");
      EXPECT_EQ(one.instances[0].version, 3u);
    } else {
      ADD_FAILURE() << one.instances.size() << " live instances";
    }
    EXPECT_FALSE(co_await store.forget("h2:2"));
    InstancesResult none = co_await store.instances();
    EXPECT_TRUE(none.instances.empty());
    client.close();
  });
}

TEST(FleetStore, AnUnreadableStateIsAFailureOfItsOwn) {
  RedisServer server;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    redis::Client client(executor, options_for(server.port()));
    Store store(client, "blue");
    co_await client.command(cmd("SET", store.keys().state, "{not json"), store.keys().state);
    ReadResult read = co_await store.read();
    EXPECT_EQ(read.failure.reason, "state");
    EXPECT_NE(read.failure.message.find("is not readable"), std::string::npos) << read.failure.message;
    // The script reads an unreadable state as version 0: a writer that expects 0 replaces it.
    WriteResult written = co_await store.write(change(1, "1"), 0);
    EXPECT_TRUE(written.written);
    client.close();
  });
}

TEST(FleetWatcher, HearsOfAChangeAtOnceAndReportsRedisGoingAway) {
  RedisServer server;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    WatcherOptions options;
    options.control.enabled = true;
    options.control.fleet = "blue";
    options.control.poll = std::chrono::seconds(5);
    options.control.redis.timeout = std::chrono::milliseconds(500);
    options.nodes = {{"127.0.0.1", server.port(), "127.0.0.1", "127.0.0.1"}};
    options.self.id = "test:1";
    std::vector<std::uint64_t> versions;
    std::vector<std::string> failures;
    WatcherCallbacks callbacks;
    callbacks.on_state = [&](const std::optional<State>& state) { versions.push_back(state ? state->version : 0); };
    callbacks.on_failure = [&](const Failure& failure) { failures.push_back(failure.reason); };
    Watcher watcher(executor, options, callbacks);
    watcher.start();
    co_await wait_until(executor, [&] { return !versions.empty(); });
    EXPECT_EQ(versions, std::vector<std::uint64_t>{0});

    redis::Client client(executor, options_for(server.port()));
    Store store(client, "blue");
    const auto wrote = std::chrono::steady_clock::now();
    co_await store.write(change(1, "1"), 0);
    co_await wait_until(executor, [&] { return versions.back() == 1; });
    EXPECT_EQ(versions.back(), 1u);
    EXPECT_LT(std::chrono::steady_clock::now() - wrote, std::chrono::seconds(1));  // not at the next poll
    InstancesResult live = co_await store.instances();
    EXPECT_EQ(live.instances.size(), 1u);
    client.close();

    server.stop();
    co_await wait_until(executor, [&] { return !failures.empty(); });
    EXPECT_FALSE(failures.empty());
    if (!failures.empty()) {
      EXPECT_EQ(failures.front(), "redis");
    }
    watcher.stop();
  });
}

}  // namespace
}  // namespace apigw::fleet
