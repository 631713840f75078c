// Message digests for cache keys and audit records. Pure; OpenSSL stays in digest.cpp.
#pragma once

#include <string>
#include <string_view>

namespace apigw::core {

// Lower-case hex SHA-256 of `data`: 64 characters (empty only if OpenSSL itself fails).
std::string sha256_hex(std::string_view data);

}  // namespace apigw::core
