// Spans on their way to an OpenTelemetry collector: encoded by the thread that finished them, and POSTed to
// `tracing.otlp` + /v1/traces (OTLP/HTTP, JSON encoding) in batches by a thread of the exporter's own. Nobody waits
// on the collector: past `tracing.queue` spans waiting, new ones are dropped and counted, and a collector that
// fails or is slow costs spans, never a response's time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "apigw/config/config.h"
#include "apigw/sink/record_sink.h"
#include "apigw/tracing/span.h"

namespace apigw::net {
class TlsClientContext;
}

namespace apigw::tracing {

class SpanExporter {
 public:
  static constexpr std::size_t kBatchSpans = 512;             // at most this many spans per POST
  static constexpr std::chrono::milliseconds kLinger{1000};  // a short batch waits this long for more

  // Off until configure() names a collector.
  SpanExporter();
  SpanExporter(const SpanExporter&) = delete;
  SpanExporter& operator=(const SpanExporter&) = delete;

  // Main thread: exports to `config.export_url` from now on (with `tls` for an https collector), or stops
  // exporting when tracing is off or has no collector. Spans already waiting go to the new collector. Returns ""
  // when the collector is usable, else a one-line reason to log (spans then count as failed until it works).
  std::string configure(const config::TracingConfig& config, std::shared_ptr<net::TlsClientContext> tls);

  // Any thread: whether spans are wanted (a collector is configured).
  bool exporting() const { return sink_.enabled(); }
  // Any thread: hands a finished span over; never waits on the collector.
  void export_span(const Span& span);
  // Any thread: waits until every span handed over before the call was exported or failed.
  void flush() { sink_.flush(); }

  // Totals since start, as apigw_tracing_spans_total counts them.
  std::uint64_t exported() const { return sink_.written(); }
  std::uint64_t dropped() const { return sink_.dropped(); }
  std::uint64_t failed() const { return sink_.failed(); }

 private:
  // The resource the spans are from, read by the writer thread for each batch.
  struct Resource {
    std::string service_name = "apigw";
    std::string instance_id;  // host name and process id
  };
  std::string encode(const std::vector<std::string>& spans);

  std::mutex resource_mutex_;
  std::shared_ptr<const Resource> resource_;  // under resource_mutex_
  std::string target_;                        // main thread: the collector exported to now, "" for none
  std::optional<config::TlsClientConfig> tls_config_;  // main thread: with target_
  sink::RecordSink sink_;                     // last: its writer thread uses the members above
};

}  // namespace apigw::tracing
