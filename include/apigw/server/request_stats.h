// Client requests counted on one worker: by route, method and status class, with a duration histogram by route.
// A route's series are found once per reload (by route name, so they survive reloads) and the counters for a
// method and status class are created on first use.
#pragma once

#include <array>
#include <chrono>
#include <string>
#include <string_view>

#include "apigw/core/metrics.h"
#include "apigw/migration/migration_stats.h"

namespace apigw::server {

// The route label of requests no route answered (bad requests, 404, 405).
inline constexpr std::string_view kNoRoute = "-";

class RouteStats {
 public:
  RouteStats(core::MetricsRegistry& registry, std::string route);
  RouteStats(const RouteStats&) = delete;
  RouteStats& operator=(const RouteStats&) = delete;

  void record(std::string_view method, unsigned status, std::chrono::nanoseconds duration);
  // The route's split, shadow and audit series.
  migration::RouteMigrationStats& migration() { return migration_; }

 private:
  static constexpr std::size_t kMethodSlots = 8;  // GET HEAD POST PUT DELETE PATCH OPTIONS, other
  static constexpr std::size_t kStatusClasses = 5;

  core::Counter& create(std::size_t method, std::size_t status_class);

  core::MetricsRegistry& registry_;
  const std::string route_;
  core::Histogram& duration_;
  migration::RouteMigrationStats migration_;
  std::array<std::array<core::Counter*, kStatusClasses>, kMethodSlots> requests_{};
};

}  // namespace apigw::server
