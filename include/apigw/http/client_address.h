// Trusted-proxy decisions: whether a peer may set X-Forwarded-For / X-Real-IP, and the client such a peer names.
// Pure.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <string>
#include <vector>

#include <boost/beast/http/fields.hpp>

namespace apigw::http {

// An IPv4 or IPv6 address as raw bytes (IPv4-mapped IPv6 is folded to IPv4).
struct IpBytes {
  std::array<std::uint8_t, 16> bytes{};
  std::uint8_t size = 0;  // 4 or 16; 0 = invalid
};

// An IPv4 address, or an IPv6 one with or without brackets ("[::1]"; IPv4-mapped folded to IPv4); size 0 when
// `text` is neither.
IpBytes parse_ip(std::string_view text);
// Exactly one family, as inet_pton reads it (no brackets, no folding): dotted-quad IPv4 into 4 bytes, IPv6
// ("::1", "::ffff:10.0.0.1") into 16; size 0 when `text` is not an address of that family.
IpBytes parse_ipv4(std::string_view text);
IpBytes parse_ipv6(std::string_view text);

// A network as written in `server.trusted_proxies`: "10.0.0.0/8", "::1/128".
struct Cidr {
  std::string text;               // as written
  std::vector<std::uint8_t> net;  // 4 or 16 bytes, host bits cleared
  int prefix = 0;
};

class TrustedProxies {
 public:
  TrustedProxies() = default;
  explicit TrustedProxies(const std::vector<Cidr>& cidrs);
  bool contains(const IpBytes& address) const;
  bool empty() const { return cidrs_.empty(); }

 private:
  std::vector<Cidr> cidrs_;
};

// The client a trusted proxy in front says it served: X-Real-IP when it holds an address, else the last address of
// X-Forwarded-For (the one the nearest proxy appended). Empty when neither names an address. Only for requests
// from a trusted peer.
std::string forwarded_client(const boost::beast::http::fields& headers);

}  // namespace apigw::http
