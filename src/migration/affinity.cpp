// Affinity buckets (see affinity.h). Nothing here may depend on the process, the worker or the config generation:
// a bucket must come out the same everywhere, or users would move back and forth between the two sides.
#include "apigw/migration/affinity.h"

#include <algorithm>

#include "apigw/http/cookie.h"
#include "apigw/http/text.h"

namespace apigw::migration {
namespace {

constexpr std::size_t kMaxNumericDigits = 19;  // 9999999999999999999 < 2^64, so any such key fits a uint64_t
constexpr std::uint64_t kFnvOffsetBasis = 14695981039346656037ULL;
constexpr std::uint64_t kFnvPrime = 1099511628211ULL;

bool numeric(std::string_view key) {
  return !key.empty() && key.size() <= kMaxNumericDigits &&
         std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::uint64_t fnv1a_64(std::string_view key) {
  std::uint64_t hash = kFnvOffsetBasis;
  for (const char c : key) {
    hash ^= static_cast<unsigned char>(c);
    hash *= kFnvPrime;
  }
  return hash;
}

// MurmurHash3's 64-bit finaliser: every input bit reaches every output bit, which FNV-1a alone does not do for
// its low bits (and `mod buckets` reads mostly those).
std::uint64_t mix(std::uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

// The first non-empty (trimmed) value of header `name`, over all its lines.
std::optional<std::string> header_key(const boost::beast::http::fields& headers, std::string_view name) {
  for (auto [field, end] = headers.equal_range(name); field != end; ++field) {
    const std::string_view value = http::trim_ows(field->value());
    if (!value.empty()) return std::string(value);
  }
  return std::nullopt;
}

// The first non-empty value of cookie `name`, over all Cookie lines.
std::optional<std::string> cookie_key(const boost::beast::http::fields& headers, std::string_view name) {
  for (auto [field, end] = headers.equal_range(boost::beast::http::field::cookie); field != end; ++field) {
    const auto value = http::cookie_value(field->value(), name);
    if (value && !value->empty()) return std::string(*value);
  }
  return std::nullopt;
}

}  // namespace

std::uint32_t bucket_of(std::string_view key, std::uint32_t buckets) {
  if (buckets <= 1) return 0;  // also keeps a zero (never valid) from dividing by zero
  std::uint64_t value = 0;
  if (numeric(key)) {
    for (const char c : key) value = value * 10 + static_cast<std::uint64_t>(c - '0');
  } else {
    value = mix(fnv1a_64(key));
  }
  return static_cast<std::uint32_t>(value % buckets);
}

std::optional<std::string> affinity_key(std::span<const config::AffinitySource> sources, std::string_view user_id,
                                        const boost::beast::http::fields& headers, std::string_view client_address) {
  using Kind = config::AffinitySource::Kind;
  for (const config::AffinitySource& source : sources) {
    std::optional<std::string> key;
    switch (source.kind) {
      case Kind::kUserId:
        if (!user_id.empty()) key = std::string(user_id);
        break;
      case Kind::kHeader:
        key = header_key(headers, source.name);
        break;
      case Kind::kCookie:
        key = cookie_key(headers, source.name);
        break;
      case Kind::kClientIp:
        if (!client_address.empty()) key = std::string(client_address);
        break;
    }
    if (key) return key;
  }
  return std::nullopt;
}

}  // namespace apigw::migration
