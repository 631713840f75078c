// Token sources and shapes (see token.h).
#include "apigw/auth/token.h"

#include <fmt/format.h>

#include "apigw/http/text.h"

namespace apigw::auth {
namespace {

constexpr std::string_view kPlaceholder = "{token}";

}  // namespace

TokenShape check_token(std::string_view token) {
  if (token.empty()) return TokenShape::kEmpty;
  if (token.size() > kMaxTokenBytes) return TokenShape::kTooLong;
  for (const char c : token) {
    if (c <= ' ' || c >= 0x7f || c == '{' || c == '}') return TokenShape::kBadCharacter;
  }
  return TokenShape::kValid;
}

std::string_view token_shape_text(TokenShape shape) {
  switch (shape) {
    case TokenShape::kValid: return "valid token";
    case TokenShape::kEmpty: return "empty token";
    case TokenShape::kTooLong: return "token longer than 4096 bytes";
    case TokenShape::kBadCharacter: return "token with a character outside visible ASCII, or a brace";
  }
  return "bad token";
}

std::optional<std::string_view> bearer_token(std::string_view authorization) {
  authorization = http::trim_ows(authorization);
  constexpr std::string_view kScheme = "bearer";
  if (authorization.size() < kScheme.size() || !http::iequals(authorization.substr(0, kScheme.size()), kScheme)) {
    return std::nullopt;
  }
  std::string_view rest = authorization.substr(kScheme.size());
  if (rest.empty()) return std::string_view();  // "Bearer" alone: an empty token
  if (rest.front() != ' ') return std::nullopt;  // "Bearerx" is another scheme
  return http::trim_ows(rest);
}

std::string expand_key(std::string_view key_template, std::string_view token) {
  const std::size_t at = key_template.find(kPlaceholder);
  std::string key;
  key.reserve(key_template.size() + token.size());
  key.append(key_template.substr(0, at));
  key.append(token);
  key.append(key_template.substr(at + kPlaceholder.size()));
  return key;
}

bool forwardable_user_id(std::string_view user) {
  if (user.empty() || user.size() > 256) return false;
  for (const char c : user) {
    if (c <= ' ' || c >= 0x7f) return false;
  }
  return true;
}

std::string token_fingerprint(std::string_view token) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (const char c : token) {
    hash ^= static_cast<std::uint8_t>(c);
    hash *= 0x100000001b3ULL;
  }
  // FNV-1a alone leaves tokens that differ in their last character with nearly equal high bits: the 64-bit
  // finaliser of MurmurHash3 spreads every input bit over the whole value before it is cut to 48 bits.
  hash ^= hash >> 33;
  hash *= 0xff51afd7ed558ccdULL;
  hash ^= hash >> 33;
  hash *= 0xc4ceb9fe1a85ec53ULL;
  hash ^= hash >> 33;
  return fmt::format("{:012x}", hash >> 16);
}

}  // namespace apigw::auth
