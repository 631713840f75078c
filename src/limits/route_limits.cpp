// A route's rate limits for one worker (see route_limits.h).
#include "apigw/limits/route_limits.h"

#include <fmt/format.h>

#include <algorithm>

#include "apigw/http/text.h"

namespace apigw::limits {

namespace {

constexpr std::string_view kHelp = "Requests checked against a route's rate limit, by route, key and result";

std::string label_of(const config::RateLimitKey& key) {
  switch (key.kind) {
    case config::RateLimitKey::Kind::kUser: return "user";
    case config::RateLimitKey::Kind::kClientIp: return "client_ip";
    case config::RateLimitKey::Kind::kHeader: return "header:" + http::lower_case(key.header);
    case config::RateLimitKey::Kind::kRoute: break;
  }
  return "route";
}

}  // namespace

std::vector<PreparedLimit> prepare_limits(const config::RouteConfig& route, core::MetricsRegistry& metrics) {
  std::vector<PreparedLimit> out;
  for (std::size_t i = 0; i < route.rate_limits.size(); ++i) {
    const config::RouteRateLimit& limit = route.rate_limits[i];
    PreparedLimit prepared;
    prepared.index = i;
    prepared.key = limit.key;
    prepared.key_label = label_of(limit.key);
    prepared.shadow = limit.shadow;
    prepared.spec = {limit.count, limit.period, limit.burst, budget_policy(limit.count, limit.period, limit.burst)};
    // Two limits with the same key get distinct names: "user", then "user-2".
    const auto same = std::count_if(out.begin(), out.end(),
                                    [&](const PreparedLimit& other) { return other.key_label == prepared.key_label; });
    prepared.policy_name = same == 0 ? prepared.key_label : fmt::format("{}-{}", prepared.key_label, same + 1);
    prepared.policy = fmt::format("\"{}\";q={};w={}", prepared.policy_name, limit.count, limit.period.count());
    prepared.policies = out.empty() ? std::string() : out.back().policies;
    if (!prepared.shadow) prepared.policies += (prepared.policies.empty() ? "" : ", ") + prepared.policy;
    const auto counter = [&](std::string_view result) {
      return &metrics.counter("apigw_rate_limit_requests_total", kHelp,
                              {{"route", route.name}, {"key", prepared.key_label}, {"result", std::string(result)}});
    };
    prepared.counters = {counter("allowed"), counter("limited"), counter("shadow_limited"), counter("error_allowed"),
                         counter("error_denied")};
    out.push_back(std::move(prepared));
  }
  return out;
}

KeyValue key_value(const PreparedLimit& limit, std::string_view user, const boost::beast::http::fields& headers) {
  switch (limit.key.kind) {
    case config::RateLimitKey::Kind::kUser:
      if (!user.empty()) return {"user", user};
      break;
    case config::RateLimitKey::Kind::kHeader:
      if (const auto found = headers.find(limit.key.header); found != headers.end()) {
        return {"header", {found->value().data(), found->value().size()}};
      }
      break;
    case config::RateLimitKey::Kind::kRoute:
      return {"route", {}};
    case config::RateLimitKey::Kind::kClientIp:
      break;
  }
  return {"client_ip", {}};
}

long long whole_seconds(std::chrono::microseconds wait) {
  if (wait.count() <= 0) return 0;
  return (wait.count() + 999'999) / 1'000'000;
}

}  // namespace apigw::limits
