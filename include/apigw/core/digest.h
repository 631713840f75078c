// Message digests for cache keys, audit records and Redis script names. Pure; OpenSSL stays in digest.cpp.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>

namespace apigw::core {

// Lower-case hex SHA-256 of `data`: 64 characters (empty only if OpenSSL itself fails).
std::string sha256_hex(std::string_view data);

// Lower-case hex SHA-1 of `data`: 40 characters, as Redis names a script for EVALSHA (not for anything secret).
std::string sha1_hex(std::string_view data);

// The SHA-256 of `data` (all zero only if OpenSSL itself fails).
std::array<unsigned char, 32> sha256(std::string_view data);

// SHA-256 over data given in pieces (a body as it streams past).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void update(std::string_view data);
  // Lower-case hex of everything given so far, as sha256_hex would give it; the hash then starts over.
  std::string hex_final();

 private:
  struct Context;
  std::unique_ptr<Context> context_;
};

}  // namespace apigw::core
