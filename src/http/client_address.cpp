// Address parsing and CIDR matching for trusted proxies (see client_address.h).
#include "apigw/http/client_address.h"

#include <arpa/inet.h>

#include <cstring>
#include <string>

namespace apigw::http {

IpBytes parse_ip(std::string_view text) {
  IpBytes out;
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  if (text.empty() || text.size() > 45) return out;
  char buffer[46];
  std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';
  if (inet_pton(AF_INET, buffer, out.bytes.data()) == 1) {
    out.size = 4;
  } else if (inet_pton(AF_INET6, buffer, out.bytes.data()) == 1) {
    static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(out.bytes.data(), kMapped, 12) == 0) {
      std::memmove(out.bytes.data(), out.bytes.data() + 12, 4);
      out.size = 4;
    } else {
      out.size = 16;
    }
  }
  return out;
}

TrustedProxies::TrustedProxies(const std::vector<Cidr>& cidrs) : cidrs_(cidrs) {}

bool TrustedProxies::contains(const IpBytes& address) const {
  for (const Cidr& cidr : cidrs_) {
    if (cidr.net.size() != address.size) continue;
    int bits = cidr.prefix;
    std::size_t i = 0;
    for (; bits >= 8; bits -= 8, ++i) {
      if (cidr.net[i] != address.bytes[i]) break;
    }
    if (bits >= 8) continue;
    if (bits == 0) return true;
    const std::uint8_t mask = static_cast<std::uint8_t>(0xFF << (8 - bits));
    if ((cidr.net[i] & mask) == (address.bytes[i] & mask)) return true;
  }
  return false;
}

}  // namespace apigw::http
