// The TCP endpoint of a configured listen address. Config validation guarantees an IP literal (IPv6 without its
// brackets), so this only converts; it throws boost::system::system_error if handed anything else.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "apigw/config/config.h"

namespace apigw::net {

inline boost::asio::ip::tcp::endpoint tcp_endpoint(const config::Endpoint& endpoint) {
  return {boost::asio::ip::make_address(endpoint.host), endpoint.port};
}

}  // namespace apigw::net
