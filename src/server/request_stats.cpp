// Request metric series (see request_stats.h).
#include "apigw/server/request_stats.h"

namespace apigw::server {
namespace {

constexpr std::array<std::string_view, 8> kMethods{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS",
                                                   "other"};
constexpr std::array<const char*, 5> kClasses{"1xx", "2xx", "3xx", "4xx", "5xx"};

std::size_t method_slot(std::string_view method) {
  for (std::size_t i = 0; i + 1 < kMethods.size(); ++i) {
    if (kMethods[i] == method) return i;
  }
  return kMethods.size() - 1;
}

}  // namespace

RouteStats::RouteStats(core::MetricsRegistry& registry, std::string route)
    : registry_(registry),
      route_(std::move(route)),
      duration_(registry.histogram("apigw_request_duration_seconds",
                                   "Time from a request's head to the end of its response, by route",
                                   {{"route", route_}})) {}

core::Counter& RouteStats::create(std::size_t method, std::size_t status_class) {
  core::Counter& counter = registry_.counter(
      "apigw_requests_total", "Client requests answered, by route, method and status class",
      {{"route", route_}, {"method", std::string(kMethods[method])}, {"status", kClasses[status_class]}});
  requests_[method][status_class] = &counter;
  return counter;
}

void RouteStats::record(std::string_view method, unsigned status, std::chrono::nanoseconds duration) {
  const std::size_t slot = method_slot(method);
  const std::size_t status_class = status >= 100 && status < 600 ? status / 100 - 1 : 4;
  core::Counter* counter = requests_[slot][status_class];
  (counter ? *counter : create(slot, status_class)).add();
  duration_.observe(duration);
}

core::Counter& RouteStats::lazy(core::Counter*& slot, std::string_view name, std::string_view help,
                                core::Labels labels) {
  if (slot == nullptr) {
    labels.insert(labels.begin(), {"route", route_});
    slot = &registry_.counter(name, help, std::move(labels));
  }
  return *slot;
}

void RouteStats::record_split(bool moved) {
  lazy(split_[moved ? 1 : 0], "apigw_migration_split_requests_total",
       "Requests of routes with a split, by the side that served them", {{"side", moved ? "split" : "route"}})
      .add();
}

void RouteStats::shadow_sent() {
  lazy(shadow_sent_, "apigw_migration_shadow_requests_total", "Requests copied to the shadow side, by route", {})
      .add();
}

void RouteStats::shadow_answered(unsigned status) {
  const std::size_t status_class = status >= 100 && status < 600 ? status / 100 - 1 : 4;
  lazy(shadow_answered_[status_class], "apigw_migration_shadow_responses_total",
       "Shadow copies the shadow side answered, by route and status class", {{"status", kClasses[status_class]}})
      .add();
}

void RouteStats::shadow_failed(ShadowFailure failure) {
  constexpr std::array<const char*, kShadowFailures> kReasons{"no_endpoint", "pool_full", "connect",
                                                              "timeout",     "reset",     "bad_response"};
  const auto index = static_cast<std::size_t>(failure);
  lazy(shadow_failed_[index], "apigw_migration_shadow_errors_total",
       "Shadow copies that got no answer, by route and reason", {{"reason", kReasons[index]}})
      .add();
}

void RouteStats::shadow_dropped(ShadowDrop drop) {
  constexpr std::array<const char*, kShadowDrops> kReasons{"max_in_flight", "body_too_large"};
  const auto index = static_cast<std::size_t>(drop);
  lazy(shadow_dropped_[index], "apigw_migration_shadow_dropped_total",
       "Requests in the shadow's share that were not copied, by route and reason", {{"reason", kReasons[index]}})
      .add();
}

void RouteStats::shadow_ignored() {
  lazy(shadow_ignored_, "apigw_migration_shadow_ignored_total",
       "Requests in the shadow's share that migration.shadow_ignore kept from being copied, by route", {})
      .add();
}

void RouteStats::audited(std::size_t result) {
  constexpr std::array<const char*, kAuditResults> kResults{"match", "mismatch", "incomplete"};
  lazy(audited_[result], "apigw_migration_audit_records_total",
       "Audit records of shadowed requests, by route and how the two answers compared", {{"result", kResults[result]}})
      .add();
}

AuthStats::AuthStats(core::MetricsRegistry& registry) {
  constexpr std::array<const char*, kDecisions> kNames{"authenticated", "anonymous", "missing",
                                                       "malformed",     "invalid",   "unavailable"};
  for (std::size_t i = 0; i < kDecisions; ++i) {
    counters_[i] = &registry.counter("apigw_auth_requests_total",
                                     "Requests on routes with auth, by the auth stage's decision",
                                     {{"decision", kNames[i]}});
  }
}

}  // namespace apigw::server
