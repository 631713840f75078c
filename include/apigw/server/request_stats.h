// Client requests counted on one worker: by route, method and status class, with a duration histogram by route.
// A route's series are found once per reload (by route name, so they survive reloads) and the counters for a
// method and status class are created on first use.
#pragma once

#include <array>
#include <chrono>
#include <string>
#include <string_view>

#include "apigw/core/metrics.h"

namespace apigw::server {

// Why a shadow copy got no answer (apigw_migration_shadow_errors_total{reason}).
enum class ShadowFailure : std::size_t { kNoEndpoint, kPoolFull, kConnect, kTimeout, kReset, kBadResponse };
inline constexpr std::size_t kShadowFailures = 6;
// Why a request in the shadow's share was not copied (apigw_migration_shadow_dropped_total{reason}).
enum class ShadowDrop : std::size_t { kMaxInFlight, kBodyTooLarge };
inline constexpr std::size_t kShadowDrops = 2;
// How an audit record came out (apigw_migration_audit_records_total{result}): both answers agree, they differ, or
// a side had no answer.
inline constexpr std::size_t kAuditResults = 3;

// The route label of requests no route answered (bad requests, 404, 405).
inline constexpr std::string_view kNoRoute = "-";

class RouteStats {
 public:
  RouteStats(core::MetricsRegistry& registry, std::string route);
  RouteStats(const RouteStats&) = delete;
  RouteStats& operator=(const RouteStats&) = delete;

  void record(std::string_view method, unsigned status, std::chrono::nanoseconds duration);
  // A request of a route with a split, served by the route's own upstream or by the split's
  // (apigw_migration_split_requests_total{route, side="route"|"split"}; created on first use).
  void record_split(bool moved);

  // The migration shadow's series, created on first use: copies sent, answered (by status class), failed, dropped,
  // and requests in the share that the ignore list kept from being copied; audit records by result
  // (0 match, 1 mismatch, 2 incomplete, as migration::AuditResult).
  void shadow_sent();
  void shadow_answered(unsigned status);
  void shadow_failed(ShadowFailure failure);
  void shadow_dropped(ShadowDrop drop);
  void shadow_ignored();
  void audited(std::size_t result);

 private:
  static constexpr std::size_t kMethodSlots = 8;  // GET HEAD POST PUT DELETE PATCH OPTIONS, other
  static constexpr std::size_t kStatusClasses = 5;

  core::Counter& create(std::size_t method, std::size_t status_class);
  // The counter `slot` points to, found or created (labelled with the route and `labels`) on first use.
  core::Counter& lazy(core::Counter*& slot, std::string_view name, std::string_view help, core::Labels labels);

  core::MetricsRegistry& registry_;
  const std::string route_;
  core::Histogram& duration_;
  std::array<core::Counter*, 2> split_{};  // by side: the route's upstream, the split's
  core::Counter* shadow_sent_ = nullptr;
  core::Counter* shadow_ignored_ = nullptr;
  std::array<core::Counter*, kStatusClasses> shadow_answered_{};
  std::array<core::Counter*, kShadowFailures> shadow_failed_{};
  std::array<core::Counter*, kShadowDrops> shadow_dropped_{};
  std::array<core::Counter*, kAuditResults> audited_{};
  std::array<std::array<core::Counter*, kStatusClasses>, kMethodSlots> requests_{};
};

// Requests on routes with `auth: required` or `auth: optional`, by what the auth stage decided, as
// apigw_auth_requests_total{decision}. Series are created up front: the set is small and fixed.
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

}  // namespace apigw::server
