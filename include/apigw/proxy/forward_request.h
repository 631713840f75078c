// What the forwarder is given and gives back: the client side of the exchange, the request as the pipeline
// prepared it, the observers that see the request and the response go by, and the outcome.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "apigw/config/snapshot.h"
#include "apigw/core/deadline.h"
#include "apigw/core/units.h"
#include "apigw/http/response_parser.h"
#include "apigw/net/socket_io.h"

namespace apigw::proxy {

using RequestParser = boost::beast::http::request_parser<boost::beast::http::buffer_body>;

// The upstream socket an exchange is waiting on, and until when. Checked by the worker's sweeper like the client
// deadline, so upstream timeouts cost no timer per operation; a cancelled wait is reported as timed_out.
struct UpstreamDeadline {
  core::Deadline deadline;
  boost::asio::ip::tcp::socket* socket = nullptr;  // set while an exchange uses a connection

  void watch(boost::asio::ip::tcp::socket& watched, core::Duration timeout) {
    socket = &watched;
    deadline.arm(timeout);
  }
  void clear() {
    socket = nullptr;
    deadline.disarm();
  }
  void check(core::Deadline::Clock::time_point now) {
    if (socket != nullptr && deadline.expire(now)) {
      boost::system::error_code ignored;
      socket->cancel(ignored);
    }
  }
};

// The client side of the exchange, owned by the client session; the parser has read the request head.
struct ClientSide {
  net::Connection& connection;
  boost::beast::flat_buffer& buffer;
  RequestParser& parser;
  core::Deadline& deadline;   // the session's; the worker's sweeper enforces it
  core::Duration io_timeout;  // bound on each body read or response write
  core::Duration header_timeout;  // bound on a chunked request body's trailer section
  std::size_t max_header_bytes;   // bound on a chunk header or a trailer section
  UpstreamDeadline& upstream; // the session's; the worker's sweeper enforces it
  const bool& draining;       // the worker's: once set, responses say Connection: close
  const bool& closed;         // the session's: the client connection was closed under the exchange (drain timeout)
};

// Sees a forwarded response as it is relayed to the client (the response cache's fill, the audit's copy).
class ResponseObserver {
 public:
  // The final response's head; `fields` are valid during the call only.
  virtual void on_head(unsigned status, std::span<const http::ResponseParser::Field> fields) = 0;
  // Body bytes as they are relayed (without chunk framing); valid during the call only.
  virtual void on_body(std::string_view bytes) = 0;
  // The whole response reached the client.
  virtual void on_complete() = 0;

 protected:
  ~ResponseObserver() = default;
};

// Sees the request as it is forwarded (the migration shadow's copy).
class RequestObserver {
 public:
  // Body bytes as they are read from the client (without chunk framing), whether held whole or streamed.
  virtual void on_request_body(std::string_view bytes) = 0;
  // The whole request reached an upstream, the first time it did. `head` is the upstream request's head without
  // its framing: the request line and fields, with no Content-Length, Transfer-Encoding or closing blank line.
  virtual void on_request_sent(std::string_view head) = 0;

 protected:
  ~RequestObserver() = default;
};

struct ForwardRequest {
  const config::Route* route = nullptr;
  std::string_view request_id;
  std::string_view path;  // after normalisation and rewrite
  std::string_view query;
  bool has_query = false;
  std::string_view authority;     // from an absolute-form target, replaces Host
  std::string_view host;          // the effective host (authority, else Host)
  std::string_view peer_address;  // the TCP peer, for X-Forwarded-For
  bool trusted_peer = false;      // the peer may set X-Forwarded-* and X-Real-IP
  bool debug_headers = true;
  bool name_upstream = false;     // X-Apigw-Upstream even without debug headers (a route with a split)
  bool keep_alive = true;         // the client asked to keep the connection
  std::string_view user_header;   // auth.forward_header: the client's copies are dropped; empty without auth
  std::string_view user_id;       // sent in user_header when not empty
  std::string_view cache_status;  // sent as X-Cache (replacing the upstream's) when not empty
  std::string_view drop_response_header;  // a response header the client never sees (the cache's tag header)
  // Whole RateLimit and RateLimit-Policy header lines ("Name: value\r\n") for the client; when not empty they
  // replace the upstream's fields of those names.
  std::string_view rate_limit_headers;
  // Whole traceparent (and tracestate) header lines for the upstream request (tracing on): the client's fields of
  // those names are not forwarded, and these end the head, before its framing. Empty: tracing is off, and the
  // client's fields pass like any other.
  std::string_view trace_headers;
  // A stale entry may answer instead of an upstream error: a 5xx response is not relayed but ends the forward as
  // a local reply with its status (stale-if-error).
  bool stale_fallback = false;
  std::span<ResponseObserver* const> observers;  // in the pipeline's order
  RequestObserver* request_observer = nullptr;
};

struct ForwardResult {
  enum class Kind {
    kResponded,   // a response was written to the client
    kLocalReply,  // nothing was written: the session answers `status` with `message`
    kAbort,       // the client connection must be closed now (a response was cut short, or the client left)
  };
  Kind kind = Kind::kAbort;
  unsigned status = 0;
  std::string message;
  std::string_view error;      // kLocalReply: the reply's "error" code; empty: the status's
  bool keep_alive = false;     // kResponded: the client connection may carry another request
  bool body_consumed = true;   // kLocalReply: the request body was read to its end
  std::uint64_t bytes = 0;     // bytes written to the client
  std::string_view endpoint;   // the upstream endpoint that answered, for the access log
};

// Whether a request of this method may be sent again after a failure (RFC 9110, 9.2.2).
bool is_idempotent(boost::beast::http::verb method);

}  // namespace apigw::proxy
