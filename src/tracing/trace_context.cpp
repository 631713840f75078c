// Trace Context headers, ids and sampling (see trace_context.h).
#include "apigw/tracing/trace_context.h"

#include <algorithm>
#include <cmath>

namespace apigw::tracing {

namespace {

constexpr std::string_view kHexDigits = "0123456789abcdef";
constexpr std::size_t kVersion00Size = 55;  // "00-" + 32 + "-" + 16 + "-" + 2

int lower_hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// `out.size()` bytes from twice as many lower-case hex digits.
template <std::size_t N>
bool read_hex(std::string_view text, std::array<std::uint8_t, N>& out) {
  if (text.size() != 2 * N) return false;
  for (std::size_t i = 0; i < N; ++i) {
    const int high = lower_hex_value(text[2 * i]);
    const int low = lower_hex_value(text[2 * i + 1]);
    if (high < 0 || low < 0) return false;
    out[i] = static_cast<std::uint8_t>(high * 16 + low);
  }
  return true;
}

template <std::size_t N>
std::string hex_of(const std::array<std::uint8_t, N>& bytes) {
  std::string text(2 * N, '0');
  for (std::size_t i = 0; i < N; ++i) {
    text[2 * i] = kHexDigits[bytes[i] >> 4];
    text[2 * i + 1] = kHexDigits[bytes[i] & 0x0f];
  }
  return text;
}

template <std::size_t N>
bool all_zero(const std::array<std::uint8_t, N>& bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; });
}

bool lcalpha(char c) { return c >= 'a' && c <= 'z'; }
bool digit(char c) { return c >= '0' && c <= '9'; }

// key = simple-key / multi-tenant-key; simple-key = lcalpha 0*255(lcalpha / DIGIT / "_" / "-"/ "*" / "/");
// multi-tenant-key = tenant-id "@" system-id, tenant-id = (lcalpha / DIGIT) 0*240(...), system-id = lcalpha
// 0*13(...).
bool valid_key_part(std::string_view part, std::size_t max_size, bool digit_first) {
  if (part.empty() || part.size() > max_size) return false;
  if (!lcalpha(part[0]) && !(digit_first && digit(part[0]))) return false;
  return std::all_of(part.begin() + 1, part.end(), [](char c) {
    return lcalpha(c) || digit(c) || c == '_' || c == '-' || c == '*' || c == '/';
  });
}

bool valid_key(std::string_view key) {
  const std::size_t at = key.find('@');
  if (at == std::string_view::npos) return valid_key_part(key, 256, false);
  return valid_key_part(key.substr(0, at), 241, true) && valid_key_part(key.substr(at + 1), 14, false);
}

// value = 0*255(chr) nblk-chr; chr = %x20 / nblk-chr; nblk-chr = %x21-2B / %x2D-3C / %x3E-7E
bool valid_value(std::string_view value) {
  if (value.empty() || value.size() > 256 || value.back() == ' ') return false;
  return std::all_of(value.begin(), value.end(), [](char c) {
    return c >= 0x20 && c <= 0x7e && c != ',' && c != '=';
  });
}

std::string_view trim_ows(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

}  // namespace

std::optional<TraceParent> parse_traceparent(std::string_view value) {
  value = trim_ows(value);
  if (value.size() < kVersion00Size) return std::nullopt;
  std::array<std::uint8_t, 1> version{};
  if (!read_hex(value.substr(0, 2), version) || version[0] == 0xff || value[2] != '-') return std::nullopt;
  if (version[0] == 0x00 && value.size() != kVersion00Size) return std::nullopt;
  // A later version: its first fields read as version 00's, and whatever it adds begins with '-'.
  if (value.size() > kVersion00Size && value[kVersion00Size] != '-') return std::nullopt;
  TraceParent parent;
  std::array<std::uint8_t, 1> flags{};
  if (!read_hex(value.substr(3, 32), parent.trace) || value[35] != '-' ||
      !read_hex(value.substr(36, 16), parent.parent) ||
      value[52] != '-' || !read_hex(value.substr(53, 2), flags)) {
    return std::nullopt;
  }
  if (all_zero(parent.trace) || all_zero(parent.parent)) return std::nullopt;
  parent.flags = flags[0];
  return parent;
}

bool valid_tracestate(std::string_view value) {
  if (value.size() > 512) return false;
  std::size_t members = 0;
  while (true) {
    const std::size_t comma = value.find(',');
    const std::string_view member = trim_ows(value.substr(0, comma));
    if (!member.empty()) {
      const std::size_t equals = member.find('=');
      if (equals == std::string_view::npos || !valid_key(member.substr(0, equals)) ||
          !valid_value(member.substr(equals + 1)) || ++members > 32) {
        return false;
      }
    }
    if (comma == std::string_view::npos) return true;
    value.remove_prefix(comma + 1);
  }
}

std::string format_traceparent(const TraceId& trace, const SpanId& span, std::uint8_t flags) {
  std::string text = "00-";
  text += hex_of(trace);
  text += '-';
  text += hex_of(span);
  text += '-';
  text += kHexDigits[flags >> 4];
  text += kHexDigits[flags & 0x0f];
  return text;
}

std::string to_hex(const TraceId& id) { return hex_of(id); }
std::string to_hex(const SpanId& id) { return hex_of(id); }

bool sampled_by_ratio(const TraceId& trace, double ratio) {
  if (ratio <= 0.0) return false;
  if (ratio >= 1.0) return true;
  std::uint64_t low = 0;
  for (std::size_t i = 8; i < 16; ++i) low = (low << 8) | trace[i];
  // ratio × 2^64, computed in long double so that small ratios keep their precision.
  const long double bound = static_cast<long double>(ratio) * 18446744073709551616.0L;
  return static_cast<long double>(low) < bound;
}

IdGenerator::IdGenerator() : random_(std::random_device{}()) {}

TraceId IdGenerator::trace_id() {
  TraceId id{};
  do {
    for (std::size_t i = 0; i < id.size(); i += 8) {
      std::uint64_t bits = random_();
      for (std::size_t j = 0; j < 8; ++j, bits >>= 8) id[i + j] = static_cast<std::uint8_t>(bits);
    }
  } while (all_zero(id));
  return id;
}

SpanId IdGenerator::span_id() {
  SpanId id{};
  do {
    std::uint64_t bits = random_();
    for (std::size_t j = 0; j < 8; ++j, bits >>= 8) id[j] = static_cast<std::uint8_t>(bits);
  } while (all_zero(id));
  return id;
}

}  // namespace apigw::tracing
