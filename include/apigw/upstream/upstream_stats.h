// One upstream's metrics on one worker: what its pools and the forwarder count. Created per worker and upstream
// name (a reload that keeps the name keeps the series), updated by that worker only.
#pragma once

#include <array>
#include <cstddef>
#include <string>

#include "apigw/core/metrics.h"

namespace apigw::upstream {

enum class UpstreamError : std::size_t {
  kConnect,      // refused, unreachable or connect timed out
  kTimeout,      // no complete response within `timeout`
  kReset,        // the connection failed while the request or response was in transit
  kBadResponse,  // the response was not valid HTTP/1.1
  k5xx,          // the upstream answered with a 5xx status
  kPoolFull,     // no connection slot within connect_timeout
  kTls,          // the TLS handshake failed (the certificate check, or the peer's alert)
};
inline constexpr std::size_t kUpstreamErrorKinds = 7;

// How a TLS handshake with an upstream went (apigw_tls_handshakes_total{result}).
enum class TlsHandshake : std::size_t { kFull, kResumed, kFailed };
inline constexpr std::size_t kTlsHandshakeResults = 3;

struct UpstreamStats {
  UpstreamStats(core::MetricsRegistry& registry, const std::string& upstream);

  void error(UpstreamError kind) { errors[static_cast<std::size_t>(kind)]->add(); }
  // The series exist once the upstream's first handshake is counted: a plain HTTP upstream has none.
  void handshake(TlsHandshake result);

  core::Histogram& duration;   // request sent → response read, per attempt that got a response
  std::array<core::Counter*, kUpstreamErrorKinds> errors{};
  core::Counter& pool_waits;   // acquisitions that had to wait for a free slot
  core::Gauge& connections;    // open (leased + idle)

 private:
  core::MetricsRegistry& registry_;
  std::string upstream_;
  std::array<core::Counter*, kTlsHandshakeResults> handshakes_{};
};

}  // namespace apigw::upstream
