// Finding a request's bearer token and checking its shape before any lookup: where it may come from
// (`auth.token_from`), what a well-formed token is, the Redis key it maps to, and the short fingerprint that logs
// show instead of the token. Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "apigw/config/config.h"

namespace apigw::auth {

using TokenSource = config::TokenSource;
using UserIdField = config::UserIdField;

inline constexpr std::size_t kMaxTokenBytes = 4096;

enum class TokenShape { kValid, kEmpty, kTooLong, kBadCharacter };
// A token is 1 to 4096 visible ASCII characters other than '{' and '}' (which would give a Redis key a hash tag
// of the client's choosing); anything else is refused before Redis is asked.
TokenShape check_token(std::string_view token);
std::string_view token_shape_text(TokenShape shape);  // "empty token", ...

// The token in an Authorization value: "Bearer <token>" (scheme case-insensitive, one or more spaces), else
// nullopt. The token itself is returned as sent, for check_token to judge.
std::optional<std::string_view> bearer_token(std::string_view authorization);

// `auth.key` (a template holding "{token}" once, e.g. "session:{token}") for `token`.
std::string expand_key(std::string_view key_template, std::string_view token);

// A user id apigw will forward in a header: 1 to 256 visible ASCII characters.
bool forwardable_user_id(std::string_view user);

// 12 hex digits identifying a token in logs without revealing it (FNV-1a 64, mixed, truncated).
std::string token_fingerprint(std::string_view token);

}  // namespace apigw::auth
