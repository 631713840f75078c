// The fleet's side of a rate limit: one Redis key per limit and key value holding its theoretical arrival time
// (GCRA, the generic cell rate algorithm: a token bucket of `burst` tokens refilled at count/period, kept as one
// number). One script call grants up to N tokens at once, by Redis's clock, so every instance of the fleet draws
// from the same bucket whatever its own clock says. Pure: the caller sends the command.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "apigw/limits/budget.h"
#include "apigw/redis/reply.h"

namespace apigw::limits {

// The script's text and its SHA-1 (for EVALSHA; EVAL with the text when Redis answers NOSCRIPT).
const std::string& gcra_script();
const std::string& gcra_script_sha1();

// The arguments after the script (or its SHA-1): 1 key, the emission interval and the burst tolerance in
// microseconds, the tokens wanted.
std::vector<std::string> gcra_arguments(std::string key, std::uint64_t count, std::chrono::seconds period,
                                        std::uint64_t burst, std::uint64_t wanted);

// The script's reply: {granted, remaining, wait µs, reset µs}; nullopt for anything else.
std::optional<Grant> parse_grant(const redis::Reply& reply);

// The Redis key of a limit for one key value: "apigw:rl:{ROUTE}:INDEX:KIND:DIGEST", the value hashed (SHA-256,
// 24 hex digits) so that any header value makes a short, safe key; the braces keep one route's keys together in
// a Redis Cluster only when the route name is the hash tag, which it is.
std::string limit_key(std::string_view route, std::size_t index, std::string_view kind, std::string_view value);

}  // namespace apigw::limits
