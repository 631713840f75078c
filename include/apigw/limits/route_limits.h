// A route's rate limits made ready for one worker: each limit's bucket shape, its labels, its RateLimit-Policy
// member and its counters (apigw_rate_limit_requests_total{route, key, result}), and how a request's key value is
// found. Built once per generation, read by the rate-limit stage.
#pragma once

#include <boost/beast/http/fields.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "apigw/config/config.h"
#include "apigw/core/metrics.h"
#include "apigw/limits/rate_limiter.h"

namespace apigw::limits {

struct LimitCounters {
  core::Counter* allowed = nullptr;
  core::Counter* limited = nullptr;         // refused with 429
  core::Counter* shadow_limited = nullptr;  // over a shadow limit: counted, let through
  core::Counter* error_allowed = nullptr;   // Redis failed, on_error: allow
  core::Counter* error_denied = nullptr;    // Redis failed, on_error: deny (503)
};

struct PreparedLimit {
  std::size_t index = 0;  // in the route's rate_limit list (part of its Redis keys)
  config::RateLimitKey key;
  std::string key_label;    // "user", "client_ip", "route", "header:x-api-key": the metrics' `key` label
  std::string policy_name;  // its name in RateLimit-Policy and RateLimit, unique on the route
  std::string policy;       // its RateLimit-Policy member: "user";q=100;w=1
  // RateLimit-Policy's value up to this limit: the enforced limits checked before it and itself (a refusal names
  // them); the route's last limit has every enforced one. Empty while none is enforced.
  std::string policies;
  bool shadow = false;
  LimitSpec spec;
  LimitCounters counters;
};

std::vector<PreparedLimit> prepare_limits(const config::RouteConfig& route, core::MetricsRegistry& metrics);

// The bucket a request draws from: the key's kind as it went into the Redis key, and its value. A `user` key of an
// anonymous request, and a `header` key of a request without the header, count by the client's address instead.
// For "client_ip" the value is left empty: the caller finds the address only when a limit needs it.
struct KeyValue {
  std::string_view kind;  // "user", "client_ip", "header", "route"
  std::string_view value;
  bool by_client() const { return kind == "client_ip"; }
};
KeyValue key_value(const PreparedLimit& limit, std::string_view user, const boost::beast::http::fields& headers);

// The seconds a client is told to wait (Retry-After, RateLimit's t): whole seconds, rounded up, at least 1 when
// `wait` is not zero.
long long whole_seconds(std::chrono::microseconds wait);

}  // namespace apigw::limits
