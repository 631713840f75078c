// An instance's link to its fleet's state (see watcher.h).
#include "apigw/fleet/watcher.h"

#include <algorithm>
#include <chrono>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "apigw/net/no_throw.h"
#include "apigw/redis/client_options.h"

namespace apigw::fleet {
namespace asio = boost::asio;

namespace {
using net::kNoThrow;
constexpr auto kFirstBackoff = std::chrono::milliseconds(100);
// A heartbeat outlives three missed rounds.
constexpr int kHeartbeatRounds = 3;
constexpr auto kMinHeartbeatTtl = std::chrono::seconds(1);

std::chrono::milliseconds as_ms(core::Duration duration) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(duration);
}

redis::ClientOptions options_for(const config::ControlConfig& control,
                                 const std::vector<config::ResolvedEndpoint>& nodes, core::Duration timeout) {
  redis::ClientOptions options = redis::client_options(control.redis, nodes);
  options.timeout = timeout;
  options.connections = 1;
  return options;
}
}  // namespace

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Watcher::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::any_io_executor executor_in, WatcherOptions options_in, WatcherCallbacks callbacks_in)
      : executor(std::move(executor_in)),
        options(std::move(options_in)),
        callbacks(std::move(callbacks_in)),
        client(executor, options_for(options.control, options.nodes, options.control.redis.timeout)),
        // The blocking read waits `poll` on the server, then has the usual timeout for its answer.
        blocking(executor,
                 options_for(options.control, options.nodes, options.control.poll + options.control.redis.timeout)),
        store(client, options.control.fleet),
        waits(blocking, options.control.fleet),
        self(options.self) {}

  asio::awaitable<void> watch() {
    auto backoff = kFirstBackoff;
    std::string last_id;
    while (!stopped) {
      Failure failure;
      if (last_id.empty()) {
        // The newest entry first, then the state: a change written in between wakes the wait below.
        WaitResult newest = co_await store.last_id();
        failure = newest.failure;
        last_id = newest.last_id;
      }
      if (!failure && !stopped) {
        ReadResult read = co_await store.read();
        failure = read.failure;
        if (!failure && !stopped) callbacks.on_state(read.state);
      }
      if (!failure && !stopped) {
        WaitResult next = co_await waits.wait(last_id, as_ms(options.control.poll));
        failure = next.failure;
        if (!failure) last_id = next.last_id;
      }
      if (stopped) break;
      if (!failure) {
        backoff = kFirstBackoff;
        continue;
      }
      last_id.clear();
      callbacks.on_failure(failure);
      retry.expires_after(backoff);
      co_await retry.async_wait(kNoThrow);
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::max(kFirstBackoff, as_ms(options.control.poll)));
    }
  }

  asio::awaitable<void> beat() {
    const auto ttl =
        std::max<std::chrono::milliseconds>(kMinHeartbeatTtl, as_ms(options.control.poll) * kHeartbeatRounds);
    while (!stopped) {
      self.heartbeat_at_ms = unix_ms();
      if (Failure failure = co_await store.heartbeat(self, ttl); failure && !stopped) callbacks.on_failure(failure);
      if (stopped) break;
      heartbeat_timer.expires_after(options.control.poll);
      co_await heartbeat_timer.async_wait(kNoThrow);
    }
  }

  asio::awaitable<void> leave() {
    co_await store.forget(self.id);
    client.close();
  }

  void spawn(asio::awaitable<void> (Impl::*body)(), std::string_view what) {
    asio::co_spawn(executor, [self = shared_from_this(), body]() { return ((*self).*body)(); },
                   [what = std::string(what)](const std::exception_ptr& failure) {
                     if (!failure) return;
                     try {
                       std::rethrow_exception(failure);
                     } catch (const std::exception& error) {
                       spdlog::error("control: the {} ended on an error: {}", what, error.what());
                     }
                   });
  }

  asio::any_io_executor executor;
  WatcherOptions options;
  WatcherCallbacks callbacks;
  redis::Client client;
  redis::Client blocking;
  Store store;
  Store waits;
  Instance self;
  asio::steady_timer retry{executor};
  asio::steady_timer heartbeat_timer{executor};
  bool started = false;
  bool stopped = false;
};

Watcher::Watcher(asio::any_io_executor executor, WatcherOptions options, WatcherCallbacks callbacks)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(options), std::move(callbacks))) {}

Watcher::~Watcher() { stop(); }

void Watcher::start() {
  if (impl_->started) return;
  impl_->started = true;
  impl_->spawn(&Impl::watch, "watch of the fleet's state");
  impl_->spawn(&Impl::beat, "heartbeat");
}

void Watcher::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->retry.cancel();
  impl_->heartbeat_timer.cancel();
  impl_->blocking.close();
  if (impl_->started) {
    impl_->spawn(&Impl::leave, "heartbeat's removal");
  } else {
    impl_->client.close();
  }
}

void Watcher::report(const Instance& self) {
  const std::string id = impl_->self.id;
  impl_->self = self;
  impl_->self.id = id;
  impl_->heartbeat_timer.cancel();
}

const config::ControlConfig& Watcher::settings() const { return impl_->options.control; }

ReadResult read_once(const config::ControlConfig& control, const std::vector<config::ResolvedEndpoint>& nodes) {
  asio::io_context context(1);
  redis::Client client(context.get_executor(), options_for(control, nodes, control.redis.timeout));
  Store store(client, control.fleet);
  ReadResult out;
  out.failure = {"redis", "no answer from Redis in time"};
  asio::co_spawn(
      context, [&]() -> asio::awaitable<void> { out = co_await store.read(); },
      [&](const std::exception_ptr&) { client.close(); });
  // Connecting and one round trip, each bounded by the timeout (a cluster may ask more than one node).
  context.run_for(std::chrono::duration_cast<std::chrono::nanoseconds>(control.redis.timeout * 4));
  client.close();
  context.restart();
  context.run_for(std::chrono::milliseconds(10));
  return out;
}

}  // namespace apigw::fleet
