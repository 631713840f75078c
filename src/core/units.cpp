// Parses the config's duration ("250ms", "5s") and size ("16KiB") notations into numbers.
// Pure and strict: no whitespace, signs, fractions or unknown units, and overflow is an error, not a wrap.
#include "apigw/core/units.h"

#include <array>
#include <limits>

namespace apigw::core {
namespace {

struct Unit {
  std::string_view suffix;
  std::uint64_t factor;
};

// Longest suffixes first, so "ms" is not read as "m" followed by garbage.
constexpr std::array<Unit, 4> kDurationUnits{{{"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000}}};

constexpr std::array<Unit, 6> kSizeUnits{{{"KiB", 1ULL << 10},
                                          {"MiB", 1ULL << 20},
                                          {"GiB", 1ULL << 30},
                                          {"KB", 1ULL << 10},
                                          {"MB", 1ULL << 20},
                                          {"GB", 1ULL << 30}}};

// All of `digits` must be decimal digits, at least one; nullopt on overflow.
std::optional<std::uint64_t> parse_digits(std::string_view digits) {
  if (digits.empty()) return std::nullopt;
  std::uint64_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

std::optional<std::uint64_t> multiply(std::uint64_t value, std::uint64_t factor) {
  if (factor != 0 && value > std::numeric_limits<std::uint64_t>::max() / factor) return std::nullopt;
  return value * factor;
}

// Splits "250ms" into 250 and the unit's factor; nullopt if the suffix is not one of `units`.
template <std::size_t N>
std::optional<std::uint64_t> parse_with_unit(std::string_view text, const std::array<Unit, N>& units) {
  for (const Unit& unit : units) {
    if (text.size() > unit.suffix.size() && text.ends_with(unit.suffix)) {
      const auto number = parse_digits(text.substr(0, text.size() - unit.suffix.size()));
      if (!number) continue;  // "5ms" must not fail on the "s" unit before trying "ms"
      return multiply(*number, unit.factor);
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<Duration> parse_duration(std::string_view text) {
  if (text == "0") return Duration::zero();
  const auto millis = parse_with_unit(text, kDurationUnits);
  if (!millis || *millis > static_cast<std::uint64_t>(std::numeric_limits<Duration::rep>::max())) {
    return std::nullopt;
  }
  return Duration(static_cast<Duration::rep>(*millis));
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  if (const auto bytes = parse_digits(text)) return bytes;
  return parse_with_unit(text, kSizeUnits);
}

}  // namespace apigw::core
