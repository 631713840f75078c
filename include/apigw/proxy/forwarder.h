// Forwards one client request to its route's upstream and streams the response back. The exchange reads top to
// bottom: run() (src/proxy/forwarder.cpp) leases a connection, sends the request and reads the response head,
// asking the RetryPolicy what a failure means; the heads come from forward_heads.h; the bodies move either way in
// src/proxy/body_relay.cpp. Runs on a worker's loop; never blocks it. Bodies stream through a bounded buffer;
// only small request bodies are held whole, so that they can be retried.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "apigw/proxy/forward_heads.h"
#include "apigw/proxy/forward_request.h"
#include "apigw/upstream/http_client.h"
#include "apigw/upstream/upstream_pool.h"

namespace apigw::proxy {

// Request bodies up to this size (with a Content-Length) are read whole before an upstream is chosen, so a
// failed attempt can be retried and a slow client never holds an upstream connection.
inline constexpr std::uint64_t kBufferedBodyLimit = 64 * 1024;
// Bytes moved per read when streaming a body either way.
inline constexpr std::size_t kRelayChunk = 64 * 1024;
// Bytes read from a client at a time while its request body streams.
inline constexpr std::size_t kClientReadSize = 16 * 1024;

// What the forwarder keeps from one exchange to the next, so that the requests of a busy connection reuse these
// instead of allocating them each time: the two heads and the response reader (its field storage). Owned by the
// caller; one exchange at a time.
struct ExchangeBuffers {
  std::string request_head;   // the upstream request's head
  std::string response_head;  // the client response's head
  upstream::ResponseReader response;

  // Gives back a head that grew past `max_capacity` for one large request (the next Forwarder empties the rest).
  void trim(std::size_t max_capacity);
};

class Forwarder final : private net::PendingWatch {
 public:
  Forwarder(ClientSide client, const ForwardRequest& request, upstream::UpstreamPool& pool, ExchangeBuffers& buffers);
  boost::asio::awaitable<ForwardResult> run();

 private:
  enum class AttemptOutcome { kResponseHead, kUpstreamFailed, kClientFailed };
  struct Attempt {
    AttemptOutcome outcome = AttemptOutcome::kUpstreamFailed;
    boost::system::error_code error;
    bool got_response_bytes = false;
  };

  // forwarder.cpp: the attempts.
  bool replayable() const { return !has_body_ || buffered_; }
  bool wants_continue() const;  // Expect: 100-continue on an HTTP/1.1 request with a body
  boost::asio::awaitable<bool> send_continue();
  boost::asio::awaitable<bool> send_interim();  // the upstream's 1xx head, to the client
  boost::asio::awaitable<Attempt> exchange(upstream::UpstreamConnection& connection);
  void request_sent();
  boost::system::error_code upstream_error(const boost::system::error_code& error) const;
  void fail_lease(upstream::Lease& lease);                     // closed: the exchange failed on it
  void finish_lease(upstream::Lease& lease, bool reusable);   // a response was read whole (or relayed)
  void count_failure(const boost::system::error_code& error);  // an attempt's upstream error, in metrics
  void lease_failed(const upstream::LeaseResult& leased);
  void attempt_failed(const Attempt& attempt, std::size_t endpoint);
  void local_reply(unsigned status, std::string message, std::string_view error = {});

  // body_relay.cpp: the request body from the client, the response body to it.
  boost::asio::awaitable<bool> read_buffered_body();
  boost::asio::awaitable<boost::system::error_code> read_client_chunk(char* data, std::size_t size,
                                                                      std::size_t& got);
  void fail_on_client(const boost::system::error_code& error);
  // A chunked body's incomplete chunk header or trailer section: bounded by max_header_bytes, and the trailer
  // section by header_timeout from its start (not idle_timeout per read).
  boost::system::error_code on_pending(std::string_view pending) override;
  boost::asio::awaitable<Attempt> stream_request_body(upstream::UpstreamConnection& connection);
  boost::asio::awaitable<void> relay_response(upstream::Lease lease);
  // A body that came whole with its head was written (`written` bytes of head and body, or `error`).
  bool whole_body_sent(upstream::Lease& lease, std::string_view body, std::size_t written,
                       const boost::system::error_code& error);
  boost::asio::awaitable<bool> relay_body(upstream::Lease& lease, const std::string& head, ResponseFraming framing);
  void ensure_relay_buffer(std::size_t wanted);

  ClientSide client_;
  const ForwardRequest& request_;
  upstream::UpstreamPool& pool_;
  ForwardResult result_;
  std::chrono::steady_clock::time_point attempt_start_{};

  bool head_request_ = false;
  bool idempotent_ = false;
  bool has_body_ = false;
  bool buffered_ = false;
  RequestFraming framing_;
  std::string body_;          // a buffered request body
  std::string& request_head_;  // the upstream request's head
  std::size_t framing_at_ = 0;  // where its framing header (or closing blank line) starts
  bool sent_ = false;           // the whole request reached an upstream once
  bool in_trailer_ = false;     // the request body's last chunk has begun: header_timeout bounds the rest
  std::unique_ptr<char[]> relay_;  // body bytes in transit, either way
  std::size_t relay_size_ = 0;
  std::string& response_head_;  // the client response's head
  upstream::ResponseReader& response_;
};

}  // namespace apigw::proxy
