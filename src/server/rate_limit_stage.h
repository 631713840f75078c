// The rate-limit stage, on a route with `rate_limit`: each of the route's limits takes one token of its key's
// fleet-wide bucket (limits::RateLimiter: from this worker's local budget when it holds one, else from Redis).
// Over a limit, the request is refused with 429, Retry-After and the RateLimit / RateLimit-Policy fields, and never
// forwarded; over a shadow limit it is counted and logged, and goes on. Redis failing: rate_limits.on_error (allow,
// counted; or deny with 503). Answers of limited routes carry RateLimit and RateLimit-Policy (rate_limits.headers).
// Runs after auth (a `user` key needs the user) and before the cache.
#pragma once

#include <chrono>

#include "stage.h"

namespace apigw::server {

class RateLimitStage final : public Stage {
 public:
  bool applies(const RequestContext& context) const override {
    return context.generation->rate_limiter && !context.generation->route_limits[context.route_index].empty();
  }
  boost::asio::awaitable<StageResult> on_request(RequestContext& context) override;

 private:
  StageResult refuse(RequestContext& context, const limits::PreparedLimit& limit, const limits::Decision& decision);
  StageResult unavailable(RequestContext& context);
  void log_shadow(const RequestContext& context, const limits::PreparedLimit& limit);

  std::chrono::steady_clock::time_point last_shadow_log_{};
};

}  // namespace apigw::server
