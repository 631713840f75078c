// Tests for a worker's local budget of one rate limit's tokens: spending without Redis, asking, batches growing and
// shrinking, blocking after a refusal, leases running out; and the policy derived from a rate.
#include "apigw/limits/budget.h"

#include <gtest/gtest.h>

namespace apigw::limits {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

const Clock::time_point kStart = Clock::time_point() + seconds(1000);

Grant grant(std::uint64_t granted, std::uint64_t remaining, microseconds wait = microseconds(0)) {
  return Grant{granted, remaining, wait, seconds(1)};
}

TEST(BudgetPolicy, FromRateAndBurst) {
  // 100/s: 5 tokens in 50 ms; the bucket of 100 fills in 1 s: a refused key rests the longest, 100 ms.
  BudgetPolicy policy = budget_policy(100, seconds(1), 100);
  EXPECT_EQ(policy.max_batch, 5u);
  EXPECT_EQ(policy.min_block, milliseconds(100));
  // 100/s with a bucket of 10: it fills in 100 ms, so a refused key rests 50 ms.
  policy = budget_policy(100, seconds(1), 10);
  EXPECT_EQ(policy.min_block, milliseconds(50));
  // 1000/m: under one token in 50 ms: batches of one.
  policy = budget_policy(1000, seconds(60), 1000);
  EXPECT_EQ(policy.max_batch, 1u);
  // Half a small burst caps the batch: 10000/s with burst 20 → 10; the bucket fills in 2 ms: rest 1 ms.
  policy = budget_policy(10000, seconds(1), 20);
  EXPECT_EQ(policy.max_batch, 10u);
  EXPECT_EQ(policy.min_block, milliseconds(1));
  // 1/s, burst 1: one at a time.
  policy = budget_policy(1, seconds(1), 1);
  EXPECT_EQ(policy.max_batch, 1u);
  EXPECT_EQ(policy.min_block, milliseconds(100));
}

TEST(Budget, FirstRequestAsksThenSpendsLocally) {
  const BudgetPolicy policy{8, milliseconds(1000), milliseconds(50)};
  Budget budget;
  EXPECT_EQ(budget.take(kStart), Budget::Take::kAsk);
  EXPECT_EQ(budget.batch(), 1u);
  // Redis granted 1 (the batch), and the waiting request took it.
  EXPECT_EQ(budget.apply(grant(1, 99), kStart, 1, policy), 1u);
  EXPECT_EQ(budget.remaining(), 99u);
  // Nothing left here: the next asks again, and a batch spent in time doubles.
  EXPECT_EQ(budget.take(kStart + milliseconds(1)), Budget::Take::kAsk);
  EXPECT_EQ(budget.apply(grant(1, 98), kStart + milliseconds(2), 1, policy), 1u);
  EXPECT_EQ(budget.batch(), 2u);
  EXPECT_EQ(budget.apply(grant(2, 96), kStart + milliseconds(3), 1, policy), 1u);
  EXPECT_EQ(budget.take(kStart + milliseconds(4)), Budget::Take::kAllow);  // the second token, no Redis
  EXPECT_EQ(budget.remaining(), 95u);
  EXPECT_EQ(budget.take(kStart + milliseconds(5)), Budget::Take::kAsk);
}

TEST(Budget, BatchesGrowToTheMaximumAndRefillEarly) {
  const BudgetPolicy policy{4, milliseconds(1000), milliseconds(50)};
  Budget budget;
  Clock::time_point now = kStart;
  for (int round = 0; round < 6; ++round) {
    ASSERT_EQ(budget.take(now), Budget::Take::kAsk);
    const std::uint64_t asked = budget.batch();
    budget.apply(grant(asked, 1000), now, 1, policy);
    while (budget.take(now) == Budget::Take::kAllow) {
    }
    now += milliseconds(1);
  }
  EXPECT_EQ(budget.batch(), 4u);
  // With 4 held and 2 spent, the next batch is wanted in the background (nobody waits for it).
  budget.apply(grant(4, 1000), now, 0, policy);
  EXPECT_EQ(budget.take(now), Budget::Take::kAllow);
  EXPECT_FALSE(budget.wants_refill(now));
  EXPECT_EQ(budget.take(now), Budget::Take::kAllow);
  EXPECT_TRUE(budget.wants_refill(now));
  budget.set_asking(true);
  EXPECT_FALSE(budget.wants_refill(now));
}

TEST(Budget, LeaseRunsOutAndTheBatchShrinks) {
  const BudgetPolicy policy{4, milliseconds(100), milliseconds(50)};
  Budget budget;
  budget.apply(grant(1, 10), kStart, 0, policy);
  budget.take(kStart);
  budget.apply(grant(2, 10), kStart, 0, policy);  // spent in time: 2
  EXPECT_EQ(budget.batch(), 2u);
  budget.take(kStart);
  budget.take(kStart);
  budget.apply(grant(4, 10), kStart, 0, policy);
  EXPECT_EQ(budget.batch(), 4u);
  // Four held, the lease runs out: they are gone, and the next batch is half as big.
  const Clock::time_point later = kStart + milliseconds(150);
  EXPECT_TRUE(budget.idle(later));
  EXPECT_EQ(budget.take(later), Budget::Take::kAsk);
  EXPECT_EQ(budget.batch(), 2u);
  budget.apply(grant(2, 10), later, 1, policy);
  EXPECT_EQ(budget.batch(), 2u);  // a first ask after a rest does not grow it
  // Found by a background refill instead of a request: the same.
  const Clock::time_point much_later = later + milliseconds(150);
  budget.apply(grant(2, 10), much_later, 0, policy);
  EXPECT_EQ(budget.batch(), 1u);
}

TEST(Budget, SteadySpendingWithBackgroundRefillsGrowsTheBatchToTheMaximum) {
  // A key that always has tokens (each refill asked for at half a batch) still grows its batch, so a busy key
  // costs one Redis call per max_batch / 2 requests.
  const BudgetPolicy policy{16, milliseconds(1000), milliseconds(50)};
  Budget budget;
  Clock::time_point now = kStart;
  ASSERT_EQ(budget.take(now), Budget::Take::kAsk);
  budget.apply(grant(1, 1000), now, 1, policy);
  int asks = 0;
  for (int request = 0; request < 200; ++request) {
    now += milliseconds(1);
    Budget::Take take = budget.take(now);
    if (take == Budget::Take::kAsk) {
      ++asks;
      budget.apply(grant(budget.batch(), 1000), now, 1, policy);
      continue;
    }
    ASSERT_EQ(take, Budget::Take::kAllow);
    if (budget.wants_refill(now)) {
      ++asks;
      budget.apply(grant(budget.batch(), 1000), now, 0, policy);
    }
  }
  EXPECT_EQ(budget.batch(), 16u);
  EXPECT_LE(asks, 200 / 8 + 6);  // one per half batch once grown, and the few on the way up
}

TEST(Budget, RefusalBlocksLocallyForTheWaitOrTheMinimum) {
  const BudgetPolicy policy{4, milliseconds(1000), milliseconds(50)};
  Budget budget;
  // Redis granted nothing: a token comes in 200 ms. Two requests waited: both refused.
  EXPECT_EQ(budget.apply(grant(0, 0, milliseconds(200)), kStart, 2, policy), 0u);
  EXPECT_EQ(budget.blocked_until(), kStart + milliseconds(200));
  EXPECT_EQ(budget.take(kStart + milliseconds(199)), Budget::Take::kDeny);
  EXPECT_FALSE(budget.idle(kStart + milliseconds(199)));
  EXPECT_EQ(budget.take(kStart + milliseconds(200)), Budget::Take::kAsk);
  // A token comes in 1 ms: the key still rests the minimum, so that refused keys do not poll Redis.
  budget.apply(grant(0, 0, milliseconds(1)), kStart + seconds(1), 1, policy);
  EXPECT_EQ(budget.blocked_until(), kStart + seconds(1) + milliseconds(50));
}

TEST(Budget, LastTokensGoToTheFirstWaiters) {
  const BudgetPolicy policy{4, milliseconds(1000), milliseconds(50)};
  Budget budget;
  // Three waited, two tokens were left in the fleet's bucket: two served, the key blocked after them.
  EXPECT_EQ(budget.apply(grant(2, 0, milliseconds(10)), kStart, 3, policy), 2u);
  EXPECT_EQ(budget.take(kStart + milliseconds(5)), Budget::Take::kDeny);
  // Plenty granted, fewer waiting: the rest is held.
  Budget other;
  EXPECT_EQ(other.apply(grant(4, 50), kStart, 1, policy), 1u);
  EXPECT_EQ(other.take(kStart), Budget::Take::kAllow);
  EXPECT_EQ(other.take(kStart), Budget::Take::kAllow);
  EXPECT_EQ(other.take(kStart), Budget::Take::kAllow);
  EXPECT_EQ(other.take(kStart), Budget::Take::kAsk);
}

}  // namespace
}  // namespace apigw::limits
