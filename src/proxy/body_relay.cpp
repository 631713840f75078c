// The bodies' way through the forwarder (see forwarder.h): the request body from the client (held whole when
// small, streamed otherwise) and the response from the upstream to the client (from the read buffer as it is when
// it came whole with its head, streamed and re-chunked as needed otherwise), shown to the observers as it goes.
#include <algorithm>
#include <array>
#include <cctype>
#include <span>
#include <tuple>

#include <boost/beast/http/error.hpp>
#include <fmt/format.h>

#include "apigw/net/socket_io.h"
#include "apigw/proxy/forwarder.h"

namespace apigw::proxy {
namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using boost::system::error_code;

namespace {

constexpr std::string_view kChunkEnd = "\r\n";
constexpr std::string_view kLastChunk = "0\r\n\r\n";

// One piece of a body on its way out: the head first if it has not gone yet, then the bytes, chunk-framed when
// the receiver gets a chunked body, and the last chunk after the last piece.
class OutgoingPiece {
 public:
  OutgoingPiece(const std::string* head, bool chunked, std::string_view bytes, bool last) {
    const auto size_end = fmt::format_to(size_line_, "{:x}\r\n", bytes.size());
    if (head != nullptr) buffers_[count_++] = asio::buffer(*head);
    if (chunked && !bytes.empty()) buffers_[count_++] = asio::buffer(size_line_, size_end - size_line_);
    buffers_[count_++] = asio::buffer(bytes.data(), bytes.size());
    if (chunked && !bytes.empty()) buffers_[count_++] = asio::buffer(kChunkEnd);
    if (chunked && last) buffers_[count_++] = asio::buffer(kLastChunk);
  }
  std::span<const asio::const_buffer> buffers() const { return {buffers_.data(), count_}; }

 private:
  char size_line_[24];
  std::array<asio::const_buffer, 5> buffers_{};
  std::size_t count_ = 0;
};

// Whether unparsed chunked-body bytes begin the last chunk: the CRLF that ends the previous chunk's data (when
// there was one), a chunk size of zero, then anything but another hex digit (its extensions or CRLF).
bool begins_last_chunk(std::string_view pending) {
  if (pending.starts_with(kChunkEnd)) pending.remove_prefix(kChunkEnd.size());
  const std::size_t zeros = pending.find_first_not_of('0');
  if (zeros == 0 || zeros == std::string_view::npos) return false;
  return !std::isxdigit(static_cast<unsigned char>(pending[zeros]));
}

}  // namespace

asio::awaitable<error_code> Forwarder::read_client_chunk(char* data, std::size_t size, std::size_t& got) {
  auto& body = client_.parser.get().body();
  body.data = data;
  body.size = size;
  if (!in_trailer_) client_.deadline.arm(client_.io_timeout);
  // A client that leaves mid-body may send its end of stream with its last bytes, bringing no new readiness.
  client_.connection.drained = false;
  error_code error =
      co_await net::parse_some(client_.connection, client_.buffer, client_.parser, kClientReadSize, this);
  if (error == bhttp::error::need_buffer) error = {};
  got = size - body.size;
  co_return error;
}

error_code Forwarder::on_pending(std::string_view pending) {
  if (pending.size() > client_.max_header_bytes) return bhttp::error::header_limit;
  if (!in_trailer_ && client_.parser.chunked() && begins_last_chunk(pending)) {
    // A trailer section is a header section: it gets header_timeout, however slowly its bytes come.
    in_trailer_ = true;
    client_.deadline.arm(client_.header_timeout);
  }
  return {};
}

void Forwarder::fail_on_client(const error_code& error) {
  if (error == bhttp::error::body_limit) {
    local_reply(413, "request body exceeds server.limits.max_body_bytes");
  } else if (error == bhttp::error::header_limit) {
    local_reply(431, "a chunk header or the trailer section exceeds server.limits.max_header_bytes");
  } else if (client_.deadline.expired && in_trailer_) {
    local_reply(408, "request trailer section not received within header_timeout");
  } else if (client_.deadline.expired) {
    local_reply(408, "request body not received in time");
  } else if (error == bhttp::error::partial_message || error == bhttp::error::end_of_stream) {
    result_.kind = ForwardResult::Kind::kAbort;  // the client went away mid-body
  } else if (error.category() == make_error_code(bhttp::error::bad_method).category()) {
    local_reply(400, fmt::format("malformed request body: {}", error.message()));
  } else {
    result_.kind = ForwardResult::Kind::kAbort;  // the client went away
  }
  result_.body_consumed = false;
}

asio::awaitable<bool> Forwarder::read_buffered_body() {
  body_.resize(*framing_.length);
  std::size_t filled = 0;
  while (!client_.parser.is_done()) {
    std::size_t got = 0;
    const error_code error = co_await read_client_chunk(body_.data() + filled, body_.size() - filled, got);
    filled += got;
    if (error) {
      fail_on_client(error);
      co_return false;
    }
  }
  result_.body_consumed = true;
  if (request_.request_observer) request_.request_observer->on_request_body(body_);
  co_return true;
}

void Forwarder::ensure_relay_buffer(std::size_t wanted) {
  if (relay_) return;
  relay_size_ = wanted;
  relay_ = std::make_unique_for_overwrite<char[]>(relay_size_);
}

asio::awaitable<Forwarder::Attempt> Forwarder::stream_request_body(upstream::UpstreamConnection& connection) {
  Attempt attempt;
  const auto timeout = pool_.upstream().config.timeout;
  ensure_relay_buffer(kRelayChunk);
  bool head_sent = false;
  while (!head_sent || !client_.parser.is_done()) {
    std::size_t got = 0;
    if (!client_.parser.is_done()) {
      const error_code error = co_await read_client_chunk(relay_.get(), relay_size_, got);
      if (error) {
        fail_on_client(error);
        attempt.outcome = AttemptOutcome::kClientFailed;
        co_return attempt;
      }
      if (request_.request_observer && got > 0) request_.request_observer->on_request_body({relay_.get(), got});
    }
    const OutgoingPiece piece(head_sent ? nullptr : &request_head_, framing_.chunked, {relay_.get(), got},
                              client_.parser.is_done());
    client_.upstream.deadline.arm(timeout);
    auto [error, n] = co_await net::write_all(connection, piece.buffers());
    if (error) {
      // The body was partly consumed: the request cannot be replayed, whatever the method.
      attempt.error = upstream_error(error);
      result_.body_consumed = false;
      co_return attempt;
    }
    head_sent = true;
  }
  result_.body_consumed = true;
  attempt.outcome = AttemptOutcome::kResponseHead;
  co_return attempt;
}

asio::awaitable<void> Forwarder::relay_response(upstream::Lease lease) {
  const http::ResponseParser& response = response_.response();
  if (request_.stale_fallback && response.status() >= 500) {
    // A stale entry answers instead: this response is dropped, with its connection.
    pool_.stats().error(upstream::UpstreamError::k5xx);
    client_.upstream.clear();
    lease.discard();
    local_reply(response.status(), fmt::format("upstream '{}' answered {}", pool_.upstream().config.name,
                                               response.status()));
    co_return;
  }
  const bool client_http11 = client_.parser.get().version() == 11;
  // A drain that began while the request was in flight closes the connection after this response.
  const ResponseFraming framing =
      response_framing(response, head_request_, client_http11, request_.keep_alive && !client_.draining);
  build_client_response_head(response, request_, pool_.upstream().config.name, framing, head_request_,
                             client_http11, response_head_);
  const std::string& head = response_head_;
  result_.status = response.status();
  if (result_.status >= 500) pool_.stats().error(upstream::UpstreamError::k5xx);
  for (ResponseObserver* observer : request_.observers) observer->on_head(result_.status, response.fields());

  const auto length = response.content_length();
  bool relayed = false;
  if (framing.has_body && length && lease->buffer.size() >= *length) {
    // Most API responses come whole with their head: they go out from the read buffer as they are, in one write.
    const std::string_view body(static_cast<const char*>(lease->buffer.data().data()),
                                static_cast<std::size_t>(*length));
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(head), asio::buffer(body.data(), body.size())};
    client_.deadline.arm(client_.io_timeout);
    error_code error;
    std::size_t n = net::write_now(client_.connection, buffers, error);
    if (!error && n < asio::buffer_size(buffers)) {
      std::tie(error, n) = co_await net::write_rest(client_.connection, buffers, n);
    }
    relayed = whole_body_sent(lease, body, n, error);
  } else {
    relayed = co_await relay_body(lease, head, framing);
  }
  result_.kind = relayed ? ForwardResult::Kind::kResponded : ForwardResult::Kind::kAbort;
  result_.keep_alive = framing.keep_alive;
}

bool Forwarder::whole_body_sent(upstream::Lease& lease, std::string_view body, std::size_t written,
                                const error_code& error) {
  result_.bytes += written;
  if (!error) {
    for (ResponseObserver* observer : request_.observers) {
      observer->on_body(body);
      observer->on_complete();
    }
  }
  upstream::UpstreamConnection& connection = lease.connection();
  connection.buffer.consume(body.size());
  // The parser never saw these body bytes: whether the connection can serve another request is the upstream's
  // keep-alive and nothing left after the body.
  finish_lease(lease, !error && response_.response().keep_alive() && connection.buffer.size() == 0);
  return !error;
}

asio::awaitable<bool> Forwarder::relay_body(upstream::Lease& lease, const std::string& head,
                                            ResponseFraming framing) {
  const auto length = response_.response().content_length();
  // Most responses are small: a buffer of their size, not of the largest chunk.
  ensure_relay_buffer(length && *length < kRelayChunk ? std::max<std::size_t>(*length, 1) : kRelayChunk);
  bool head_sent = false;
  for (;;) {
    std::size_t got = 0;
    if (framing.has_body && !response_.done()) {
      if (const error_code error = co_await response_.read_body(lease.connection(), {relay_.get(), relay_size_}, got)) {
        // The response was cut short; the client must not take a truncated body for a whole one.
        count_failure(upstream_error(error));
        fail_lease(lease);
        co_return false;
      }
    }
    const bool last = !framing.has_body || response_.done();
    if (head_sent && got == 0 && !last) continue;  // a chunk header, nothing to pass on yet
    for (ResponseObserver* observer : request_.observers) {
      if (got > 0) observer->on_body({relay_.get(), got});
    }
    const OutgoingPiece piece(head_sent ? nullptr : &head, framing.chunked, {relay_.get(), got}, last);
    client_.deadline.arm(client_.io_timeout);
    auto [error, n] = co_await net::write_all(client_.connection, piece.buffers());
    result_.bytes += n;
    head_sent = true;
    if (error) {
      fail_lease(lease);
      co_return false;
    }
    if (last) break;
  }
  finish_lease(lease, response_.reusable(lease.connection()));
  for (ResponseObserver* observer : request_.observers) observer->on_complete();
  co_return true;
}

}  // namespace apigw::proxy
