// X-Request-Id: keep a sane incoming id, otherwise make a new one. Pure apart from a per-thread generator.
#pragma once

#include <string>
#include <string_view>

namespace apigw::http {

inline constexpr std::size_t kMaxRequestIdLength = 128;

// 1..128 characters from [A-Za-z0-9._:-]: safe to log and to copy into headers and JSON unescaped.
bool is_sane_request_id(std::string_view id);

// A random version-4 UUID in lower-case hex, from a per-thread generator (no locks, no syscalls).
std::string generate_request_id();

}  // namespace apigw::http
