// The `tracing` section (see tracing_section.h).
#include "tracing_section.h"

#include <algorithm>
#include <array>
#include <charconv>

#include "apigw/config/audit_sink_target.h"
#include "tls_section.h"
#include "value_parsers.h"

namespace apigw::config {
namespace {

constexpr std::array<std::string_view, 6> kTracingKeys{"sample", "otlp", "service_name", "queue", "timeout", "tls"};
constexpr std::size_t kMaxServiceNameBytes = 128;
constexpr unsigned kMaxSpanQueue = 1'000'000;
constexpr core::Duration kMaxExportTimeout = std::chrono::minutes(1);
constexpr char kTracesPath[] = "/v1/traces";  // OTLP/HTTP's path for traces

std::optional<std::string> parse_service_name(std::string_view text, std::string& why) {
  const bool printable = std::all_of(text.begin(), text.end(), [](char c) { return c > ' ' && c < 0x7f; });
  if (!text.empty() && text.size() <= kMaxServiceNameBytes && printable) return std::string(text);
  why = "expected a name of 1 to 128 visible ASCII characters, got " + in_quotes(text);
  return std::nullopt;
}

std::optional<core::Duration> parse_export_timeout(std::string_view text, std::string& why) {
  auto timeout = parse_positive_duration(text, why);
  if (timeout && *timeout > kMaxExportTimeout) {
    why = "at most 1m, got " + std::string(text);
    return std::nullopt;
  }
  return timeout;
}

}  // namespace

std::optional<std::string> parse_sample_percent(std::string_view text, std::string& why) {
  if (!text.ends_with('%')) {
    why = "expected a percent such as 1%, 0.5% or 100%, got " + in_quotes(text);
    return std::nullopt;
  }
  std::string number_why;
  if (auto number = parse_percent(text.substr(0, text.size() - 1), number_why)) return number;
  why = "expected a percent from 0% to 100% such as 1% or 0.5%, got " + in_quotes(text);
  return std::nullopt;
}

std::optional<std::string> parse_otlp_base(std::string_view text, std::string& why) {
  const bool https = text.starts_with("https://");
  if (!https && !text.starts_with("http://")) {
    why = "expected the collector's OTLP/HTTP base URL, http://host:port or https://host:port, got " +
          in_quotes(text);
    return std::nullopt;
  }
  std::string base(text);
  while (base.ends_with('/')) base.pop_back();
  std::string target_why;
  if (!parse_audit_sink_target(base + kTracesPath, target_why)) {
    why = "bad collector URL " + in_quotes(text) + ": " + target_why;
    return std::nullopt;
  }
  return base;
}

void read_tracing_section(YamlReader& reader, const Field& field, TracingConfig& tracing) {
  tracing.enabled = true;
  std::optional<Field> tls_field;
  reader.for_each_field(field, kTracingKeys, [&](std::string_view key, const Field& value) {
    if (key == "sample") {
      if (auto sample = reader.value(value, parse_sample_percent)) {
        tracing.sample = *sample;
        double ratio = 0;
        std::from_chars(sample->data(), sample->data() + sample->size(), ratio);
        tracing.ratio = ratio / 100;
      }
      return;
    }
    if (key == "otlp") {
      if (auto base = reader.value(value, parse_otlp_base)) {
        tracing.export_url = *base + kTracesPath;
        tracing.otlp = std::move(*base);
      }
      return;
    }
    if (key == "service_name") return assign(tracing.service_name, reader.value(value, parse_service_name));
    if (key == "queue") return assign(tracing.queue, reader.value(value, whole_number(1, kMaxSpanQueue)));
    if (key == "timeout") return assign(tracing.timeout, reader.value(value, parse_export_timeout));
    tls_field = value;
    tracing.tls = read_tls_client(reader, value);
  });
  // An https collector without a tls block is verified against the system's trust anchors.
  const bool https = tracing.export_url.starts_with("https://");
  if (tls_field && !https) {
    reader.error(tls_field->key, tls_field->label + ": applies to an https:// otlp collector only");
  } else if (https && !tls_field) {
    tracing.tls.emplace();
  }
}

}  // namespace apigw::config
