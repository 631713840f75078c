// A worker's local share of one rate limit's tokens for one key (one user, one address...). Tokens come from
// Redis in batches (limits/gcra.h grants them fleet-wide) and are spent here without a round trip; a key Redis
// refused is refused here until it may have tokens again. Pure: the caller asks Redis and passes the time.
#pragma once

#include <chrono>
#include <cstdint>

namespace apigw::limits {

using Clock = std::chrono::steady_clock;

// What Redis granted (see gcra.h): `granted` of the tokens asked for, what the bucket still held after them, the
// time until it holds one more (when it holds none) and until it is full again.
struct Grant {
  std::uint64_t granted = 0;
  std::uint64_t remaining = 0;
  std::chrono::microseconds wait{0};
  std::chrono::microseconds reset{0};
};

// How a limit's budgets behave, from its rate and burst (budget_policy()).
struct BudgetPolicy {
  std::uint64_t max_batch = 1;                // tokens asked for at most at once
  std::chrono::milliseconds lease{1000};      // tokens not spent within this are dropped, never given back
  std::chrono::microseconds min_block{0};     // a refused key is not asked about again sooner than this
};

// max_batch: the tokens of 50 ms at the full rate, at most half the burst, at least 1; min_block: half the time the
// bucket takes to fill, from 1 ms to 100 ms.
BudgetPolicy budget_policy(std::uint64_t count, std::chrono::seconds period, std::uint64_t burst);

class Budget {
 public:
  enum class Take {
    kAllow,  // one token spent
    kDeny,   // refused locally until blocked_until()
    kAsk,    // no token here: ask Redis for batch() (or wait for the ask under way)
  };

  Take take(Clock::time_point now);
  // Tokens are running low and nobody is asking: ask for the next batch in the background.
  bool wants_refill(Clock::time_point now) const;
  std::uint64_t batch() const { return batch_; }
  bool asking() const { return asking_; }
  void set_asking(bool asking) { asking_ = asking; }

  // Applies what Redis granted at `now`. `waiting` requests take a token each, as long as there are any: how many
  // did is returned (the others are refused, and the key blocked, as Redis said).
  // `spread` (0 to 1) scales the rest after an empty bucket from half to one and a half min_block: workers that
  // found the bucket empty at the same moment do not all come back at the same moment, and none settles into the
  // slot just after another's.
  std::uint64_t apply(const Grant& grant, Clock::time_point now, std::uint64_t waiting, const BudgetPolicy& policy,
                      double spread = 0.5);

  Clock::time_point blocked_until() const { return blocked_until_; }
  // An estimate of the fleet's tokens left for this key: what Redis last said, minus what was spent here since.
  std::uint64_t remaining() const { return remaining_; }
  // Seconds until the bucket would be full again, as Redis last said.
  std::chrono::microseconds reset() const { return reset_; }
  // Nothing held, nothing blocked, nobody asking: the entry may be dropped.
  bool idle(Clock::time_point now) const;

 private:
  // Drops tokens whose lease ran out, and halves the batch that brought too many.
  void expire(Clock::time_point now);

  std::uint64_t tokens_ = 0;
  Clock::time_point expires_at_{};
  Clock::time_point blocked_until_{};
  Clock::time_point refill_after_{};  // no background refill before this: the bucket was left empty
  std::uint64_t batch_ = 1;
  std::uint64_t remaining_ = 0;
  std::chrono::microseconds reset_{0};
  bool asking_ = false;
};

}  // namespace apigw::limits
