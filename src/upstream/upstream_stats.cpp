// Upstream metric series (see upstream_stats.h).
#include "apigw/upstream/upstream_stats.h"

namespace apigw::upstream {

namespace {
constexpr std::array<const char*, kUpstreamErrorKinds> kErrorNames{"connect", "timeout",   "reset", "bad_response",
                                                                   "5xx",     "pool_full", "tls"};
}  // namespace

UpstreamStats::UpstreamStats(core::MetricsRegistry& registry, const std::string& upstream)
    : duration(registry.histogram("apigw_upstream_request_duration_seconds",
                                  "Time from sending a request to an upstream to reading its whole response",
                                  {{"upstream", upstream}})),
      pool_waits(registry.counter("apigw_upstream_pool_waits_total",
                                  "Requests that waited for a free upstream connection (max_connections reached)",
                                  {{"upstream", upstream}})),
      connections(registry.gauge("apigw_upstream_connections", "Open upstream connections, leased and idle",
                                 {{"upstream", upstream}})),
      registry_(registry),
      upstream_(upstream) {
  for (std::size_t i = 0; i < kUpstreamErrorKinds; ++i) {
    errors[i] = &registry.counter("apigw_upstream_errors_total", "Failed upstream attempts by kind",
                                  {{"upstream", upstream}, {"kind", kErrorNames[i]}});
  }
}

void UpstreamStats::handshake(TlsHandshake result) {
  static constexpr std::array<const char*, kTlsHandshakeResults> kResults{"full", "resumed", "failed"};
  core::Counter*& counter = handshakes_[static_cast<std::size_t>(result)];
  if (counter == nullptr) {
    counter = &registry_.counter("apigw_tls_handshakes_total", "TLS handshakes with upstreams by result",
                                 {{"upstream", upstream_}, {"result", kResults[static_cast<std::size_t>(result)]}});
  }
  counter->add();
}

}  // namespace apigw::upstream
