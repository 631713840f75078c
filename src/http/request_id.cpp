// Request id checks and generation (see request_id.h).
#include "apigw/http/request_id.h"

#include <cstdint>
#include <random>

namespace apigw::http {
namespace {

bool is_id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == ':' || c == '-';
}

// xoshiro256** seeded once per thread from the OS: fast and unique enough for ids (not for secrets).
class IdGenerator {
 public:
  IdGenerator() {
    std::random_device device;
    for (auto& word : state_) word = (std::uint64_t(device()) << 32) ^ device();
  }
  std::uint64_t next() {
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t state_[4];
};

}  // namespace

bool is_sane_request_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxRequestIdLength) return false;
  for (char c : id) {
    if (!is_id_char(c)) return false;
  }
  return true;
}

std::string generate_request_id() {
  thread_local IdGenerator generator;
  std::uint64_t high = generator.next();
  std::uint64_t low = generator.next();
  high = (high & ~0xF000ULL) | 0x4000ULL;                        // version 4
  low = (low & ~(0xC000ULL << 48)) | (0x8000ULL << 48);          // RFC 4122 variant
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(36, '-');
  std::size_t out = 0;
  auto put = [&](std::uint64_t word, int nibbles) {
    for (int i = nibbles - 1; i >= 0; --i) {
      if (out == 8 || out == 13 || out == 18 || out == 23) ++out;
      id[out++] = kHex[(word >> (i * 4)) & 0xF];
    }
  };
  put(high, 16);
  put(low, 16);
  return id;
}

}  // namespace apigw::http
