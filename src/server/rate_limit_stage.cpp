// The rate-limit stage (see rate_limit_stage.h).
#include "rate_limit_stage.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "apigw/limits/gcra.h"

namespace apigw::server {
namespace asio = boost::asio;
using Outcome = limits::Decision::Outcome;

namespace {

std::string period_text(std::chrono::seconds period) {
  switch (period.count()) {
    case 1: return "second";
    case 60: return "minute";
    case 3600: return "hour";
    case 86400: return "day";
  }
  return fmt::format("{} s", period.count());
}

}  // namespace

asio::awaitable<StageResult> RateLimitStage::on_request(RequestContext& context) {
  const std::vector<limits::PreparedLimit>& route_limits = context.generation->route_limits[context.route_index];
  limits::RateLimiter& limiter = *context.generation->rate_limiter;
  const config::RateLimitsConfig& settings = context.snapshot->config.rate_limits;
  std::string client;  // the client's address, found once a limit counts by it
  // RateLimit-Policy lists every enforced limit (prepared per route); RateLimit, what each has left (shadow limits
  // stay unseen).
  std::string current;
  for (const limits::PreparedLimit& limit : route_limits) {
    limits::KeyValue key = limits::key_value(limit, context.user, context.request());
    if (key.by_client()) {
      if (client.empty()) client = client_address(context);
      key.value = client;
    }
    std::string redis_key = limits::limit_key(context.route->name, limit.index, key.kind, key.value);
    const limits::Decision decision = co_await limiter.take(limit.spec, std::move(redis_key));
    switch (decision.outcome) {
      case Outcome::kAllowed:
        limit.counters.allowed->add();
        if (!limit.shadow) {
          fmt::format_to(std::back_inserter(current), "{}\"{}\";r={};t={}", current.empty() ? "" : ", ",
                         limit.policy_name, decision.remaining, limits::whole_seconds(decision.reset));
        }
        break;
      case Outcome::kLimited:
        if (limit.shadow) {
          limit.counters.shadow_limited->add();
          log_shadow(context, limit);
          break;
        }
        limit.counters.limited->add();
        co_return refuse(context, limit, decision);
      case Outcome::kError:
        if (settings.on_error == config::RateLimitOnError::kDeny) {
          limit.counters.error_denied->add();
          co_return unavailable(context);
        }
        limit.counters.error_allowed->add();
        break;
    }
  }
  const std::string& policies = route_limits.back().policies;
  if (settings.headers && !policies.empty()) {
    context.rate_limit_headers = fmt::format("RateLimit-Policy: {}\r\n", policies);
    if (!current.empty()) fmt::format_to(std::back_inserter(context.rate_limit_headers), "RateLimit: {}\r\n", current);
  }
  co_return StageResult::kContinue;
}

StageResult RateLimitStage::refuse(RequestContext& context, const limits::PreparedLimit& limit,
                                   const limits::Decision& decision) {
  const long long wait = std::max<long long>(1, limits::whole_seconds(decision.retry_after));
  // The policies of the limits checked so far, this one's included: enough to say which one refused.
  context.rate_limit_headers =
      fmt::format("Retry-After: {}\r\nRateLimit-Policy: {}\r\nRateLimit: \"{}\";r=0;t={}\r\n", wait, limit.policies,
                  limit.policy_name, wait);
  context.reply_message =
      fmt::format("rate limit exceeded: at most {} requests per {} by {} on route {}; retry in {} s", limit.spec.count,
                  period_text(limit.spec.period), limit.key_label, context.route->name, wait);
  context.reply.status = 429;
  context.reply.error = "rate_limited";
  context.reply.message = context.reply_message;
  context.reply.no_store = true;
  context.reply.extra_headers = context.rate_limit_headers;
  return StageResult::kReply;
}

StageResult RateLimitStage::unavailable(RequestContext& context) {
  context.rate_limit_headers = "Retry-After: 1\r\n";
  context.reply.status = 503;
  context.reply.error = "rate_limit_unavailable";
  context.reply.message = "the rate limits' store is not answering (rate_limits.on_error: deny)";
  context.reply.no_store = true;
  context.reply.extra_headers = context.rate_limit_headers;
  return StageResult::kReply;
}

void RateLimitStage::log_shadow(const RequestContext& context, const limits::PreparedLimit& limit) {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_shadow_log_ < std::chrono::seconds(1)) return;
  last_shadow_log_ = now;
  spdlog::info("rate limit (shadow) exceeded: route {}, key {}, at most {} requests per {}; request {} let through",
               context.route->name, limit.key_label, limit.spec.count, period_text(limit.spec.period),
               context.request_id.view());
}

}  // namespace apigw::server
