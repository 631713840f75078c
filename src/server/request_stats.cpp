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
                                   {{"route", route_}})),
      migration_(registry, route_) {}

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

}  // namespace apigw::server
