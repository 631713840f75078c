// Scalar-to-value parsers for the config: durations, sizes, addresses, CIDRs, names, methods, hosts.
// Strict on purpose: a typo must fail the load with a reason, never turn into a surprising default.
#include "value_parsers.h"

#include <algorithm>
#include <array>
#include <numeric>

#include "apigw/http/client_address.h"
#include "apigw/http/text.h"

namespace apigw::config {
namespace {

constexpr std::array<std::string_view, 7> kLogLevels{"trace", "debug", "info", "warn", "error", "critical", "off"};
constexpr std::size_t kMaxHostNameLength = 253;
constexpr std::size_t kMaxLabelLength = 63;


bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
bool is_alnum(char c) { return is_digit(c) || is_lower(c) || is_upper(c); }

std::string upper_case(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = is_lower(c) ? static_cast<char>(c - 'a' + 'A') : c;
  return out;
}

bool all_digits(std::string_view text) { return !text.empty() && std::all_of(text.begin(), text.end(), is_digit); }

// A size as a config would write it: "16MiB", "1KiB", "1000".
std::string size_text(std::uint64_t bytes) {
  constexpr std::uint64_t kKiB = 1024;
  if (bytes != 0 && bytes % (kKiB * kKiB) == 0) return std::to_string(bytes / (kKiB * kKiB)) + "MiB";
  if (bytes != 0 && bytes % kKiB == 0) return std::to_string(bytes / kKiB) + "KiB";
  return std::to_string(bytes);
}

std::optional<std::uint16_t> parse_port(std::string_view text) {
  if (!all_digits(text) || text.size() > 5) return std::nullopt;
  unsigned port = 0;
  for (char c : text) port = port * 10 + static_cast<unsigned>(c - '0');
  if (port < 1 || port > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(port);
}

// Labels of letters, digits, '-' and '_' separated by single dots; no label starts or ends with '-'.
bool is_host_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxHostNameLength) return false;
  std::size_t begin = 0;
  while (begin <= name.size()) {
    std::size_t end = name.find('.', begin);
    if (end == std::string_view::npos) end = name.size();
    const std::string_view label = name.substr(begin, end - begin);
    if (label.empty() || label.size() > kMaxLabelLength || label.front() == '-' || label.back() == '-') return false;
    if (!std::all_of(label.begin(), label.end(), [](char c) { return is_alnum(c) || c == '-' || c == '_'; })) {
      return false;
    }
    begin = end + 1;
  }
  return true;
}

// Shared by listen and endpoints: splits host and port and checks the host's form.
std::optional<Endpoint> parse_host_port(std::string_view text, bool allow_names, std::string& why) {
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      why = "expected [IPv6]:port, got " + in_quotes(text);
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    if (http::parse_ipv6(host).size == 0) {
      why = in_quotes(host) + " is not a valid IPv6 address";
      return std::nullopt;
    }
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
      why = "expected host:port, got " + in_quotes(text);
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      why = "an IPv6 address must be written in brackets, e.g. [::1]:8080, got " + in_quotes(text);
      return std::nullopt;
    }
    const bool looks_ipv4 = std::all_of(host.begin(), host.end(), [](char c) { return is_digit(c) || c == '.'; });
    if (looks_ipv4 && http::parse_ipv4(host).size == 0) {
      why = in_quotes(host) + " is not a valid IPv4 address";
      return std::nullopt;
    }
    if (!looks_ipv4 && (!allow_names || !is_host_name(host))) {
      why = allow_names ? in_quotes(host) + " is not a valid host name or IP address"
                        : "expected an IP address (IPv4, or IPv6 in brackets), got " + in_quotes(host);
      return std::nullopt;
    }
  }
  const auto port_number = parse_port(port);
  if (!port_number) {
    why = "port must be a number from 1 to 65535, got " + in_quotes(port);
    return std::nullopt;
  }
  return Endpoint{std::string(host), *port_number};
}

// Headers apigw writes or drops itself, and those that carry credentials, framing or routing.
bool is_managed_header(std::string_view lower) {
  static constexpr std::array<std::string_view, 14> kManaged{
      "host",           "content-length",  "transfer-encoding", "connection", "keep-alive", "upgrade", "te",
      "trailer",        "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-real-ip", "x-request-id",
      "authorization"};
  return std::find(kManaged.begin(), kManaged.end(), lower) != kManaged.end() || lower.starts_with("proxy-");
}

// A header name apigw adds to requests it sends upstream; `apigw_own` allows the X-Apigw- prefix.
std::optional<std::string> parse_added_header(std::string_view text, bool apigw_own, std::string& why) {
  auto name = parse_header_name(text, why);
  const std::string lower = http::lower_case(text);
  if (name && (is_managed_header(lower) || (!apigw_own && lower.starts_with("x-apigw-")))) {
    why = in_quotes(text) + " is a header apigw manages itself; choose another name";
    return std::nullopt;
  }
  return name;
}

// The digits of "25" or "0.010" before and after the point; the fraction without its trailing zeros.
struct DecimalParts {
  std::string_view whole;
  std::string_view fraction;
};

std::optional<DecimalParts> decimal_parts(std::string_view text) {
  const auto point = text.find('.');
  DecimalParts parts{text.substr(0, point), point == std::string_view::npos ? "" : text.substr(point + 1)};
  if (!all_digits(parts.whole) || (point != std::string_view::npos && !all_digits(parts.fraction))) {
    return std::nullopt;
  }
  parts.fraction = parts.fraction.substr(0, parts.fraction.find_last_not_of('0') + 1);
  return parts;
}

// With at most 1,000,000 buckets no whole share needs more decimals than this: a fraction ending in a digit other
// than 0 has 2^(decimals + 2) or 5^(decimals + 2) in its reduced denominator, which must divide buckets.
constexpr std::size_t kMaxShareDecimals = 17;

// 100 / buckets, the smallest percent step: exact when its decimals end (buckets made of 2s and 5s only), else
// its first six decimals.
struct PercentStep {
  std::string text;
  std::size_t decimals = 0;
  bool exact = true;
};

PercentStep percent_step(std::uint32_t buckets) {
  std::string fraction;
  std::uint64_t rest = 100 % buckets;
  while (rest != 0 && fraction.size() < kMaxShareDecimals + 3) {
    rest *= 10;
    fraction += static_cast<char>('0' + rest / buckets);
    rest %= buckets;
  }
  if (rest != 0) fraction.resize(6);
  const std::string whole = std::to_string(100 / buckets);
  return {fraction.empty() ? whole : whole + "." + fraction, fraction.size(), rest == 0};
}

}  // namespace

std::optional<core::Duration> parse_duration_value(std::string_view text, std::string& why) {
  const auto duration = core::parse_duration(text);
  if (!duration) why = "bad duration " + in_quotes(text) + " (expected e.g. 250ms, 5s, 2m, 1h)";
  return duration;
}

std::optional<core::Duration> parse_positive_duration(std::string_view text, std::string& why) {
  const auto duration = parse_duration_value(text, why);
  if (duration && duration->count() == 0) {
    why = "must be greater than zero";
    return std::nullopt;
  }
  return duration;
}

std::optional<std::uint64_t> parse_positive_size(std::string_view text, std::string& why) {
  const auto size = core::parse_size(text);
  if (!size) {
    why = "bad size " + in_quotes(text) + " (expected bytes, or e.g. 16KiB, 8MiB, 1GiB)";
  } else if (*size == 0) {
    why = "must be greater than zero";
    return std::nullopt;
  }
  return size;
}

std::optional<std::uint64_t> parse_size_between(std::string_view text, std::uint64_t min, std::uint64_t max,
                                                std::string& why) {
  const auto size = parse_positive_size(text, why);
  if (size && (*size < min || *size > max)) {
    why = "must be from " + size_text(min) + " to " + size_text(max) + ", got " + std::string(text);
    return std::nullopt;
  }
  return size;
}

std::optional<unsigned> parse_whole_number(std::string_view text, unsigned min, unsigned max, std::string& why) {
  const std::string range = "from " + std::to_string(min) + " to " + std::to_string(max);
  if (!all_digits(text)) {
    why = "expected a whole number " + range + ", got " + in_quotes(text);
    return std::nullopt;
  }
  const std::string_view significant = text.substr(std::min(text.find_first_not_of('0'), text.size() - 1));
  unsigned long long value = 0;
  if (significant.size() <= 10) value = std::stoull(std::string(significant));
  if (significant.size() > 10 || value < min || value > max) {
    why = "must be " + range + ", got " + std::string(text);
    return std::nullopt;
  }
  return static_cast<unsigned>(value);
}

std::optional<bool> parse_bool(std::string_view text, std::string& why) {
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  why = "expected true or false, got " + in_quotes(text);
  return std::nullopt;
}

std::optional<Endpoint> parse_listen(std::string_view text, std::string& why) {
  return parse_host_port(text, false, why);
}

std::optional<std::optional<Endpoint>> parse_optional_listen(std::string_view text, std::string& why) {
  if (text == "off") return std::optional<Endpoint>();
  auto endpoint = parse_host_port(text, false, why);
  if (!endpoint) {
    why += " (or off)";
    return std::nullopt;
  }
  return endpoint;
}

std::optional<Endpoint> parse_endpoint(std::string_view text, std::string& why) {
  return parse_host_port(text, true, why);
}

std::optional<Cidr> parse_cidr(std::string_view text, std::string& why) {
  const auto slash = text.find('/');
  const std::string_view address = text.substr(0, slash);
  const bool v6 = address.find(':') != std::string_view::npos;
  const http::IpBytes ip = v6 ? http::parse_ipv6(address) : http::parse_ipv4(address);
  if (ip.size == 0) {
    why = "bad CIDR " + in_quotes(text) + ": " + in_quotes(address) + " is not an IPv4 or IPv6 address";
    return std::nullopt;
  }
  const int max_prefix = v6 ? 128 : 32;
  int prefix = max_prefix;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    if (!all_digits(digits) || digits.size() > 3 || std::stoi(std::string(digits)) > max_prefix) {
      why = "bad CIDR " + in_quotes(text) + ": prefix length must be from 0 to " + std::to_string(max_prefix);
      return std::nullopt;
    }
    prefix = std::stoi(std::string(digits));
  }
  // An IPv4-mapped network is kept as IPv4, since client addresses are folded the same way before matching.
  static constexpr std::array<std::uint8_t, 12> kMapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  const bool mapped = v6 && prefix >= 96 && std::equal(kMapped.begin(), kMapped.end(), ip.bytes.begin());
  const auto first = ip.bytes.begin() + (mapped ? 12 : 0);
  Cidr cidr{std::string(text), std::vector<std::uint8_t>(first, first + (v6 && !mapped ? 16 : 4)),
            mapped ? prefix - 96 : prefix};
  for (std::size_t i = 0; i < cidr.net.size(); ++i) {
    const int bits_kept = std::clamp(cidr.prefix - static_cast<int>(i) * 8, 0, 8);
    cidr.net[i] &= static_cast<std::uint8_t>(0xff00u >> bits_kept);
  }
  return cidr;
}

std::optional<Balance> parse_balance(std::string_view text, std::string& why) {
  if (text == "round_robin") return Balance::kRoundRobin;
  if (text == "least_request") return Balance::kLeastRequest;
  if (text == "random") return Balance::kRandom;
  why = "unknown balance " + in_quotes(text) + " (allowed: round_robin, least_request, random)";
  return std::nullopt;
}

std::optional<std::string> parse_log_level(std::string_view text, std::string& why) {
  if (std::find(kLogLevels.begin(), kLogLevels.end(), text) != kLogLevels.end()) return std::string(text);
  why = "unknown log level " + in_quotes(text) + " (allowed: trace, debug, info, warn, error, critical, off)";
  return std::nullopt;
}

std::optional<std::string> parse_access_log(std::string_view text, std::string& why) {
  if (!text.empty()) return std::string(text);
  why = "must be stdout, off or a file path";
  return std::nullopt;
}

std::optional<std::string> parse_name(std::string_view text, std::string& why) {
  const auto ok = [](char c) { return is_alnum(c) || c == '_' || c == '.' || c == '-'; };
  if (!text.empty() && std::all_of(text.begin(), text.end(), ok)) return std::string(text);
  why = "bad name " + in_quotes(text) + ": use only letters, digits, '_', '.' and '-'";
  return std::nullopt;
}

std::optional<std::string> parse_method(std::string_view text, std::string& why) {
  if (!http::is_token(text)) {
    why = in_quotes(text) + " is not an HTTP method token";
    return std::nullopt;
  }
  if (std::any_of(text.begin(), text.end(), is_lower)) {
    why = "method " + in_quotes(text) + " must be upper case (" + upper_case(text) + "): methods are case-sensitive";
    return std::nullopt;
  }
  return std::string(text);
}

std::optional<std::string> parse_route_host(std::string_view text, std::string& why) {
  std::string host = http::lower_case(text);
  if (host.find(':') != std::string::npos) {
    why = "host " + in_quotes(text) + " must not carry a port (a route matches the host on any port)";
    return std::nullopt;
  }
  const std::string_view name = std::string_view(host).substr(host.starts_with("*.") ? 2 : 0);
  if (!is_host_name(name)) {
    why = "bad host " + in_quotes(text) + ": expected a host name such as api.example.com or *.example.com";
    return std::nullopt;
  }
  return host;
}

std::optional<std::string> parse_strip_prefix(std::string_view text, std::string& why) {
  if (!text.starts_with('/') || text.size() < 2 || text.ends_with('/') || text.find("//") != std::string_view::npos) {
    why = "bad prefix " + in_quotes(text) + ": must start with '/', not end with '/', e.g. /v1";
    return std::nullopt;
  }
  return std::string(text);
}

std::optional<std::string> parse_health_path(std::string_view text, std::string& why) {
  const bool visible = std::all_of(text.begin(), text.end(), [](char c) { return c > ' ' && c < 0x7f; });
  if (!text.starts_with('/') || !visible) {
    why = "bad path " + in_quotes(text) + ": must start with '/' and hold no spaces or control characters";
    return std::nullopt;
  }
  return std::string(text);
}

std::optional<std::string> strip_prefix_mismatch(std::string_view prefix, std::string_view pattern) {
  std::size_t at = 0;  // the '/' that starts the current segment, in both strings
  while (at < prefix.size()) {
    const std::size_t prefix_end = std::min(prefix.find('/', at + 1), prefix.size());
    if (at >= pattern.size()) return "path " + in_quotes(pattern) + " is shorter than the prefix";
    const std::size_t pattern_end = std::min(pattern.find('/', at + 1), pattern.size());
    const std::string_view segment = pattern.substr(at + 1, pattern_end - at - 1);
    if (segment.starts_with(':') || segment.starts_with('*')) return std::nullopt;
    if (segment != prefix.substr(at + 1, prefix_end - at - 1)) {
      return "prefix " + in_quotes(prefix) + " can never match path " + in_quotes(pattern);
    }
    at = prefix_end;
  }
  return std::nullopt;
}

std::optional<RouteAuth> parse_route_auth(std::string_view text, std::string& why) {
  if (text == "required") return RouteAuth::kRequired;
  if (text == "optional") return RouteAuth::kOptional;
  if (text == "none") return RouteAuth::kNone;
  why = "bad value " + in_quotes(text) + ": expected required, optional or none";
  return std::nullopt;
}

std::optional<AuthOnError> parse_auth_on_error(std::string_view text, std::string& why) {
  if (text == "reject") return AuthOnError::kReject;
  if (text == "anonymous") return AuthOnError::kAnonymous;
  why = "bad value " + in_quotes(text) + ": expected reject or anonymous";
  return std::nullopt;
}

std::optional<std::string> parse_header_name(std::string_view text, std::string& why) {
  if (!http::is_token(text) || text == "*") {
    why = in_quotes(text) + " is not a header name";
    return std::nullopt;
  }
  return std::string(text);
}

std::optional<std::string> parse_forward_header(std::string_view text, std::string& why) {
  return parse_added_header(text, false, why);
}

std::optional<std::string> parse_shadow_header(std::string_view text, std::string& why) {
  return parse_added_header(text, true, why);
}

std::optional<std::string> parse_percent(std::string_view text, std::string& why) {
  const auto parts = decimal_parts(text);
  if (!parts) {
    if (text.ends_with('%')) {
      why = "write the number without '%', got " + in_quotes(text);
    } else if (text.starts_with('-')) {
      why = "must be from 0 to 100, got " + std::string(text);
    } else {
      why = "expected a decimal number from 0 to 100 (e.g. 0.01 or 25; no sign, no exponent), got " + in_quotes(text);
    }
    return std::nullopt;
  }
  const std::string_view digits = parts->whole;
  const std::string_view whole = digits.substr(std::min(digits.find_first_not_of('0'), digits.size()));
  if (whole.size() > 3 || (whole.size() == 3 && (whole != "100" || !parts->fraction.empty()))) {
    why = "must be from 0 to 100, got " + std::string(text);
    return std::nullopt;
  }
  return std::string(text);
}

std::optional<std::uint32_t> percent_threshold(std::string_view percent, std::uint32_t buckets, std::string& why) {
  const auto parts = decimal_parts(percent);
  // Whether the percent is below one bucket, or has more decimals than any whole share can have.
  bool finer = !parts || parts->fraction.size() > kMaxShareDecimals;
  if (!finer) {
    // percent = digits / 10^decimals, so the threshold is digits × buckets / (100 × 10^decimals): whole exactly
    // when that fraction, reduced, has a denominator dividing buckets.
    std::uint64_t digits = 0;
    for (const char c : parts->whole) digits = digits * 10 + static_cast<std::uint64_t>(c - '0');
    for (const char c : parts->fraction) digits = digits * 10 + static_cast<std::uint64_t>(c - '0');
    std::uint64_t scale = 100;
    for (std::size_t i = 0; i < parts->fraction.size(); ++i) scale *= 10;
    const std::uint64_t common = std::gcd(digits, scale);
    const std::uint64_t denominator = scale / common;
    if (buckets % denominator == 0) return static_cast<std::uint32_t>(digits / common * (buckets / denominator));
    finer = digits < (scale + buckets - 1) / buckets;  // digits × buckets < scale: less than one bucket
  }
  const PercentStep step = percent_step(buckets);
  const std::string text(percent);
  const std::string where = "buckets " + std::to_string(buckets);
  const std::string fraction = "100/" + std::to_string(buckets);
  if (finer || (step.exact && parts->fraction.size() > step.decimals)) {
    why = text + " is finer than " + where + " allows (steps of " +
          (step.exact ? step.text : fraction + ", about " + step.text) + ")";
  } else {
    why = text + " is not a multiple of " + (step.exact ? step.text : fraction + " (about " + step.text + ")") +
          ", the step " + where + " allows";
  }
  return std::nullopt;
}

}  // namespace apigw::config
