// Data-plane socket I/O as an edge-triggered loop does it: a read waits for readiness (no system call) unless the
// last read filled its buffer, then reads once; a write goes straight to the socket and waits only when the
// socket is full; a parse step reads only when the buffered bytes are not enough. All of it runs on the worker's
// loop and never blocks it.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <tuple>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/system/error_code.hpp>

namespace apigw::net {

// TLS over a connection's socket (tls.h), and how it is freed where its type is unknown.
struct TlsStream;
struct TlsStreamDelete {
  void operator()(TlsStream* stream) const;
};

// A data-plane socket and what the last read said about it.
struct Connection {
  explicit Connection(boost::asio::ip::tcp::socket&& s) : socket(std::move(s)) {}
  explicit Connection(const boost::asio::any_io_executor& executor) : socket(executor) {}

  boost::asio::ip::tcp::socket socket;
  // The last read left the socket empty, so the next one waits for an edge first. False after a read that
  // filled its buffer (more may be waiting, and no new edge will say so).
  bool drained = false;
  // Set once a TLS handshake began on the socket: every read and write below then goes through it.
  std::unique_ptr<TlsStream, TlsStreamDelete> tls;
};

// One non-blocking read of what is there now: the bytes read, 0 with eof, or 0 with no error when nothing is
// there. Sets `drained` as read_some does.
std::size_t read_now(Connection& connection, boost::asio::mutable_buffer buffer, boost::system::error_code& error);

// Reads what is there, waiting for it if need be: returns the bytes read (at least one), eof, or the error
// (operation_aborted when the socket was cancelled).
boost::asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> read_some(
    Connection& connection, boost::asio::mutable_buffer buffer);

// One non-blocking write of what the socket takes now; a full socket is not an error. With write_rest, the
// coroutine-free fast path of write_all for the hot path: most writes complete here.
std::size_t write_now(Connection& connection, std::span<const boost::asio::const_buffer> buffers,
                      boost::system::error_code& error);
// Writes what write_now left, `written` bytes into `buffers`, waiting for the socket as needed.
boost::asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> write_rest(
    Connection& connection, std::span<const boost::asio::const_buffer> buffers, std::size_t written);

// Ends the sending side: over TLS a close_notify first (if the socket takes it now), then the TCP shutdown.
void shutdown_send(Connection& connection, boost::system::error_code& error);

// Writes all of `buffers`. Returns the error and the bytes written.
boost::asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> write_all(
    Connection& connection, std::span<const boost::asio::const_buffer> buffers);
boost::asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> write_all(
    Connection& connection, boost::asio::const_buffer buffer);

// Told, each time a parse step needs more bytes, what the parser holds unparsed: during a chunked body, a chunk
// header or the trailer section still incomplete. An error it returns ends the step with that error.
class PendingWatch {
 public:
  virtual boost::system::error_code on_pending(std::string_view pending) = 0;

 protected:
  ~PendingWatch() = default;
};

// One parse step, as http::async_read_some: feeds `parser` from `buffer` and reads up to `read_size` more bytes
// only while the parser needs more. Returns once the parser made progress (header done, body bytes delivered
// into a buffer_body, message done), with need_buffer when the body buffer is full, or with the read error
// (end_of_stream when the peer closed before a message started).
boost::asio::awaitable<boost::system::error_code> parse_some(Connection& connection, boost::beast::flat_buffer& buffer,
                                                             boost::beast::http::basic_parser<true>& parser,
                                                             std::size_t read_size, PendingWatch* watch = nullptr);
boost::asio::awaitable<boost::system::error_code> parse_some(Connection& connection, boost::beast::flat_buffer& buffer,
                                                             boost::beast::http::basic_parser<false>& parser,
                                                             std::size_t read_size);

}  // namespace apigw::net
