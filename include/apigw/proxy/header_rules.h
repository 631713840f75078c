// Which headers never cross the gateway, in either direction: hop-by-hop headers (RFC 9110 §7.6.1), those a
// Connection header names, and the framing headers apigw regenerates. Proxygen's proxy sample leaves this out;
// a gateway must not.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/fields.hpp>

namespace apigw::proxy {

class HopByHopRules {
 public:
  // Reads the Connection header(s) of `fields`; the views stay valid while `fields` lives.
  explicit HopByHopRules(const boost::beast::http::fields& fields);
  // No Connection header yet: add each one's value with add_connection (the views must outlive the rules).
  HopByHopRules() = default;
  void add_connection(std::string_view value);

  // True for a header that must not be forwarded: hop-by-hop, named by Connection, Proxy-*, or framing.
  bool drop(boost::beast::http::field field, std::string_view name) const;

  // True when the message's Connection header asked for "close".
  bool close() const { return close_; }

 private:
  static constexpr std::size_t kMaxTokens = 16;
  std::array<std::string_view, kMaxTokens> tokens_{};
  std::size_t token_count_ = 0;
  bool overflow_ = false;  // more tokens than kept: drop every header that is not end-to-end-known
  bool close_ = false;
};

}  // namespace apigw::proxy
