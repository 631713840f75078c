// Hop-by-hop header rules (see header_rules.h).
#include "apigw/proxy/header_rules.h"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>

namespace apigw::proxy {
namespace http = boost::beast::http;

HopByHopRules::HopByHopRules(const http::fields& fields) {
  const auto [first, last] = fields.equal_range(http::field::connection);
  for (auto it = first; it != last; ++it) add_connection(it->value());
}

void HopByHopRules::add_connection(std::string_view value) {
  for (std::string_view token : http::token_list{value}) {
    if (boost::beast::iequals(token, "close")) close_ = true;
    if (token_count_ < kMaxTokens) {
      tokens_[token_count_++] = token;
    } else {
      overflow_ = true;
    }
  }
}

bool HopByHopRules::drop(http::field field, std::string_view name) const {
  switch (field) {
    case http::field::connection:
    case http::field::keep_alive:
    case http::field::te:
    case http::field::trailer:
    case http::field::transfer_encoding:
    case http::field::upgrade:
    case http::field::content_length:  // regenerated from the parsed framing
      return true;
    default:
      break;
  }
  if (name.size() >= 6 && boost::beast::iequals(name.substr(0, 6), "proxy-")) return true;
  for (std::size_t i = 0; i < token_count_; ++i) {
    if (boost::beast::iequals(tokens_[i], name)) return true;
  }
  // A Connection header with more names than we keep is hostile: forward only headers Beast knows.
  return overflow_ && field == http::field::unknown;
}

}  // namespace apigw::proxy
