// The `rate_limits` section and a route's `rate_limit` (see limits_section.h).
#include "limits_section.h"

#include <array>
#include <charconv>

#include "auth_section.h"
#include "position_text.h"
#include "value_parsers.h"

namespace apigw::config {
namespace {

constexpr std::array<std::string_view, 3> kSectionKeys{"redis", "on_error", "headers"};
constexpr std::array<std::string_view, 4> kLimitKeys{"key", "rate", "burst", "shadow"};
constexpr std::uint64_t kMaxCount = 1'000'000'000;
constexpr std::size_t kMaxLimitsPerRoute = 8;

std::optional<RateLimitOnError> parse_on_error(std::string_view text, std::string& why) {
  if (text == "allow") return RateLimitOnError::kAllow;
  if (text == "deny") return RateLimitOnError::kDeny;
  why = "expected allow or deny, got '" + std::string(text) + "'";
  return std::nullopt;
}

std::optional<std::uint64_t> parse_count(std::string_view text, std::string& why) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value == 0 || value > kMaxCount) {
    why = "expected a whole number from 1 to 1000000000, got '" + std::string(text) + "'";
    return std::nullopt;
  }
  return value;
}

}  // namespace

std::optional<Rate> parse_rate(std::string_view text, std::string& why) {
  const auto slash = text.find('/');
  const auto fail = [&] {
    why = "expected a rate such as 100/s, 1000/m, 5000/h or 100000/d, got '" + std::string(text) + "'";
    return std::nullopt;
  };
  if (slash == std::string_view::npos) return fail();
  std::string count_why;
  const auto count = parse_count(text.substr(0, slash), count_why);
  if (!count) return fail();
  const std::string_view unit = text.substr(slash + 1);
  Rate rate{*count, std::chrono::seconds(1)};
  if (unit == "s") {
    rate.period = std::chrono::seconds(1);
  } else if (unit == "m") {
    rate.period = std::chrono::minutes(1);
  } else if (unit == "h") {
    rate.period = std::chrono::hours(1);
  } else if (unit == "d") {
    rate.period = std::chrono::hours(24);
  } else {
    return fail();
  }
  return rate;
}

std::optional<RateLimitKey> parse_rate_limit_key(std::string_view text, std::string& why) {
  if (text == "user") return RateLimitKey{RateLimitKey::Kind::kUser, {}};
  if (text == "client_ip") return RateLimitKey{RateLimitKey::Kind::kClientIp, {}};
  if (text == "route") return RateLimitKey{RateLimitKey::Kind::kRoute, {}};
  if (text.starts_with("header:")) {
    std::string name_why;
    if (auto name = parse_header_name(text.substr(7), name_why)) {
      return RateLimitKey{RateLimitKey::Kind::kHeader, std::move(*name)};
    }
    why = "header:" + std::string(text.substr(7)) + ": " + name_why;
    return std::nullopt;
  }
  why = "expected user, client_ip, route or header:NAME, got '" + std::string(text) + "'";
  return std::nullopt;
}

void read_rate_limits_section(YamlReader& reader, const Field& field, RateLimitsConfig& limits) {
  limits.enabled = true;
  reader.for_each_field(field, kSectionKeys, [&](std::string_view key, const Field& value) {
    if (key == "redis") return read_redis(reader, value, limits.redis);
    if (key == "on_error") return assign(limits.on_error, reader.value(value, parse_on_error));
    assign(limits.headers, reader.value(value, parse_bool));
  });
}

void read_route_rate_limits(YamlReader& reader, const Field& field, std::vector<RouteRateLimit>& limits,
                            RouteSource& source) {
  source.rate_limit = field.position;
  if (!reader.expect_list(field)) return;
  reader.for_each_item(field, [&](std::size_t index, const Field& item) {
    if (index == kMaxLimitsPerRoute) {
      reader.error(item.position, field.label + ": at most " + std::to_string(kMaxLimitsPerRoute) + " limits");
    }
    if (index >= kMaxLimitsPerRoute || !reader.expect_map(item)) return;
    RouteRateLimit limit;
    limit.position = item.position;
    Position key_at = item.position;
    bool has_key = false;
    bool has_rate = false;
    bool has_burst = false;
    bool ok = true;
    const auto keep = [&](auto value) {
      ok = ok && value.has_value();
      return value;
    };
    reader.for_each_field(item, kLimitKeys, [&](std::string_view key, const Field& value) {
      if (key == "key") {
        has_key = true;
        key_at = value.position;
        return assign(limit.key, keep(reader.value(value, parse_rate_limit_key)));
      }
      if (key == "rate") {
        has_rate = true;
        if (auto rate = keep(reader.value(value, parse_rate))) {
          limit.count = rate->count;
          limit.period = rate->period;
        }
        return;
      }
      if (key == "burst") {
        has_burst = true;
        return assign(limit.burst, keep(reader.value(value, parse_count)));
      }
      assign(limit.shadow, keep(reader.value(value, parse_bool)));
    });
    if (!has_key) reader.error(item.position, item.label + ": needs a key (user, client_ip, route or header:NAME)");
    if (!has_rate) reader.error(item.position, item.label + ": needs a rate (e.g. rate: 100/s)");
    if (!has_key || !has_rate || !ok) return;
    if (!has_burst) limit.burst = limit.count;
    source.rate_limit_keys.push_back(key_at);
    limits.push_back(std::move(limit));
  });
}

void check_rate_limits(const Config& config, const std::vector<RouteSource>& sources,
                       std::vector<ConfigError>& errors) {
  for (std::size_t i = 0; i < config.routes.size(); ++i) {
    const RouteConfig& route = config.routes[i];
    if (sources[i].rate_limit.line == 0) continue;
    if (!config.rate_limits.enabled) {
      errors.push_back({sources[i].rate_limit,
                        route_label(config, i) + " rate_limit: needs a rate_limits section (the Redis that holds the "
                                                 "fleet's counters)"});
      continue;
    }
    for (std::size_t j = 0; j < route.rate_limits.size(); ++j) {
      if (route.rate_limits[j].key.kind == RateLimitKey::Kind::kUser && route.auth == RouteAuth::kNone) {
        errors.push_back({sources[i].rate_limit_keys[j],
                          route_label(config, i) + " rate_limit[" + std::to_string(j) +
                              "].key: user needs auth: required or optional on the route"});
      }
    }
  }
}

}  // namespace apigw::config
