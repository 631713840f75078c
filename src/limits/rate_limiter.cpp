// A worker's rate limiter (see rate_limiter.h).
#include "apigw/limits/rate_limiter.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "apigw/limits/gcra.h"

namespace apigw::limits {
namespace asio = boost::asio;

RateLimiter::RateLimiter(asio::any_io_executor executor, std::unique_ptr<redis::Client> redis,
                         core::MetricsRegistry* metrics)
    : executor_(std::move(executor)), redis_(std::move(redis)), random_(std::random_device{}()) {
  if (metrics != nullptr) {
    constexpr std::string_view kHelp = "Calls to the rate limits' Redis, by result";
    calls_ok_ = &metrics->counter("apigw_rate_limit_redis_calls_total", kHelp, {{"result", "ok"}});
    calls_failed_ = &metrics->counter("apigw_rate_limit_redis_calls_total", kHelp, {{"result", "error"}});
  }
}

Decision RateLimiter::allowed(const Budget& budget) const {
  Decision decision;
  decision.remaining = budget.remaining();
  decision.reset = budget.reset();
  return decision;
}

Decision RateLimiter::limited(const Budget& budget, Clock::time_point now) const {
  Decision decision;
  decision.outcome = Decision::Outcome::kLimited;
  decision.retry_after = std::chrono::duration_cast<std::chrono::microseconds>(budget.blocked_until() - now);
  decision.reset = budget.reset();
  return decision;
}

asio::awaitable<Decision> RateLimiter::take(const LimitSpec& spec, std::string key) {
  Clock::time_point now = Clock::now();
  if (now < redis_down_until_) co_return Decision{Decision::Outcome::kError};
  if (entries_.size() >= kMaxEntries) sweep(now);
  Entry& entry = entries_[key];  // node-based: stays put while other keys come and go
  for (;; now = Clock::now()) {
    switch (entry.budget.take(now)) {
      case Budget::Take::kAllow:
        if (entry.budget.wants_refill(now)) {
          entry.budget.set_asking(true);
          asio::co_spawn(executor_, [self = shared_from_this(), spec, key]() mutable {
            return self->refill(spec, std::move(key));
          }, asio::detached);
        }
        co_return allowed(entry.budget);
      case Budget::Take::kDeny:
        co_return limited(entry.budget, now);
      case Budget::Take::kAsk:
        break;
    }
    if (!entry.budget.asking()) break;
    // Another request of this key is asking Redis: its answer serves this one too.
    asio::steady_timer wake(executor_, asio::steady_timer::time_point::max());
    Waiter waiter{&wake, {}, false};
    entry.waiters.push_back(&waiter);
    boost::system::error_code ignored;
    co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    if (!waiter.retry) co_return waiter.decision;
  }
  entry.budget.set_asking(true);
  const std::uint64_t wanted = std::max(entry.budget.batch(), std::min(entry.demand, spec.burst));
  entry.demand = 0;
  const std::optional<Grant> grant = co_await ask(spec, key, wanted);
  Decision mine;
  settle(entry, spec, grant, &mine);
  co_return mine;
}

asio::awaitable<void> RateLimiter::refill(LimitSpec spec, std::string key) {
  const auto found = entries_.find(key);
  if (found == entries_.end()) co_return;
  const std::optional<Grant> grant = co_await ask(spec, key, found->second.budget.batch());
  settle(found->second, spec, grant, nullptr);
}

void RateLimiter::settle(Entry& entry, const LimitSpec& spec, const std::optional<Grant>& grant, Decision* asker) {
  const Clock::time_point now = Clock::now();
  entry.budget.set_asking(false);
  std::vector<Waiter*> waiters = std::move(entry.waiters);
  entry.waiters.clear();
  const std::uint64_t waiting = waiters.size() + (asker != nullptr ? 1 : 0);
  std::uint64_t served = 0;
  if (grant) served = entry.budget.apply(*grant, now, waiting, spec.policy, spread_(random_));
  const auto decide = [&](std::uint64_t position) {
    if (!grant) return Decision{Decision::Outcome::kError};
    return position < served ? allowed(entry.budget) : limited(entry.budget, now);
  };
  // The fleet's bucket had more than this answer brought: the requests it did not serve ask again, together.
  const bool more = grant && grant->remaining > 0;
  std::uint64_t position = 0;
  if (asker != nullptr) *asker = decide(position++);
  for (Waiter* waiter : waiters) {
    waiter->retry = more && position >= served;
    if (waiter->retry) ++entry.demand;
    waiter->decision = decide(position++);
    waiter->wake->cancel();
  }
}

asio::awaitable<std::optional<Grant>> RateLimiter::ask(const LimitSpec& spec, const std::string& key,
                                                       std::uint64_t wanted) {
  ++redis_calls_;
  std::vector<std::string> arguments = gcra_arguments(key, spec.count, spec.period, spec.burst, wanted);
  std::vector<std::string> command{"EVALSHA", gcra_script_sha1()};
  command.insert(command.end(), arguments.begin(), arguments.end());
  redis::Result result = co_await redis_->command(command, key);
  if (!result.error && result.reply.type == redis::Reply::Type::kError && result.reply.text.starts_with("NOSCRIPT")) {
    // The first call on a Redis that has not seen the script (or lost it): send it whole, once.
    command[0] = "EVAL";
    command[1] = gcra_script();
    result = co_await redis_->command(std::move(command), key);
  }
  std::optional<Grant> grant;
  if (!result.error) grant = parse_grant(result.reply);
  if (!grant) {
    if (calls_failed_ != nullptr) calls_failed_->add();
    const Clock::time_point now = Clock::now();
    if (now >= redis_down_until_) {
      spdlog::warn("rate limits: Redis call failed ({}); requests of limited routes are decided by "
                   "rate_limits.on_error for {} ms",
                   result.error ? result.error.message() : result.reply.text, kErrorBackoff.count());
    }
    redis_down_until_ = now + kErrorBackoff;
    co_return std::nullopt;
  }
  if (calls_ok_ != nullptr) calls_ok_->add();
  co_return grant;
}

void RateLimiter::sweep(Clock::time_point now) {
  // An entry someone still waits on, or will ask for, stays (a request holds it across its wait).
  std::erase_if(entries_, [&](const auto& item) {
    const Entry& entry = item.second;
    return entry.waiters.empty() && entry.demand == 0 && entry.budget.idle(now);
  });
}

}  // namespace apigw::limits
