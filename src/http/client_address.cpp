// Address parsing and CIDR matching for trusted proxies (see client_address.h).
#include "apigw/http/client_address.h"

#include <arpa/inet.h>

#include <cstring>
#include <string>

#include "apigw/http/text.h"

namespace apigw::http {

namespace {

// inet_pton on a NUL-terminated copy of `text`. No address is longer than 45 characters
// ("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"), so longer text fails without a copy.
IpBytes parse_family(std::string_view text, int family, std::uint8_t size) {
  IpBytes out;
  if (text.empty() || text.size() > 45) return out;
  char buffer[46];
  std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';
  if (inet_pton(family, buffer, out.bytes.data()) == 1) out.size = size;
  return out;
}

}  // namespace

IpBytes parse_ipv4(std::string_view text) { return parse_family(text, AF_INET, 4); }

IpBytes parse_ipv6(std::string_view text) { return parse_family(text, AF_INET6, 16); }

IpBytes parse_ip(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
  if (const IpBytes v4 = parse_ipv4(text); v4.size != 0) return v4;
  IpBytes out = parse_ipv6(text);
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (out.size == 16 && std::memcmp(out.bytes.data(), kMapped, 12) == 0) {
    std::memmove(out.bytes.data(), out.bytes.data() + 12, 4);
    out.size = 4;
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

std::string forwarded_client(const boost::beast::http::fields& headers) {
  if (const auto real_ip = headers.find("X-Real-IP"); real_ip != headers.end()) {
    const std::string_view address = trim_ows(real_ip->value());
    if (parse_ip(address).size != 0) return std::string(address);
  }
  std::string_view last;
  for (auto [field, end] = headers.equal_range("X-Forwarded-For"); field != end; ++field) {
    const std::string_view value = field->value();
    last = trim_ows(value.substr(value.rfind(',') == std::string_view::npos ? 0 : value.rfind(',') + 1));
  }
  return parse_ip(last).size != 0 ? std::string(last) : std::string();
}

}  // namespace apigw::http
