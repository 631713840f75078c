// A worker's local tokens for one key (see budget.h).
#include "apigw/limits/budget.h"

#include <algorithm>

namespace apigw::limits {

BudgetPolicy budget_policy(std::uint64_t count, std::chrono::seconds period, std::uint64_t burst) {
  using std::chrono::microseconds;
  const double per_second = static_cast<double>(count) / static_cast<double>(period.count());
  BudgetPolicy policy;
  const auto in_50ms = static_cast<std::uint64_t>(per_second * 0.05);
  policy.max_batch = std::max<std::uint64_t>(1, std::min(in_50ms, burst / 2));
  // Tokens pile up in the fleet's bucket while its workers rest, and are lost only once it is full: half the time
  // it takes to fill keeps every token for whoever asks next.
  const double fill_us = 1e6 / per_second * static_cast<double>(burst);
  policy.min_block = microseconds(static_cast<long long>(std::clamp(fill_us / 2, 1'000.0, 100'000.0)));
  return policy;
}

Budget::Take Budget::take(Clock::time_point now) {
  if (now < blocked_until_) return Take::kDeny;
  expire(now);
  if (tokens_ == 0) {
    if (now < refill_after_) {  // spent the last tokens of a bucket that was empty: no point asking yet
      blocked_until_ = refill_after_;
      return Take::kDeny;
    }
    return Take::kAsk;
  }
  --tokens_;
  if (remaining_ > 0) --remaining_;
  return Take::kAllow;
}

bool Budget::wants_refill(Clock::time_point now) const {
  return !asking_ && now >= refill_after_ && tokens_ <= batch_ / 2 && batch_ > 1;
}

std::uint64_t Budget::apply(const Grant& grant, Clock::time_point now, std::uint64_t waiting,
                            const BudgetPolicy& policy, double spread) {
  // Half a batch spent before its lease ran out (the point where a refill is asked for) asks for twice as much
  // next time; a batch that ran out unspent, for half (expire()).
  // A bucket left empty is contended: the fleet wants more than the rate. Smaller batches then share it among
  // the workers, and none asks again before a token may be there, so that none takes every token as it comes.
  const bool spent_in_time = now < expires_at_ && tokens_ <= batch_ / 2;
  const bool contended = grant.remaining == 0;
  expire(now);
  if (grant.granted > 0) {
    if (contended) {
      batch_ = std::max<std::uint64_t>(1, batch_ / 2);
    } else if (spent_in_time) {
      batch_ = std::min(batch_ * 2, policy.max_batch);
    }
    batch_ = std::min(batch_, policy.max_batch);
    tokens_ += grant.granted;
    expires_at_ = now + policy.lease;
  }
  remaining_ = grant.remaining;
  reset_ = grant.reset;
  const std::uint64_t served = std::min(waiting, tokens_);
  tokens_ -= served;
  if (contended) {
    const double scale = 0.5 + std::clamp(spread, 0.0, 1.0);
    const auto rest = std::chrono::duration_cast<Clock::duration>(policy.min_block * scale);
    refill_after_ = now + std::max(std::chrono::duration_cast<Clock::duration>(grant.wait), rest);
    if (tokens_ == 0) blocked_until_ = refill_after_;
  }
  return served;
}

void Budget::expire(Clock::time_point now) {
  if (tokens_ > 0 && now >= expires_at_) {  // the lease ran out: those tokens are lost
    tokens_ = 0;
    batch_ = std::max<std::uint64_t>(1, batch_ / 2);
  }
}

bool Budget::idle(Clock::time_point now) const {
  return !asking_ && now >= blocked_until_ && (tokens_ == 0 || now >= expires_at_);
}

}  // namespace apigw::limits
