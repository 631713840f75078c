// limits::RateLimiter against a real redis-server: the GCRA bucket's burst and refill, two limiters (two workers)
// drawing from one bucket, tokens spent locally without a round trip, one Redis call for a new key's concurrent
// requests, the script re-sent after SCRIPT FLUSH, and Redis stopped and back.
#include <gtest/gtest.h>

#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>

#include "apigw/limits/gcra.h"
#include "apigw/limits/rate_limiter.h"
#include "coroutine_test.h"
#include "redis_server.h"

namespace apigw::limits {
namespace {
namespace asio = boost::asio;
using std::chrono::milliseconds;
using std::chrono::seconds;
using test_servers::RedisServer;
using test_servers::run;
using test_servers::wait_until;

std::shared_ptr<RateLimiter> limiter_of(asio::any_io_executor executor, std::uint16_t port) {
  redis::ClientOptions options;
  options.nodes = {{"127.0.0.1", port}};
  options.timeout = milliseconds(500);
  options.connections = 1;
  return std::make_shared<RateLimiter>(executor, std::make_unique<redis::Client>(executor, options), nullptr);
}

LimitSpec spec(std::uint64_t count, std::chrono::seconds period, std::uint64_t burst) {
  return LimitSpec{count, period, burst, budget_policy(count, period, burst)};
}

asio::awaitable<void> sleep_for(asio::any_io_executor executor, milliseconds time) {
  asio::steady_timer timer(executor, time);
  co_await timer.async_wait(asio::use_awaitable);
}

TEST(RateLimiter, BurstThenRefusedThenRefilled) {
  RedisServer server;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto limiter = limiter_of(executor, server.port());
    const LimitSpec slow = spec(10, seconds(1), 5);  // 5 at once, then one every 100 ms
    // A token comes back every 100 ms: the bounds allow for those a loaded machine lets pass meanwhile.
    const auto tokens_back = [](Clock::time_point since) {
      return static_cast<int>(std::chrono::duration<double>(Clock::now() - since).count() * 10);
    };
    int allowed = 0;
    std::optional<Decision> refused;
    auto start = Clock::now();
    for (int i = 0; i < 8; ++i) {
      const Decision decision = co_await limiter->take(slow, "k1");
      if (decision.outcome == Decision::Outcome::kAllowed) {
        ++allowed;
      } else {
        refused = decision;
      }
    }
    EXPECT_GE(allowed, 5);
    EXPECT_LE(allowed, 5 + tokens_back(start));
    EXPECT_EQ(refused.has_value(), allowed < 8);
    if (refused) {
      EXPECT_EQ(refused->outcome, Decision::Outcome::kLimited);
      EXPECT_GT(refused->retry_after.count(), 0);
      // A token is back after 100 ms; a refused worker rests 0.5 to 1.5 times its policy's min_block (here 100 ms)
      // before it asks again, so that the fleet's workers do not ask in step.
      EXPECT_LE(refused->retry_after, slow.policy.min_block * 3 / 2);
    }
    start = Clock::now();
    co_await sleep_for(executor, milliseconds(250));
    allowed = 0;
    for (int i = 0; i < 5; ++i) {
      if ((co_await limiter->take(slow, "k1")).outcome == Decision::Outcome::kAllowed) ++allowed;
    }
    EXPECT_GE(allowed, 2);  // about 2.5 tokens back after 250 ms
    EXPECT_LE(allowed, std::min(5, 1 + tokens_back(start)));
    // Another key has its own bucket.
    EXPECT_EQ((co_await limiter->take(slow, "k2")).outcome, Decision::Outcome::kAllowed);
  });
}

TEST(RateLimiter, TwoWorkersShareOneBucket) {
  RedisServer server;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto first = limiter_of(executor, server.port());
    auto second = limiter_of(executor, server.port());
    const LimitSpec limit = spec(200, seconds(1), 20);
    int allowed = 0;
    int taken = 0;
    const auto start = Clock::now();
    // Each worker takes as fast as it can for one second: together they get burst + rate × time, never more.
    while (Clock::now() - start < seconds(1)) {
      for (RateLimiter* limiter : {first.get(), second.get()}) {
        ++taken;
        if ((co_await limiter->take(limit, "shared")).outcome == Decision::Outcome::kAllowed) ++allowed;
      }
      co_await sleep_for(executor, milliseconds(1));
    }
    const double seconds_spent = std::chrono::duration<double>(Clock::now() - start).count();
    EXPECT_LE(allowed, 20 + static_cast<int>(200 * seconds_spent) + 1);
    // At least most of what the rate gave, or of what was asked when a loaded machine asked more slowly.
    EXPECT_GE(allowed, static_cast<int>(std::min<double>(taken, 200 * seconds_spent) * 0.8));
    // Refused requests are refused locally: Redis sees a fraction of them (a refused worker asks again after at
    // least the time its bucket takes to refill a tenth of its burst, here 10 ms).
    EXPECT_LT(first->redis_calls() + second->redis_calls(), static_cast<std::uint64_t>(taken) / 4);
  });
}

TEST(RateLimiter, TokensAreSpentLocally) {
  RedisServer server;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto limiter = limiter_of(executor, server.port());
    const LimitSpec generous = spec(100000, seconds(1), 100000);  // batches up to 5000
    for (int i = 0; i < 20000; ++i) {
      const Decision decision = co_await limiter->take(generous, "hot");
      EXPECT_EQ(decision.outcome, Decision::Outcome::kAllowed);
      if (i % 1000 == 0) co_await sleep_for(executor, milliseconds(1));  // let background refills land
    }
    EXPECT_LT(limiter->redis_calls(), 40u);  // 20,000 requests
  });
}

TEST(RateLimiter, ConcurrentRequestsOfANewKeyShareOneCall) {
  RedisServer server;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto limiter = limiter_of(executor, server.port());
    const LimitSpec limit = spec(3, seconds(60), 3);
    int allowed = 0;
    int limited = 0;
    for (int i = 0; i < 10; ++i) {
      asio::co_spawn(executor, [&, limiter]() -> asio::awaitable<void> {
        const Decision decision = co_await limiter->take(limit, "new");
        ++(decision.outcome == Decision::Outcome::kAllowed ? allowed : limited);
      }, asio::detached);
    }
    co_await wait_until(executor, [&] { return allowed + limited == 10; });
    // The first asked for one token while the nine others waited for its answer; the bucket held more, so they
    // asked again, together, for what they needed: the bucket's three tokens went to three requests, in two calls.
    EXPECT_EQ(allowed, 3);
    EXPECT_EQ(limited, 7);
    EXPECT_EQ(limiter->redis_calls(), 2u);
  });
}

TEST(RateLimiter, ScriptSentAgainAfterFlush) {
  RedisServer server;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto limiter = limiter_of(executor, server.port());
    EXPECT_EQ((co_await limiter->take(spec(1, seconds(1), 1), "a")).outcome, Decision::Outcome::kAllowed);
    redis::ConnectionOptions options;
    options.address = "127.0.0.1";
    options.port = server.port();
    auto admin = std::make_shared<redis::Connection>(executor, options);
    co_await admin->command(test_servers::cmd("SCRIPT", "FLUSH"));
    admin->close();
    EXPECT_EQ((co_await limiter->take(spec(1, seconds(1), 1), "b")).outcome, Decision::Outcome::kAllowed);
  });
}

TEST(RateLimiter, RedisDownIsAnErrorThenRecovers) {
  RedisServer server;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto limiter = limiter_of(executor, server.port());
    const LimitSpec limit = spec(1000, seconds(1), 1);  // batches of one: every take asks
    EXPECT_EQ((co_await limiter->take(limit, "k")).outcome, Decision::Outcome::kAllowed);
    server.stop();
    co_await sleep_for(executor, milliseconds(20));
    EXPECT_EQ((co_await limiter->take(limit, "k")).outcome, Decision::Outcome::kError);
    const std::uint64_t calls = limiter->redis_calls();
    // Within the back-off, no call is made at all.
    EXPECT_EQ((co_await limiter->take(limit, "k")).outcome, Decision::Outcome::kError);
    EXPECT_EQ(limiter->redis_calls(), calls);
    server.start();
    bool back = false;
    for (int i = 0; i < 100 && !back; ++i) {
      co_await sleep_for(executor, milliseconds(50));
      back = (co_await limiter->take(limit, "k")).outcome == Decision::Outcome::kAllowed;
    }
    EXPECT_TRUE(back);
  });
}

}  // namespace
}  // namespace apigw::limits
