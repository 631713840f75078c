// Reading the `tracing` section: the sampling percent, the OpenTelemetry collector spans are exported to, and how
// the export behaves. Private to src/config.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "apigw/config/config.h"
#include "yaml_reader.h"

namespace apigw::config {

void read_tracing_section(YamlReader& reader, const Field& field, TracingConfig& tracing);

// "1%", "0.5%", "100%": a percent as parse_percent takes it, then '%'; the number without '%'.
std::optional<std::string> parse_sample_percent(std::string_view text, std::string& why);
// "http://host:port" or "https://host:port", with an optional path prefix, as written without a trailing '/':
// spans are POSTed to it with "/v1/traces" after it (OTLP/HTTP's path for traces).
std::optional<std::string> parse_otlp_base(std::string_view text, std::string& why);

}  // namespace apigw::config
