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
  if (tokens_ > 0 && now >= expires_at_) tokens_ = 0;  // the lease ran out: those tokens are lost
  if (tokens_ == 0) return Take::kAsk;
  --tokens_;
  if (remaining_ > 0) --remaining_;
  return Take::kAllow;
}

bool Budget::wants_refill(Clock::time_point now) const {
  return !asking_ && now >= blocked_until_ && tokens_ <= batch_ / 2 && batch_ > 1;
}

std::uint64_t Budget::apply(const Grant& grant, Clock::time_point now, std::uint64_t waiting,
                            const BudgetPolicy& policy) {
  // A batch spent before its lease ran out asks for twice as much next time; one that ran out unspent, for half.
  const bool spent_in_time = tokens_ == 0 && now < expires_at_;
  const bool wasted = tokens_ > 0 && now >= expires_at_;
  if (tokens_ > 0 && now >= expires_at_) tokens_ = 0;
  if (grant.granted > 0) {
    if (spent_in_time) batch_ = std::min(batch_ * 2, policy.max_batch);
    if (wasted) batch_ = std::max<std::uint64_t>(1, batch_ / 2);
    batch_ = std::min(batch_, policy.max_batch);
    tokens_ += grant.granted;
    expires_at_ = now + policy.lease;
  }
  remaining_ = grant.remaining;
  reset_ = grant.reset;
  const std::uint64_t served = std::min(waiting, tokens_);
  tokens_ -= served;
  if (tokens_ == 0 && grant.remaining == 0) {
    blocked_until_ = now + std::max(std::chrono::duration_cast<Clock::duration>(grant.wait),
                                    std::chrono::duration_cast<Clock::duration>(policy.min_block));
  }
  return served;
}

bool Budget::idle(Clock::time_point now) const {
  return !asking_ && now >= blocked_until_ && (tokens_ == 0 || now >= expires_at_);
}

}  // namespace apigw::limits
