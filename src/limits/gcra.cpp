// The GCRA script and its reply (see gcra.h).
#include "apigw/limits/gcra.h"

#include <fmt/format.h>

#include "apigw/core/digest.h"

namespace apigw::limits {

namespace {

// KEYS[1]: the limit's key. ARGV[1]: the emission interval (µs per token), ARGV[2]: the burst tolerance (µs: burst
// tokens' worth), ARGV[3]: the tokens wanted. The key holds the theoretical arrival time in µs of Redis's clock;
// tokens are available while it is less than now + tolerance. Replies {granted, remaining, wait µs, reset µs}.
constexpr std::string_view kScript = R"LUA(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local free = math.floor((now + tolerance - tat) / interval)
if free < 0 then free = 0 end
local granted = math.min(wanted, free)
if granted > 0 then
  tat = tat + granted * interval
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
end
local remaining = free - granted
local wait = 0
if remaining == 0 then
  wait = tat + interval - tolerance - now
  if wait < 0 then wait = 0 end
end
return {granted, remaining, math.ceil(wait), math.ceil(tat - now)}
)LUA";

}  // namespace

const std::string& gcra_script() {
  static const std::string script(kScript);
  return script;
}

const std::string& gcra_script_sha1() {
  static const std::string sha1 = core::sha1_hex(kScript);
  return sha1;
}

std::vector<std::string> gcra_arguments(std::string key, std::uint64_t count, std::chrono::seconds period,
                                        std::uint64_t burst, std::uint64_t wanted) {
  const double interval = static_cast<double>(period.count()) * 1e6 / static_cast<double>(count);
  return {"1", std::move(key), fmt::format("{:.6f}", interval),
          fmt::format("{:.6f}", interval * static_cast<double>(burst)), std::to_string(wanted)};
}

std::optional<Grant> parse_grant(const redis::Reply& reply) {
  if (reply.type != redis::Reply::Type::kArray || reply.elements.size() != 4) return std::nullopt;
  for (const redis::Reply& element : reply.elements) {
    if (element.type != redis::Reply::Type::kInteger || element.integer < 0) return std::nullopt;
  }
  Grant grant;
  grant.granted = static_cast<std::uint64_t>(reply.elements[0].integer);
  grant.remaining = static_cast<std::uint64_t>(reply.elements[1].integer);
  grant.wait = std::chrono::microseconds(reply.elements[2].integer);
  grant.reset = std::chrono::microseconds(reply.elements[3].integer);
  return grant;
}

std::string limit_key(std::string_view route, std::size_t index, std::string_view kind, std::string_view value) {
  return fmt::format("apigw:rl:{{{}}}:{}:{}:{}", route, index, kind, core::sha256_hex(value).substr(0, 24));
}

}  // namespace apigw::limits
