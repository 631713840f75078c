// Reads and writes through a connection's TLS stream (tls.cpp), for socket_io.cpp: the one place that chooses
// between the socket and TLS, so that nothing above net knows which it is. Private to src/net.
#pragma once

#include <cstddef>
#include <span>
#include <tuple>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/system/error_code.hpp>

#include "apigw/net/socket_io.h"

namespace apigw::net::detail {

// As read_some: the bytes read (at least one), eof (a close_notify, or the peer's end of the connection), or the
// error.
boost::asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> tls_read_some(
    Connection& connection, boost::asio::mutable_buffer buffer);

// Writes all of `buffers` but the first `written` bytes; returns the error and the bytes written in all.
boost::asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> tls_write(
    Connection& connection, std::span<const boost::asio::const_buffer> buffers, std::size_t written);

}  // namespace apigw::net::detail
