// The auth stage's decisions in metrics (see auth_stats.h).
#include "apigw/auth/auth_stats.h"

namespace apigw::auth {

AuthStats::AuthStats(core::MetricsRegistry& registry) {
  constexpr std::array<const char*, kDecisions> kNames{"authenticated", "anonymous", "missing",
                                                       "malformed",     "invalid",   "unavailable"};
  for (std::size_t i = 0; i < kDecisions; ++i) {
    counters_[i] = &registry.counter("apigw_auth_requests_total",
                                     "Requests on routes with auth, by the auth stage's decision",
                                     {{"decision", kNames[i]}});
  }
}

}  // namespace apigw::auth
