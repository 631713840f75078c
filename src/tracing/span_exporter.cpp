// The OTLP/HTTP span exporter (see span_exporter.h).
#include "apigw/tracing/span_exporter.h"

#include <unistd.h>

#include <array>

#include <fmt/format.h>

namespace apigw::tracing {
namespace {

sink::Format span_format(std::function<std::string(const std::vector<std::string>&)> encode) {
  sink::Format format;
  format.name = "trace exporter";
  format.content_type = "application/json";
  format.user_agent = "apigw-otlp";
  format.max_pending = 2048;
  format.batch = SpanExporter::kBatchSpans;
  format.linger = SpanExporter::kLinger;
  format.timeout = std::chrono::seconds(2);
  format.encode = std::move(encode);
  return format;
}

std::string instance_id() {
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
  return fmt::format("{}:{}", host.data(), ::getpid());
}

}  // namespace

SpanExporter::SpanExporter()
    : resource_(std::make_shared<const Resource>(Resource{"apigw", instance_id()})),
      sink_(span_format([this](const std::vector<std::string>& spans) { return encode(spans); })) {}

std::string SpanExporter::configure(const config::TracingConfig& config, std::shared_ptr<net::TlsClientContext> tls) {
  {
    std::lock_guard lock(resource_mutex_);
    if (resource_->service_name != config.service_name) {
      resource_ = std::make_shared<const Resource>(Resource{config.service_name, resource_->instance_id});
    }
  }
  sink_.set_limits(config.queue, std::chrono::duration_cast<std::chrono::milliseconds>(config.timeout));
  const std::string target = config.enabled ? config.export_url : std::string();
  if (target == target_ && config.tls == tls_config_) return {};
  target_ = target;
  tls_config_ = config.tls;
  return sink_.reopen(target, std::move(tls));
}

void SpanExporter::export_span(const Span& span) {
  if (exporting()) sink_.write(span_json(span));
}

std::string SpanExporter::encode(const std::vector<std::string>& spans) {
  std::shared_ptr<const Resource> resource;
  {
    std::lock_guard lock(resource_mutex_);
    resource = resource_;
  }
  return export_request_json(resource->service_name, APIGW_VERSION, resource->instance_id, spans);
}

}  // namespace apigw::tracing
