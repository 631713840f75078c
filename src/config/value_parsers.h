// Parsers from one scalar's text to one typed config value. Pure (no YAML, no I/O); each returns the value, or
// nullopt with `why` set to a reason that the caller prefixes with the field's name and position.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "apigw/config/config.h"

namespace apigw::config {

inline constexpr unsigned kMaxWorkers = 1024;
inline constexpr unsigned kMaxRetryAttempts = 10;

// A value as a message quotes it: 'text'.
inline std::string in_quotes(std::string_view text) { return "'" + std::string(text) + "'"; }

std::optional<core::Duration> parse_duration_value(std::string_view text, std::string& why);
std::optional<core::Duration> parse_positive_duration(std::string_view text, std::string& why);
std::optional<std::uint64_t> parse_positive_size(std::string_view text, std::string& why);
// parse_positive_size within [min, max]; the message names the bounds as sizes ("from 1KiB to 16MiB").
std::optional<std::uint64_t> parse_size_between(std::string_view text, std::uint64_t min, std::uint64_t max,
                                                std::string& why);
std::optional<unsigned> parse_whole_number(std::string_view text, unsigned min, unsigned max, std::string& why);
// parse_whole_number and parse_size_between with their bounds bound, as YamlReader::value takes a parser.
inline auto whole_number(unsigned min, unsigned max) {
  return [min, max](std::string_view text, std::string& why) { return parse_whole_number(text, min, max, why); };
}
inline auto size_between(std::uint64_t min, std::uint64_t max) {
  return [min, max](std::string_view text, std::string& why) { return parse_size_between(text, min, max, why); };
}
std::optional<bool> parse_bool(std::string_view text, std::string& why);

// "127.0.0.1:8080" or "[::1]:8080"; the listen address must be an IP literal.
std::optional<Endpoint> parse_listen(std::string_view text, std::string& why);
// parse_listen, or "off" (nullopt inside).
std::optional<std::optional<Endpoint>> parse_optional_listen(std::string_view text, std::string& why);
// As parse_listen, but a host name ("users.internal:9001") is also accepted; it is not resolved here.
std::optional<Endpoint> parse_endpoint(std::string_view text, std::string& why);
// "10.0.0.0/8", "fd00::/8"; a bare address is a /32 or /128. Host bits are cleared, `text` keeps the input.
std::optional<Cidr> parse_cidr(std::string_view text, std::string& why);

std::optional<Balance> parse_balance(std::string_view text, std::string& why);
std::optional<std::string> parse_log_level(std::string_view text, std::string& why);
std::optional<std::string> parse_access_log(std::string_view text, std::string& why);

// Route and upstream names: [A-Za-z0-9_.-]+, so they are safe in logs, metrics and headers.
std::optional<std::string> parse_name(std::string_view text, std::string& why);
// An upper-case HTTP method token; lower case is refused rather than fixed, since methods are case-sensitive.
std::optional<std::string> parse_method(std::string_view text, std::string& why);
// "api.example.com" or "*.example.com", returned in lower case; no port.
std::optional<std::string> parse_route_host(std::string_view text, std::string& why);
// An origin-form path for health probes: starts with '/', visible ASCII only.
std::optional<std::string> parse_health_path(std::string_view text, std::string& why);
// "/v1": starts with '/', no trailing '/', no empty segments.
std::optional<std::string> parse_strip_prefix(std::string_view text, std::string& why);

// Why `prefix` can never be stripped from a path that matches `pattern` (a static segment differs, or the
// pattern is too short); nullopt when it may apply. Segments that are `:param` or `*rest` may match anything.
std::optional<std::string> strip_prefix_mismatch(std::string_view prefix, std::string_view pattern);

// `auth`: "required" | "optional" | "none".
std::optional<RouteAuth> parse_route_auth(std::string_view text, std::string& why);
// `auth.on_error`: "reject" | "anonymous".
std::optional<AuthOnError> parse_auth_on_error(std::string_view text, std::string& why);
// An HTTP header name (a token, not `*`), as written.
std::optional<std::string> parse_header_name(std::string_view text, std::string& why);
// `auth.forward_header`: a header name apigw may set on upstream requests (not one it manages itself).
std::optional<std::string> parse_forward_header(std::string_view text, std::string& why);
// `migration.shadow.header`: as parse_forward_header, but an `X-Apigw-` name is allowed (the default is one).
std::optional<std::string> parse_shadow_header(std::string_view text, std::string& why);

// A share of traffic as written: a plain decimal number from 0 to 100 ("0.01", "25"; no sign, no exponent).
std::optional<std::string> parse_percent(std::string_view text, std::string& why);
// The number of buckets out of `buckets` that a percent (as parse_percent accepts) covers, percent × buckets / 100,
// computed exactly on the decimal digits; nullopt, with the step `buckets` allows in `why`, when it is not whole.
// `buckets` is at least 1.
std::optional<std::uint32_t> percent_threshold(std::string_view percent, std::uint32_t buckets, std::string& why);

}  // namespace apigw::config
