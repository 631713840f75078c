// Helpers for tests that play the other end of an HTTP connection themselves: a listener on a loopback port the
// kernel picks, in the test's own loop, and the reads a scripted peer needs.
#pragma once

#include <cstddef>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace apigw::test_servers {

inline boost::asio::ip::tcp::acceptor listen_on_loopback(const boost::asio::any_io_executor& executor) {
  return boost::asio::ip::tcp::acceptor(executor, {boost::asio::ip::make_address("127.0.0.1"), 0});
}

// Reads from `socket` until `pending` holds a whole head (up to its blank line), and takes that head out of
// `pending`, leaving what followed it. Empty when the peer closed (or the read failed) before a whole head came.
inline boost::asio::awaitable<std::string> read_head(boost::asio::ip::tcp::socket& socket, std::string& pending) {
  for (;;) {
    if (const std::size_t end = pending.find("\r\n\r\n"); end != std::string::npos) {
      std::string head = pending.substr(0, end + 4);
      pending.erase(0, end + 4);
      co_return head;
    }
    char bytes[4096];
    auto [error, n] = co_await socket.async_read_some(boost::asio::buffer(bytes),
                                                      boost::asio::as_tuple(boost::asio::use_awaitable));
    if (error) co_return std::string();
    pending.append(bytes, n);
  }
}

// Reads and drops bytes until the peer closes; true at its end of stream, false on an error (a reset, a cancel).
inline boost::asio::awaitable<bool> read_until_eof(boost::asio::ip::tcp::socket& socket) {
  for (;;) {
    char bytes[4096];
    auto [error, n] = co_await socket.async_read_some(boost::asio::buffer(bytes),
                                                      boost::asio::as_tuple(boost::asio::use_awaitable));
    if (error == boost::asio::error::eof) co_return true;
    if (error) co_return false;
  }
}

// Writes all of `bytes`; false when the write failed.
inline boost::asio::awaitable<bool> write_text(boost::asio::ip::tcp::socket& socket, std::string bytes) {
  auto [error, n] = co_await boost::asio::async_write(socket, boost::asio::buffer(bytes),
                                                      boost::asio::as_tuple(boost::asio::use_awaitable));
  co_return !error;
}

// Ends `socket` with a reset instead of an orderly close: SO_LINGER with a zero timeout, then close.
inline void reset(boost::asio::ip::tcp::socket& socket) {
  boost::system::error_code ignored;
  socket.set_option(boost::asio::socket_base::linger(true, 0), ignored);
  socket.close(ignored);
}

}  // namespace apigw::test_servers
