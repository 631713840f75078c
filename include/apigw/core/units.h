// Durations and sizes as written in the config ("250ms", "5s", "16KiB"). Pure parsing, no I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace apigw::core {

using Duration = std::chrono::milliseconds;

// "250ms", "5s", "2m", "1h"; a bare "0" is zero. Returns nullopt on anything else or on overflow.
std::optional<Duration> parse_duration(std::string_view text);

// "512", "16KiB", "8MiB", "1GiB" (also "KB"/"MB"/"GB" meaning the same powers of two). Returns nullopt otherwise.
std::optional<std::uint64_t> parse_size(std::string_view text);

}  // namespace apigw::core
