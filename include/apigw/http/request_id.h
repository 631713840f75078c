// X-Request-Id: keep a sane incoming id, otherwise make a new one. Pure apart from a per-thread generator.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace apigw::http {

inline constexpr std::size_t kMaxRequestIdLength = 128;

// 1..128 characters from [A-Za-z0-9._:-]: safe to log and to copy into headers and JSON unescaped.
bool is_sane_request_id(std::string_view id);

// A request's id, held inline: a request gets one without an allocation.
class RequestId {
 public:
  // A random version-4 UUID in lower-case hex, from a per-thread generator (no locks, no syscalls).
  static RequestId generate();

  // Takes `id` if it is sane (is_sane_request_id); otherwise keeps the current id and returns false.
  bool assign_if_sane(std::string_view id);

  std::string_view view() const { return {data_, size_}; }
  operator std::string_view() const { return view(); }  // NOLINT: an id is read as text everywhere

 private:
  static_assert(kMaxRequestIdLength <= 255);
  char data_[kMaxRequestIdLength];
  std::uint8_t size_ = 0;
};

}  // namespace apigw::http
