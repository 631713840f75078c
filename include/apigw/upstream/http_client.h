// The one HTTP/1.1 client exchange every part of apigw that talks to an upstream uses (the forwarder, the
// migration shadow, the health prober, the audit sink's collector): connect within a deadline, send a request's
// bytes, read the final response head (interim 1xx responses skipped), then relay or collect the body (fixed
// length, chunked, or until close). Socket I/O is net's: no system call while nothing is ready, no suspension
// while the socket takes a write whole. Timeouts are the caller's (a deadline that cancels the socket); a wait
// cancelled that way ends with operation_aborted.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include "apigw/config/snapshot.h"
#include "apigw/http/response_parser.h"
#include "apigw/net/tls.h"
#include "apigw/upstream/upstream_connection.h"

namespace apigw::upstream {

// Upper bound of an upstream response head.
inline constexpr std::uint32_t kMaxResponseHeadBytes = 64 * 1024;

// How a connection to an HTTPS endpoint opens TLS: the shared context, whom the handshake is with (the server
// name, else the address to verify), and the endpoint's resumable sessions.
struct TlsTarget {
  std::shared_ptr<net::TlsClientContext> context;
  std::string server_name;  // `tls.sni`, else the endpoint's host name; empty for an IP literal
  std::string address;
  std::shared_ptr<net::TlsSessionCache> sessions = std::make_shared<net::TlsSessionCache>();
};
TlsTarget tls_target(std::shared_ptr<net::TlsClientContext> context, const config::ResolvedEndpoint& endpoint);

// Connects `connection` to `address` (TCP_NODELAY set), then with `tls` runs the TLS handshake, or fails with
// timed_out at `deadline`. A TLS failure (not a timeout) says why in `tls_failure`, which is left empty for any
// other failure. A failed connection's socket is closed.
boost::asio::awaitable<boost::system::error_code> connect(UpstreamConnection& connection,
                                                          const boost::asio::ip::tcp::endpoint& address,
                                                          std::chrono::steady_clock::time_point deadline,
                                                          const TlsTarget* tls = nullptr,
                                                          std::string* tls_failure = nullptr);

// Sends all of `buffers` (one request's head and body, or several pipelined requests) but the first `sent` bytes.
// Returns the error and the bytes sent in all; the caller's buffers must live until it returns. A hot path tries
// net::write_now first and calls this only for what the socket did not take at once.
boost::asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> send_request(
    UpstreamConnection& connection, std::span<const boost::asio::const_buffer> buffers, std::size_t sent = 0);

// One deadline for a whole exchange (connect, request and answer) of a client the worker's sweeper does not watch
// (the shadow's batches, the health prober, the audit sink's collector): when it passes, the watched connection's
// pending operation is cancelled and `expired()` says why it ended. Lives on the connection's executor.
class ExchangeDeadline {
 public:
  ExchangeDeadline(const boost::asio::any_io_executor& executor, std::chrono::steady_clock::time_point deadline);
  ~ExchangeDeadline();
  ExchangeDeadline(const ExchangeDeadline&) = delete;
  ExchangeDeadline& operator=(const ExchangeDeadline&) = delete;

  // The connection whose operations the deadline cancels; until unwatch(), which must come before it is closed.
  void watch(UpstreamConnection& connection) { state_->socket = &connection.socket; }
  void unwatch() { state_->socket = nullptr; }
  bool expired() const { return state_->expired; }

 private:
  // The timer's handler may run after the exchange ended: what it touches is shared.
  struct State {
    bool expired = false;
    boost::asio::ip::tcp::socket* socket = nullptr;
  };
  std::shared_ptr<State> state_;
  boost::asio::steady_timer timer_;
};

// Reads one response from an upstream connection. The fields are views into the connection's read buffer, valid
// until the next read; their storage is kept across responses, so a reader reused for many responses stops
// allocating once it has grown.
class ResponseReader {
 public:
  using Field = http::ResponseParser::Field;
  ResponseReader();

  // Reads up to the final response head: interim 1xx responses are consumed, except that with
  // `stop_at_interim` one other than 100 Continue (102 Processing, 103 Early Hints, ...) is returned (interim()
  // then says so, and the next call reads on); a response to HEAD is parsed without a body. Returns the read or
  // parse error, partial_message when the upstream closed inside the head, bad_status for a 101 (apigw never
  // forwards Upgrade). `got_bytes` is set once any response byte arrived (a kept-alive connection that fails
  // before that had most likely gone stale).
  boost::asio::awaitable<boost::system::error_code> read_head(UpstreamConnection& connection, bool head_request,
                                                              bool& got_bytes, bool stop_at_interim = false);
  // The head read last is an interim (1xx) response.
  bool interim() const { return parser_->status() < 200; }

  // The next body bytes, into `into`: `got` of them (possibly none, after a chunk header). A body that ends with
  // the connection ends at the upstream's end of stream.
  boost::asio::awaitable<boost::system::error_code> read_body(UpstreamConnection& connection,
                                                              std::span<char> into, std::size_t& got);

  // Reads the rest of the body through a scratch buffer, handing each piece to `sink` (which may be empty: the
  // body is read and dropped).
  boost::asio::awaitable<boost::system::error_code> read_rest(UpstreamConnection& connection,
                                                              const std::function<void(std::string_view)>& sink);

  http::ResponseParser& response() { return *parser_; }
  const http::ResponseParser& response() const { return *parser_; }
  unsigned status() const { return parser_->status(); }
  bool done() const { return parser_->is_done(); }
  // The upstream keeps the connection open after this response, and it was read to its end with nothing after it.
  bool reusable(const UpstreamConnection& connection) const {
    return parser_->is_done() && parser_->keep_alive() && connection.buffer.size() == 0;
  }

 private:
  std::vector<Field> fields_;
  std::optional<http::ResponseParser> parser_;
};

// Whether `error` says the upstream's bytes were not HTTP (as opposed to a connection that failed or ended).
bool is_protocol_error(const boost::system::error_code& error);

}  // namespace apigw::upstream
