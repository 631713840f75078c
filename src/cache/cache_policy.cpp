// Request and response cacheability (see cache_policy.h). Parsing never fails: a directive it cannot read is
// either ignored or, when it limits a response's lifetime, makes the response not storable.
#include "apigw/cache/cache_policy.h"

#include <algorithm>
#include <array>
#include <cstdint>

#include "apigw/http/http_date.h"
#include "apigw/http/text.h"

namespace apigw::cache {
namespace {

namespace bhttp = boost::beast::http;

constexpr std::array<unsigned, 4> kNeverStored{206, 304, 401, 407};

// delta-seconds: one or more digits, saturating at 2^31.
std::optional<std::chrono::seconds> parse_delta_seconds(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::int64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = std::min(value * 10 + (c - '0'), kMaxDeltaSeconds.count());
  }
  return std::chrono::seconds(value);
}

void keep_smallest(std::optional<std::chrono::seconds>& target, std::chrono::seconds value) {
  if (!target || value < *target) target = value;
}

struct Directive {
  std::string_view name;
  std::string argument;  // unquoted
  bool has_argument = false;
  bool well_formed = true;  // false for an unterminated quoted string or bytes after its closing quote
};

// Reads the directive at or after `at` in a Cache-Control value and moves `at` past it; false at the end.
bool next_directive(std::string_view value, std::size_t& at, Directive& directive) {
  while (at < value.size() && (value[at] == ',' || http::is_ows(value[at]))) ++at;
  if (at >= value.size()) return false;
  const std::size_t name_end = std::min(value.find_first_of(",=", at), value.size());
  directive = Directive{http::trim_ows(value.substr(at, name_end - at)), {}, false, true};
  at = name_end;
  if (at >= value.size() || value[at] != '=') return true;
  directive.has_argument = true;
  ++at;
  while (at < value.size() && http::is_ows(value[at])) ++at;
  if (at >= value.size() || value[at] != '"') {
    const std::size_t end = std::min(value.find(',', at), value.size());
    directive.argument = std::string(http::trim_ows(value.substr(at, end - at)));
    at = end;
    return true;
  }
  // quoted-string: a backslash quotes the next character; an unterminated one runs to the end.
  ++at;
  directive.well_formed = false;
  while (at < value.size()) {
    const char c = value[at++];
    if (c == '"') {
      directive.well_formed = true;
      break;
    }
    directive.argument += c == '\\' && at < value.size() ? value[at++] : c;
  }
  for (; at < value.size() && value[at] != ','; ++at) {
    if (!http::is_ows(value[at])) directive.well_formed = false;
  }
  return true;
}

}  // namespace

void CacheControl::add(std::string_view value) {
  std::size_t at = 0;
  Directive directive;
  while (next_directive(value, at, directive)) {
    const auto age = [&](std::optional<std::chrono::seconds>& target) {
      const auto seconds =
          directive.well_formed && directive.has_argument ? parse_delta_seconds(directive.argument) : std::nullopt;
      if (seconds) {
        keep_smallest(target, *seconds);
      } else {
        bad_age = true;
      }
    };
    if (http::iequals(directive.name, "no-store")) {
      no_store = true;
    } else if (http::iequals(directive.name, "no-cache")) {
      no_cache = true;
    } else if (http::iequals(directive.name, "private")) {
      is_private = true;
    } else if (http::iequals(directive.name, "public")) {
      is_public = true;
    } else if (http::iequals(directive.name, "must-revalidate")) {
      must_revalidate = true;
    } else if (http::iequals(directive.name, "proxy-revalidate")) {
      proxy_revalidate = true;
    } else if (http::iequals(directive.name, "stale-while-revalidate") ||
               http::iequals(directive.name, "stale-if-error")) {
      // RFC 5861: an unreadable value is ignored (the response is not made stale for it).
      const auto seconds =
          directive.well_formed && directive.has_argument ? parse_delta_seconds(directive.argument) : std::nullopt;
      auto& target = http::iequals(directive.name, "stale-if-error") ? stale_if_error : stale_while_revalidate;
      if (seconds) keep_smallest(target, *seconds);
    } else if (http::iequals(directive.name, "max-age")) {
      age(max_age);
    } else if (http::iequals(directive.name, "s-maxage")) {
      age(s_maxage);
    }
  }
}

RequestCacheability classify_request(std::string_view method, const bhttp::fields& headers) {
  if (method != "GET" && method != "HEAD") return RequestCacheability::kBypass;
  CacheControl control;
  const auto [control_begin, control_end] = headers.equal_range(bhttp::field::cache_control);
  for (auto it = control_begin; it != control_end; ++it) control.add(it->value());
  if (control.no_store) return RequestCacheability::kBypass;
  bool pragma_no_cache = false;
  const auto [pragma_begin, pragma_end] = headers.equal_range(bhttp::field::pragma);
  for (auto it = pragma_begin; it != pragma_end; ++it) {
    http::for_each_list_element(it->value(),
                                [&](std::string_view token) { pragma_no_cache |= http::iequals(token, "no-cache"); });
  }
  if (control.no_cache || pragma_no_cache || (control.max_age && control.max_age->count() == 0)) {
    return RequestCacheability::kRevalidate;
  }
  return RequestCacheability::kLookup;
}

std::optional<std::chrono::seconds> parse_age(std::string_view value) {
  std::optional<std::chrono::seconds> first;
  bool seen = false;
  http::for_each_list_element(value, [&](std::string_view member) {
    if (seen) return;
    seen = true;
    first = parse_delta_seconds(member);
  });
  return first;
}

std::chrono::seconds initial_age(std::optional<std::chrono::seconds> age_value, std::int64_t date,
                                 const ExchangeTimes& times) {
  const std::int64_t limit = kMaxDeltaSeconds.count();
  // Differences of two Unix times fit in 64 bits for any time a clock can show; each term is clamped first.
  const std::int64_t apparent = std::clamp<std::int64_t>(times.response_time - date, 0, limit);
  const std::int64_t delay = std::clamp<std::int64_t>(times.response_time - times.request_time, 0, limit);
  const std::int64_t corrected = std::min(age_value.value_or(std::chrono::seconds(0)).count() + delay, limit);
  return std::chrono::seconds(std::max(apparent, corrected));
}

std::optional<Storable> storable_for(unsigned status, std::span<const HeaderView> headers,
                                     const config::RouteCacheConfig& route, const ExchangeTimes& times,
                                     bool shared_authorization) {
  if (!route.enabled || route.ttl.count() <= 0) return std::nullopt;
  if (std::find(kNeverStored.begin(), kNeverStored.end(), status) != kNeverStored.end()) return std::nullopt;
  if (std::find(route.statuses.begin(), route.statuses.end(), status) == route.statuses.end()) return std::nullopt;

  CacheControl control;
  bool varies_elsewhere = false;
  std::optional<std::string_view> date_text;
  std::optional<std::string_view> expires_text;
  std::optional<std::chrono::seconds> age_value;
  bool age_seen = false;
  for (const HeaderView& header : headers) {
    if (http::iequals(header.name, "set-cookie") || http::iequals(header.name, "set-cookie2")) return std::nullopt;
    if (http::iequals(header.name, "cache-control")) {
      control.add(header.value);
    } else if (http::iequals(header.name, "vary")) {
      http::for_each_list_element(header.value, [&](std::string_view name) {
        const auto keyed = [&](const std::string& vary) { return http::iequals(vary, name); };
        if (std::none_of(route.vary.begin(), route.vary.end(), keyed)) varies_elsewhere = true;
      });
    } else if (http::iequals(header.name, "date")) {
      if (!date_text) date_text = header.value;
    } else if (http::iequals(header.name, "expires")) {
      if (!expires_text) expires_text = header.value;
    } else if (http::iequals(header.name, "age")) {
      if (!age_seen) age_value = parse_age(header.value);
      age_seen = true;
    }
  }
  // "Vary: *" lands here too: no request header is called "*".
  if (varies_elsewhere || control.no_store || control.no_cache || control.bad_age) return std::nullopt;
  if (control.is_private && route.scope != config::CacheScope::kUser) return std::nullopt;
  if (shared_authorization && !control.is_public && !control.s_maxage && !control.must_revalidate) {
    return std::nullopt;
  }

  Storable out;
  const std::optional<std::int64_t> date =
      date_text ? http::parse_http_date(*date_text, times.response_time) : std::nullopt;
  out.has_date = date.has_value();
  out.date = date.value_or(times.response_time);

  std::chrono::seconds lifetime = route.ttl;
  if (const auto& limit = control.s_maxage ? control.s_maxage : control.max_age) {
    lifetime = std::min(lifetime, *limit);
  } else if (expires_text) {
    const std::optional<std::int64_t> expires = http::parse_http_date(*expires_text, times.response_time);
    const std::int64_t delta = expires ? std::clamp<std::int64_t>(*expires - out.date, 0, kMaxDeltaSeconds.count()) : 0;
    lifetime = std::min(lifetime, std::chrono::seconds(delta));
  }
  out.lifetime = lifetime;
  // RFC 9111 §4.2.4: must-revalidate and proxy-revalidate forbid answering stale. Otherwise the route's windows
  // apply, shortened (never lengthened) by the response's own.
  if (!control.must_revalidate && !control.proxy_revalidate) {
    const auto window = [](std::chrono::seconds route_window, const std::optional<std::chrono::seconds>& asked) {
      return asked ? std::min(route_window, *asked) : route_window;
    };
    out.stale.while_revalidate = window(route.stale_while_revalidate, control.stale_while_revalidate);
    out.stale.if_error = window(route.stale_if_error, control.stale_if_error);
  }
  out.initial_age = initial_age(age_value, out.date, times);
  if (out.lifetime <= out.initial_age) return std::nullopt;
  return out;
}

}  // namespace apigw::cache
