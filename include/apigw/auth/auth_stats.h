// Requests on routes with `auth: required` or `auth: optional`, by what the auth stage decided, as
// apigw_auth_requests_total{decision}. Series are created up front: the set is small and fixed. One per worker.
#pragma once

#include <array>
#include <cstddef>

#include "apigw/core/metrics.h"

namespace apigw::auth {

class AuthStats {
 public:
  enum class Decision {
    kAuthenticated,  // a valid token: forwarded with the user id
    kAnonymous,      // no token (optional route), or Redis failed with on_error: anonymous
    kMissing,        // no token on a required route: 401
    kMalformed,      // empty, oversized or non-printable token: 401 without a Redis call
    kInvalid,        // Redis does not know the token: 401
    kUnavailable,    // Redis failed with on_error: reject: 503
  };
  static constexpr std::size_t kDecisions = 6;

  explicit AuthStats(core::MetricsRegistry& registry);
  AuthStats(const AuthStats&) = delete;
  AuthStats& operator=(const AuthStats&) = delete;

  void record(Decision decision) { counters_[static_cast<std::size_t>(decision)]->add(); }

 private:
  std::array<core::Counter*, kDecisions> counters_{};
};

}  // namespace apigw::auth
