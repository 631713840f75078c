// One route's migration series on one worker, created on first use (labelled with the route): the split's
// requests by side, the shadow's copies (sent, answered by status class, failed, dropped, ignored) and the
// audit's records by result.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "apigw/core/metrics.h"

namespace apigw::migration {

// Why a shadow copy got no answer (apigw_migration_shadow_errors_total{reason}).
enum class ShadowFailure : std::size_t { kNoEndpoint, kPoolFull, kConnect, kTimeout, kReset, kBadResponse, kTls };
inline constexpr std::size_t kShadowFailures = 7;
// Why a request in the shadow's share was not copied (apigw_migration_shadow_dropped_total{reason}).
enum class ShadowDrop : std::size_t { kMaxInFlight, kBodyTooLarge };
inline constexpr std::size_t kShadowDrops = 2;
// How an audit record came out (apigw_migration_audit_records_total{result}): both answers agree, they differ, or
// a side had no answer.
inline constexpr std::size_t kAuditResults = 3;

class RouteMigrationStats {
 public:
  // `route` is the route label the series carry; the registry outlives the stats.
  RouteMigrationStats(core::MetricsRegistry& registry, std::string_view route) : registry_(registry), route_(route) {}
  RouteMigrationStats(const RouteMigrationStats&) = delete;
  RouteMigrationStats& operator=(const RouteMigrationStats&) = delete;

  // A request of a route with a split, served by the route's own upstream or by the split's
  // (apigw_migration_split_requests_total{route, side="route"|"split"}).
  void record_split(bool moved);
  // How that request was answered, once it was: a 5xx from the upstream
  // (apigw_migration_split_errors_total{route, side, kind="upstream_5xx"}), a 502, 503 or 504 apigw answered itself
  // because it got no answer (kind="gateway"), and its duration (apigw_migration_split_duration_seconds{route, side}).
  void record_outcome(bool moved, unsigned status, bool local_reply, std::chrono::nanoseconds duration);
  void shadow_sent();
  void shadow_answered(unsigned status);
  void shadow_failed(ShadowFailure failure);
  void shadow_dropped(ShadowDrop drop);
  // A request in the share that migration.shadow_ignore kept from being copied.
  void shadow_ignored();
  // An audit record, by result (0 match, 1 mismatch, 2 incomplete, as AuditResult).
  void audited(std::size_t result);

 private:
  static constexpr std::size_t kStatusClasses = 5;
  // The counter `slot` points to, found or created (labelled with the route and `labels`) on first use.
  core::Counter& lazy(core::Counter*& slot, std::string_view name, std::string_view help, core::Labels labels);

  core::MetricsRegistry& registry_;
  std::string route_;
  std::array<core::Counter*, 2> split_{};  // by side: the route's upstream, the split's
  std::array<core::Counter*, 2> upstream_errors_{};  // by side
  std::array<core::Counter*, 2> gateway_errors_{};   // by side
  std::array<core::Histogram*, 2> durations_{};      // by side
  core::Counter* shadow_sent_ = nullptr;
  core::Counter* shadow_ignored_ = nullptr;
  std::array<core::Counter*, kStatusClasses> shadow_answered_{};
  std::array<core::Counter*, kShadowFailures> shadow_failed_{};
  std::array<core::Counter*, kShadowDrops> shadow_dropped_{};
  std::array<core::Counter*, kAuditResults> audited_{};
};

}  // namespace apigw::migration
