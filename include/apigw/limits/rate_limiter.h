// One worker's rate limiter: the local budgets of every (limit, key) it has seen, filled from the fleet's buckets
// in Redis (gcra.h) in batches. A request that finds a token here costs no round trip; the first request of a key,
// and one that finds the local tokens spent, asks Redis (requests of the same key arriving meanwhile wait for that
// one answer); a batch running low is refilled in the background; a key Redis refused is refused here until it may
// have tokens again. Held by shared_ptr (the generations that use it, and its background refills).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "apigw/core/metrics.h"
#include "apigw/limits/budget.h"
#include "apigw/redis/client.h"

namespace apigw::limits {

// A limit as the limiter needs it: the bucket's shape and how local budgets of it behave.
struct LimitSpec {
  std::uint64_t count = 0;
  std::chrono::seconds period{1};
  std::uint64_t burst = 0;
  BudgetPolicy policy;
};

struct Decision {
  enum class Outcome { kAllowed, kLimited, kError };
  Outcome outcome = Outcome::kAllowed;
  std::chrono::microseconds retry_after{0};  // kLimited: until the key may have a token again
  std::uint64_t remaining = 0;                // the fleet's tokens left for the key, as last known here
  std::chrono::microseconds reset{0};         // until the key's bucket is full again, as last known here
};

class RateLimiter : public std::enable_shared_from_this<RateLimiter> {
 public:
  static constexpr std::size_t kMaxEntries = 100'000;  // keys remembered per worker; idle ones are dropped beyond
  static constexpr std::chrono::milliseconds kErrorBackoff{500};  // after a failed call, no call for this long

  RateLimiter(boost::asio::any_io_executor executor, std::unique_ptr<redis::Client> redis,
              core::MetricsRegistry* metrics);
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // Takes one token of `spec`'s bucket for `key` (limit_key()).
  boost::asio::awaitable<Decision> take(const LimitSpec& spec, std::string key);

  std::uint64_t redis_calls() const { return redis_calls_; }
  std::size_t entries() const { return entries_.size(); }
  void close() { redis_->close(); }

 private:
  struct Waiter {
    boost::asio::steady_timer* wake = nullptr;
    Decision decision;
    bool retry = false;  // the answer ran out before this request, but the bucket has more: ask again
  };
  struct Entry {
    Budget budget;
    std::vector<Waiter*> waiters;
    std::uint64_t demand = 0;  // requests left waiting by the last answer: the next ask wants as many
  };

  // Asks Redis for `wanted` tokens; nullopt when the call failed (then no call is made for kErrorBackoff).
  boost::asio::awaitable<std::optional<Grant>> ask(const LimitSpec& spec, const std::string& key,
                                                   std::uint64_t wanted);
  // Gives what Redis answered to the requests waiting on `entry` (`asker` first, when one is waiting itself).
  void settle(Entry& entry, const LimitSpec& spec, const std::optional<Grant>& grant, Decision* asker);
  boost::asio::awaitable<void> refill(LimitSpec spec, std::string key);
  Decision allowed(const Budget& budget) const;
  Decision limited(const Budget& budget, Clock::time_point now) const;
  void sweep(Clock::time_point now);

  boost::asio::any_io_executor executor_;
  std::unique_ptr<redis::Client> redis_;
  std::unordered_map<std::string, Entry> entries_;
  std::minstd_rand random_;
  std::uniform_real_distribution<double> spread_{0.0, 1.0};
  Clock::time_point redis_down_until_{};
  std::uint64_t redis_calls_ = 0;
  core::Counter* calls_ok_ = nullptr;
  core::Counter* calls_failed_ = nullptr;
};

}  // namespace apigw::limits
