// Upstream metric series (see upstream_stats.h).
#include "apigw/upstream/upstream_stats.h"

namespace apigw::upstream {

namespace {
constexpr std::array<const char*, kUpstreamErrorKinds> kErrorNames{"connect", "timeout", "reset",
                                                                   "bad_response", "5xx", "pool_full"};
}  // namespace

UpstreamStats::UpstreamStats(core::MetricsRegistry& registry, const std::string& upstream)
    : duration(registry.histogram("apigw_upstream_request_duration_seconds",
                                  "Time from sending a request to an upstream to reading its whole response",
                                  {{"upstream", upstream}})),
      pool_waits(registry.counter("apigw_upstream_pool_waits_total",
                                  "Requests that waited for a free upstream connection (max_connections reached)",
                                  {{"upstream", upstream}})),
      connections(registry.gauge("apigw_upstream_connections", "Open upstream connections, leased and idle",
                                 {{"upstream", upstream}})) {
  for (std::size_t i = 0; i < kUpstreamErrorKinds; ++i) {
    errors[i] = &registry.counter("apigw_upstream_errors_total", "Failed upstream attempts by kind",
                                  {{"upstream", upstream}, {"kind", kErrorNames[i]}});
  }
}

}  // namespace apigw::upstream
