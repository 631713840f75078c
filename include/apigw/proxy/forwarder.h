// Forwards one client request to its route's upstream and streams the response back: endpoint choice, retries,
// request and response framing, hop-by-hop and forwarding headers. Runs on a worker's loop; never blocks it.
// Bodies stream through a bounded buffer; only small request bodies are held whole, so that they can be retried.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "apigw/config/snapshot.h"
#include "apigw/core/deadline.h"
#include "apigw/core/units.h"
#include "apigw/net/socket_io.h"
#include "apigw/proxy/response_parser.h"
#include "apigw/upstream/upstream_pool.h"

namespace apigw::proxy {

using RequestParser = boost::beast::http::request_parser<boost::beast::http::buffer_body>;

// Request bodies up to this size (with a Content-Length) are read whole before an upstream is chosen, so a
// failed attempt can be retried and a slow client never holds an upstream connection.
inline constexpr std::uint64_t kBufferedBodyLimit = 64 * 1024;
// Bytes moved per read when streaming a body either way.
inline constexpr std::size_t kRelayChunk = 64 * 1024;
// Bytes read from a client at a time while its request body streams.
inline constexpr std::size_t kClientReadSize = 16 * 1024;
// Upper bound of an upstream response head.
inline constexpr std::uint32_t kMaxResponseHeadBytes = 64 * 1024;

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
  UpstreamDeadline& upstream; // the session's; the worker's sweeper enforces it
  const bool& draining;       // the worker's: once set, responses say Connection: close
  const bool& closed;         // the session's: the client connection was closed under the exchange (drain timeout)
};

// Sees a forwarded response as it is relayed to the client: the response cache's fill.
class ResponseObserver {
 public:
  // The final response's head; `fields` are valid during the call only.
  virtual void on_head(unsigned status, std::span<const ResponseParser::Field> fields) = 0;
  // Body bytes as they are relayed (without chunk framing); valid during the call only.
  virtual void on_body(std::string_view bytes) = 0;
  // The whole response reached the client.
  virtual void on_complete() = 0;

 protected:
  ~ResponseObserver() = default;
};

// Sees the request as it is forwarded: the migration shadow's copy.
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
  std::array<ResponseObserver*, 2> observers{};  // the cache's fill, the audit's copy; null when unused
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
  bool keep_alive = false;     // kResponded: the client connection may carry another request
  bool body_consumed = true;   // kLocalReply: the request body was read to its end
  std::uint64_t bytes = 0;     // bytes written to the client
  std::string_view endpoint;   // the upstream endpoint that answered, for the access log
};

// Whether a request of this method may be sent again after a failure (RFC 9110, 9.2.2).
bool is_idempotent(boost::beast::http::verb method);

// Reads an upstream response up to its final head: `response` is made anew (over `fields`) for each interim 1xx
// response, which is skipped; a HEAD request's response is parsed without a body. Returns the read or parse
// error, partial_message when the upstream closed inside the head, bad_status for a 101. `got_bytes` is set once
// any response byte arrived.
boost::asio::awaitable<boost::system::error_code> read_final_head(upstream::UpstreamConnection& connection,
                                                                  std::optional<ResponseParser>& response,
                                                                  std::vector<ResponseParser::Field>& fields,
                                                                  bool head_request, bool& got_bytes);

class Forwarder {
 public:
  Forwarder(ClientSide client, const ForwardRequest& request, upstream::UpstreamPool& pool);
  boost::asio::awaitable<ForwardResult> run();

 private:
  enum class AttemptOutcome { kResponseHead, kUpstreamFailed, kClientFailed };
  struct Attempt {
    AttemptOutcome outcome = AttemptOutcome::kUpstreamFailed;
    boost::system::error_code error;
    bool got_response_bytes = false;
  };

  bool replayable() const { return !has_body_ || buffered_; }
  boost::asio::awaitable<bool> read_buffered_body();
  boost::asio::awaitable<boost::system::error_code> read_client_chunk(char* data, std::size_t size,
                                                                      std::size_t& got);
  void fail_on_client(const boost::system::error_code& error);
  void build_request_head();
  void request_sent();
  boost::system::error_code upstream_error(const boost::system::error_code& error) const;
  void end_lease(upstream::UpstreamConnectionPtr connection, bool reusable);
  void count_failure(const boost::system::error_code& error);  // an attempt's upstream error, in metrics
  boost::asio::awaitable<Attempt> exchange(upstream::UpstreamConnection& connection);
  boost::asio::awaitable<Attempt> stream_request_body(upstream::UpstreamConnection& connection);
  boost::asio::awaitable<void> relay_response(upstream::UpstreamConnectionPtr connection);
  boost::asio::awaitable<boost::system::error_code> read_response_body(upstream::UpstreamConnection& connection,
                                                                       std::size_t& got);
  std::string build_response_head(bool& keep_alive, bool& chunked, bool& has_body);
  void local_reply(unsigned status, std::string message);

  ClientSide client_;
  const ForwardRequest& request_;
  upstream::UpstreamPool& pool_;
  ForwardResult result_;
  std::chrono::steady_clock::time_point attempt_start_{};

  bool head_request_ = false;
  bool idempotent_ = false;
  bool has_body_ = false;
  bool chunked_ = false;
  bool buffered_ = false;
  std::optional<std::uint64_t> length_;
  std::string body_;          // a buffered request body
  std::string request_head_;  // the upstream request's head
  std::size_t framing_at_ = 0;  // where its framing header (or closing blank line) starts
  bool sent_ = false;           // the whole request reached an upstream once
  std::unique_ptr<char[]> relay_;  // body bytes in transit, either way
  std::size_t relay_size_ = 0;
  std::vector<ResponseParser::Field> response_fields_;
  std::optional<ResponseParser> response_;
};

}  // namespace apigw::proxy
