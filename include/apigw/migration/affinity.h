// Affinity buckets (pure): which of `buckets` buckets a request falls in, computed the same way on every worker,
// every gateway and across reloads, so that a user once moved stays moved as the percent grows.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <boost/beast/http/fields.hpp>

#include "apigw/config/config.h"

namespace apigw::migration {

// The bucket of an affinity key. A numeric key (1 to 19 ASCII digits, no sign; leading zeros allowed) is taken as
// its value, so a numeric user id lands exactly in `user_id mod buckets`; any other key is hashed with 64-bit
// FNV-1a, mixed with MurmurHash3's 64-bit finaliser, and taken mod buckets. `buckets` is at least 1.
std::uint32_t bucket_of(std::string_view key, std::uint32_t buckets);

// Whether a bucket is in a target's share (config::MigrationTarget::threshold, computed when the config loads).
inline bool in_share(std::uint32_t bucket, std::uint32_t threshold) { return bucket < threshold; }

// The request's affinity key: the first source present, in order. `user_id` is the authenticated user (empty
// when anonymous); header values are used as sent (trimmed; the first non-empty line of that name); a cookie's
// value as in the Cookie header (http::cookie_value, over every Cookie line); the client address as text. An empty
// value counts as absent. nullopt when no source is present (the caller then draws a bucket at random).
std::optional<std::string> affinity_key(std::span<const config::AffinitySource> sources, std::string_view user_id,
                                        const boost::beast::http::fields& headers, std::string_view client_address);

}  // namespace apigw::migration
