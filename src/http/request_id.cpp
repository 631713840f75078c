// Request id checks and generation (see request_id.h).
#include "apigw/http/request_id.h"

#include <array>
#include <cstdint>
#include <cstring>
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

// The two lower-case hex digits of every byte value, "000102...ff".
constexpr std::array<char, 512> kHexPairs = [] {
  constexpr char kHex[] = "0123456789abcdef";
  std::array<char, 512> pairs{};
  for (std::size_t byte = 0; byte < 256; ++byte) {
    pairs[2 * byte] = kHex[byte >> 4];
    pairs[2 * byte + 1] = kHex[byte & 0xF];
  }
  return pairs;
}();

// `word`'s 16 hex digits, most significant first.
void put_hex(char* out, std::uint64_t word) {
  for (int byte = 0; byte < 8; ++byte) {
    std::memcpy(out + 2 * byte, &kHexPairs[2 * ((word >> (56 - 8 * byte)) & 0xFF)], 2);
  }
}

}  // namespace

bool is_sane_request_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxRequestIdLength) return false;
  for (char c : id) {
    if (!is_id_char(c)) return false;
  }
  return true;
}

RequestId RequestId::generate() {
  thread_local IdGenerator generator;
  std::uint64_t high = generator.next();
  std::uint64_t low = generator.next();
  high = (high & ~0xF000ULL) | 0x4000ULL;                // version 4
  low = (low & ~(0xC000ULL << 48)) | (0x8000ULL << 48);  // RFC 4122 variant
  // 32 hex digits, then laid out 8-4-4-4-12.
  char digits[32];
  put_hex(digits, high);
  put_hex(digits + 16, low);
  RequestId id;
  char* out = id.data_;
  std::memcpy(out, digits, 8);
  out[8] = '-';
  std::memcpy(out + 9, digits + 8, 4);
  out[13] = '-';
  std::memcpy(out + 14, digits + 12, 4);
  out[18] = '-';
  std::memcpy(out + 19, digits + 16, 4);
  out[23] = '-';
  std::memcpy(out + 24, digits + 20, 12);
  id.size_ = 36;
  return id;
}

bool RequestId::assign_if_sane(std::string_view id) {
  if (!is_sane_request_id(id)) return false;
  std::memcpy(data_, id.data(), id.size());
  size_ = static_cast<std::uint8_t>(id.size());
  return true;
}

}  // namespace apigw::http
