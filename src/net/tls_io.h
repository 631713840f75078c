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

// As read_now: one SSL read that does not wait (OpenSSL's read-ahead may hold bytes no edge will announce, and
// `drained` says so).
std::size_t tls_read_now(Connection& connection, boost::asio::mutable_buffer buffer, boost::system::error_code& error);

// As read_some: the bytes read (at least one), eof (a close_notify, or the peer's end of the connection), or the
// error.
boost::asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> tls_read_some(
    Connection& connection, boost::asio::mutable_buffer buffer);

// As write_now, from `written` bytes into `buffers`: what TLS took now (small pieces gathered into one record).
// A write that must wait for the socket to be readable (a renegotiation) says so in `wants_read`.
std::size_t tls_write_now(Connection& connection, std::span<const boost::asio::const_buffer> buffers,
                          std::size_t written, boost::system::error_code& error, bool& wants_read);

// Sends close_notify once, without waiting; nothing more is written through TLS after it.
void tls_close_notify(Connection& connection);

// Writes all of `buffers` but the first `written` bytes; returns the error and the bytes written in all.
boost::asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> tls_write(
    Connection& connection, std::span<const boost::asio::const_buffer> buffers, std::size_t written);

}  // namespace apigw::net::detail
