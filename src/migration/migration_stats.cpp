// A route's migration series (see migration_stats.h).
#include "apigw/migration/migration_stats.h"

namespace apigw::migration {
namespace {
constexpr std::array<const char*, 5> kClasses{"1xx", "2xx", "3xx", "4xx", "5xx"};
}  // namespace

core::Counter& RouteMigrationStats::lazy(core::Counter*& slot, std::string_view name, std::string_view help,
                                core::Labels labels) {
  if (slot == nullptr) {
    labels.insert(labels.begin(), {"route", route_});
    slot = &registry_.counter(name, help, std::move(labels));
  }
  return *slot;
}

void RouteMigrationStats::record_split(bool moved) {
  lazy(split_[moved ? 1 : 0], "apigw_migration_split_requests_total",
       "Requests of routes with a split, by the side that served them", {{"side", moved ? "split" : "route"}})
      .add();
}

void RouteMigrationStats::record_outcome(bool moved, unsigned status, bool local_reply,
                                         std::chrono::nanoseconds duration) {
  const std::size_t side = moved ? 1 : 0;
  const char* label = moved ? "split" : "route";
  constexpr std::string_view kErrorsHelp =
      "Requests of routes with a split answered with an error, by side: a 5xx from the upstream, or a 502, 503 or "
      "504 apigw answered itself";
  if (status >= 500 && !local_reply) {
    lazy(upstream_errors_[side], "apigw_migration_split_errors_total", kErrorsHelp,
         {{"side", label}, {"kind", "upstream_5xx"}})
        .add();
  } else if (local_reply && (status == 502 || status == 503 || status == 504)) {
    lazy(gateway_errors_[side], "apigw_migration_split_errors_total", kErrorsHelp,
         {{"side", label}, {"kind", "gateway"}})
        .add();
  }
  if (durations_[side] == nullptr) {
    durations_[side] = &registry_.histogram("apigw_migration_split_duration_seconds",
                                            "Requests of routes with a split, from head to the end of the answer, by "
                                            "side",
                                            {{"route", route_}, {"side", label}});
  }
  durations_[side]->observe(duration);
}

void RouteMigrationStats::shadow_sent() {
  lazy(shadow_sent_, "apigw_migration_shadow_requests_total", "Requests copied to the shadow side, by route", {})
      .add();
}

void RouteMigrationStats::shadow_answered(unsigned status) {
  const std::size_t status_class = status >= 100 && status < 600 ? status / 100 - 1 : 4;
  lazy(shadow_answered_[status_class], "apigw_migration_shadow_responses_total",
       "Shadow copies the shadow side answered, by route and status class", {{"status", kClasses[status_class]}})
      .add();
}

void RouteMigrationStats::shadow_failed(ShadowFailure failure) {
  constexpr std::array<const char*, kShadowFailures> kReasons{"no_endpoint", "pool_full", "connect", "timeout",
                                                              "reset",       "bad_response", "tls"};
  const auto index = static_cast<std::size_t>(failure);
  lazy(shadow_failed_[index], "apigw_migration_shadow_errors_total",
       "Shadow copies that got no answer, by route and reason", {{"reason", kReasons[index]}})
      .add();
}

void RouteMigrationStats::shadow_dropped(ShadowDrop drop) {
  constexpr std::array<const char*, kShadowDrops> kReasons{"max_in_flight", "body_too_large"};
  const auto index = static_cast<std::size_t>(drop);
  lazy(shadow_dropped_[index], "apigw_migration_shadow_dropped_total",
       "Requests in the shadow's share that were not copied, by route and reason", {{"reason", kReasons[index]}})
      .add();
}

void RouteMigrationStats::shadow_ignored() {
  lazy(shadow_ignored_, "apigw_migration_shadow_ignored_total",
       "Requests in the shadow's share that migration.shadow_ignore kept from being copied, by route", {})
      .add();
}

void RouteMigrationStats::audited(std::size_t result) {
  constexpr std::array<const char*, kAuditResults> kResults{"match", "mismatch", "incomplete"};
  lazy(audited_[result], "apigw_migration_audit_records_total",
       "Audit records of shadowed requests, by route and how the two answers compared", {{"result", kResults[result]}})
      .add();
}

}  // namespace apigw::migration
