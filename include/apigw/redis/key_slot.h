// Redis Cluster key placement: the hash slot of a key (CRC16/XMODEM of the key, or of its hash tag, mod 16384),
// as the cluster specification defines it. Pure.
#pragma once

#include <cstdint>
#include <string_view>

namespace apigw::redis {

inline constexpr std::uint16_t kClusterSlots = 16384;

// CRC16 with the XMODEM parameters (polynomial 0x1021, initial 0, no reflection): crc16("123456789") == 0x31C3.
std::uint16_t crc16(std::string_view data);

// The part of `key` that is hashed: the text between the first '{' and the next '}' when that is not empty,
// otherwise the whole key.
std::string_view hash_tag(std::string_view key);

// The cluster slot of `key`, 0..16383.
std::uint16_t key_slot(std::string_view key);

}  // namespace apigw::redis
