// One request's way to an upstream and its response's way back (see forwarder.h).
#include "apigw/proxy/forwarder.h"

#include <algorithm>
#include <array>
#include <span>
#include <tuple>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <fmt/format.h>

#include "apigw/http/local_reply.h"
#include "apigw/net/socket_io.h"
#include "apigw/proxy/header_rules.h"

namespace apigw::proxy {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using boost::system::error_code;

namespace {

constexpr std::string_view kCrlf = "\r\n";
constexpr std::string_view kLastChunk = "0\r\n\r\n";
constexpr std::size_t kTypicalResponseFields = 16;

bool is_timeout(const error_code& error) { return error == asio::error::timed_out; }

void append_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append(kCrlf);
}

// The forwarding headers a client may only set through a trusted proxy.
enum class ForwardingHeader { kNone, kFor, kProto, kHost, kRealIp, kForwarded, kRequestId, kApigw };

ForwardingHeader classify(bhttp::field field, std::string_view name) {
  if (field == bhttp::field::forwarded) return ForwardingHeader::kForwarded;
  if (field != bhttp::field::unknown || name.size() < 9 || (name[0] != 'x' && name[0] != 'X')) {
    return ForwardingHeader::kNone;
  }
  if (beast::iequals(name, "x-forwarded-for")) return ForwardingHeader::kFor;
  if (beast::iequals(name, "x-forwarded-proto")) return ForwardingHeader::kProto;
  if (beast::iequals(name, "x-forwarded-host")) return ForwardingHeader::kHost;
  if (beast::iequals(name, "x-real-ip")) return ForwardingHeader::kRealIp;
  if (beast::iequals(name, "x-request-id")) return ForwardingHeader::kRequestId;
  if (beast::iequals(name.substr(0, 8), "x-apigw-")) return ForwardingHeader::kApigw;
  return ForwardingHeader::kNone;
}

}  // namespace

bool is_idempotent(bhttp::verb method) {
  switch (method) {
    case bhttp::verb::get:
    case bhttp::verb::head:
    case bhttp::verb::options:
    case bhttp::verb::trace:
    case bhttp::verb::put:
    case bhttp::verb::delete_:
      return true;
    default:
      return false;
  }
}

asio::awaitable<error_code> read_final_head(upstream::UpstreamConnection& connection,
                                            std::optional<ResponseParser>& response,
                                            std::vector<ResponseParser::Field>& fields, bool head_request,
                                            bool& got_bytes) {
  for (;;) {
    response.emplace(fields);
    response->header_limit(kMaxResponseHeadBytes);
    response->body_limit(boost::none);
    if (head_request) response->skip(true);
    const error_code error =
        co_await net::parse_some(connection, connection.buffer, *response, upstream::kUpstreamReadSize);
    got_bytes = got_bytes || response->got_some() || connection.buffer.size() > 0;
    if (error) co_return error;
    if (!response->is_header_done()) co_return bhttp::error::partial_message;
    // apigw never forwards Upgrade, so 101 is a broken upstream.
    if (response->status() == 101) co_return bhttp::error::bad_status;
    if (response->status() >= 200) co_return error_code{};
    // Interim 1xx responses (100 Continue, 103 Early Hints) are consumed here.
  }
}

Forwarder::Forwarder(ClientSide client, const ForwardRequest& request, upstream::UpstreamPool& pool)
    : client_(client), request_(request), pool_(pool) {}

void Forwarder::local_reply(unsigned status, std::string message) {
  result_.kind = ForwardResult::Kind::kLocalReply;
  result_.status = status;
  result_.message = std::move(message);
}

asio::awaitable<ForwardResult> Forwarder::run() {
  auto& request = client_.parser.get();
  head_request_ = request.method() == bhttp::verb::head;
  idempotent_ = is_idempotent(request.method());
  chunked_ = client_.parser.chunked();
  if (const auto length = client_.parser.content_length()) length_ = *length;
  has_body_ = chunked_ || (length_ && *length_ > 0);
  buffered_ = has_body_ && !chunked_ && *length_ <= kBufferedBodyLimit;
  result_.body_consumed = !has_body_;

  if (has_body_ && request.version() == 11) {
    const auto expect = request.find(bhttp::field::expect);
    if (expect != request.end() && beast::iequals(expect->value(), "100-continue")) {
      // The client waits for this before sending the body; the upstream never sees Expect.
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      client_.deadline.arm(client_.io_timeout);
      auto [error, n] = co_await net::write_all(client_.connection, asio::buffer(kContinue));
      if (error) co_return result_;  // kAbort
    }
  }
  if (buffered_ && !co_await read_buffered_body()) co_return result_;
  build_request_head();

  unsigned retries_left = pool_.upstream().config.retry_attempts;
  bool stale_retry_used = false;
  bool fresh = false;
  std::size_t avoid = upstream::kNoEndpoint;
  for (;;) {
    const std::size_t endpoint = pool_.pick(avoid);
    if (endpoint != upstream::kNoEndpoint) result_.endpoint = pool_.endpoint_text(endpoint);
    if (endpoint == upstream::kNoEndpoint) {
      local_reply(503, fmt::format("upstream '{}' has no {}endpoint", pool_.upstream().config.name,
                                   pool_.endpoint_count() == 0 ? "" : "healthy "));
      co_return result_;
    }
    upstream::AcquireResult acquired;
    if (!fresh) acquired.connection = pool_.acquire_idle(endpoint);
    if (acquired.connection) {
      acquired.reused = true;
    } else {
      acquired = co_await pool_.acquire(endpoint, fresh);
    }
    fresh = false;
    if (acquired.pool_full) {
      pool_.stats().error(upstream::UpstreamError::kPoolFull);
      local_reply(503, fmt::format("upstream '{}' has no free connection", pool_.upstream().config.name));
      co_return result_;
    }
    if (acquired.error) {
      pool_.stats().error(upstream::UpstreamError::kConnect);
      // Nothing reached the upstream, so any method may try another endpoint.
      if (retries_left > 0 && replayable()) {
        --retries_left;
        avoid = endpoint;
        continue;
      }
      const bool timed_out = is_timeout(acquired.error);
      local_reply(timed_out ? 504 : 502,
                  fmt::format("cannot connect to upstream '{}' at {}: {}", pool_.upstream().config.name,
                              pool_.endpoint_text(endpoint),
                              timed_out ? std::string("connect timed out") : acquired.error.message()));
      co_return result_;
    }

    upstream::UpstreamConnectionPtr connection = std::move(acquired.connection);
    if (client_.closed) {
      // The drain timeout closed the client while a connection was being found: send nothing upstream.
      pool_.release(std::move(connection), true);
      result_.kind = ForwardResult::Kind::kAbort;
      co_return result_;
    }
    const Attempt attempt = co_await exchange(*connection);
    if (attempt.outcome == AttemptOutcome::kResponseHead) {
      co_await relay_response(std::move(connection));
      co_return result_;
    }
    end_lease(std::move(connection), false);
    if (attempt.outcome == AttemptOutcome::kClientFailed) co_return result_;
    count_failure(attempt.error);

    // A kept-alive connection the upstream closed while it sat idle fails before any response byte: the request
    // was most likely never processed, so an idempotent request gets one extra try on a fresh connection.
    const bool stale = acquired.reused && !attempt.got_response_bytes && !is_timeout(attempt.error);
    if (stale && idempotent_ && replayable() && !stale_retry_used) {
      stale_retry_used = true;
      fresh = true;
      avoid = upstream::kNoEndpoint;
      continue;
    }
    if (is_timeout(attempt.error)) {
      local_reply(504, fmt::format("upstream '{}' at {} timed out", pool_.upstream().config.name,
                                   pool_.endpoint_text(endpoint)));
      co_return result_;
    }
    if (retries_left > 0 && idempotent_ && replayable()) {
      --retries_left;
      avoid = endpoint;
      continue;
    }
    local_reply(502, fmt::format("upstream '{}' at {} failed: {}", pool_.upstream().config.name,
                                 pool_.endpoint_text(endpoint), attempt.error.message()));
    co_return result_;
  }
}

asio::awaitable<error_code> Forwarder::read_client_chunk(char* data, std::size_t size, std::size_t& got) {
  auto& body = client_.parser.get().body();
  body.data = data;
  body.size = size;
  client_.deadline.arm(client_.io_timeout);
  // A client that leaves mid-body may send its end of stream with its last bytes, bringing no new readiness.
  client_.connection.drained = false;
  error_code error = co_await net::parse_some(client_.connection, client_.buffer, client_.parser, kClientReadSize);
  if (error == bhttp::error::need_buffer) error = {};
  got = size - body.size;
  co_return error;
}

error_code Forwarder::upstream_error(const error_code& error) const {
  // The sweeper cancels a wait that outlived the upstream's timeout.
  if (error == asio::error::operation_aborted && client_.upstream.deadline.expired) return asio::error::timed_out;
  return error;
}

void Forwarder::count_failure(const error_code& error) {
  upstream::UpstreamError kind = upstream::UpstreamError::kReset;
  if (is_timeout(error)) {
    kind = upstream::UpstreamError::kTimeout;
  } else if (error.category() == make_error_code(bhttp::error::bad_method).category() &&
             error != bhttp::error::partial_message && error != bhttp::error::end_of_stream) {
    kind = upstream::UpstreamError::kBadResponse;
  }
  pool_.stats().error(kind);
}

void Forwarder::end_lease(upstream::UpstreamConnectionPtr connection, bool reusable) {
  client_.upstream.clear();
  pool_.release(std::move(connection), reusable);
}

void Forwarder::fail_on_client(const error_code& error) {
  if (error == bhttp::error::body_limit) {
    local_reply(413, "request body exceeds server.limits.max_body_bytes");
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
  body_.resize(*length_);
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

void Forwarder::request_sent() {
  if (sent_) return;
  sent_ = true;
  if (request_.request_observer) {
    request_.request_observer->on_request_sent(std::string_view(request_head_).substr(0, framing_at_));
  }
}

void Forwarder::build_request_head() {
  const auto& request = client_.parser.get();
  const HopByHopRules rules(request);
  std::string& out = request_head_;
  out.reserve(512);
  out.append(request.method_string());
  out.push_back(' ');
  out.append(request_.path);
  if (request_.has_query) {
    out.push_back('?');
    out.append(request_.query);
  }
  out.append(" HTTP/1.1\r\n");

  std::string forwarded_for;
  bool has_host = false, has_proto = false, has_forwarded_host = false;
  for (const auto& field : request) {
    const std::string_view name = field.name_string();
    if (rules.drop(field.name(), name) || field.name() == bhttp::field::expect) continue;
    if (!request_.user_header.empty() && beast::iequals(name, request_.user_header)) continue;
    if (field.name() == bhttp::field::host) {
      if (!request_.authority.empty()) continue;  // absolute-form: the target's authority is the host
      has_host = true;
    }
    switch (classify(field.name(), name)) {
      case ForwardingHeader::kFor:
        if (request_.trusted_peer) {
          if (!forwarded_for.empty()) forwarded_for.append(", ");
          forwarded_for.append(field.value());
        }
        continue;
      case ForwardingHeader::kProto:
        if (!request_.trusted_peer) continue;
        has_proto = true;
        break;
      case ForwardingHeader::kHost:
        if (!request_.trusted_peer) continue;
        has_forwarded_host = true;
        break;
      case ForwardingHeader::kRealIp:
      case ForwardingHeader::kForwarded:
        if (!request_.trusted_peer) continue;
        break;
      case ForwardingHeader::kRequestId:
      case ForwardingHeader::kApigw:
        continue;
      case ForwardingHeader::kNone:
        break;
    }
    append_header(out, name, field.value());
  }
  if (!has_host && !request_.host.empty()) append_header(out, "Host", request_.host);
  if (!forwarded_for.empty()) forwarded_for.append(", ");
  forwarded_for.append(request_.peer_address);
  append_header(out, "X-Forwarded-For", forwarded_for);
  if (!has_proto) append_header(out, "X-Forwarded-Proto", "http");
  if (!has_forwarded_host && !request_.host.empty()) append_header(out, "X-Forwarded-Host", request_.host);
  append_header(out, "X-Request-Id", request_.request_id);
  if (!request_.user_id.empty()) append_header(out, request_.user_header, request_.user_id);
  framing_at_ = out.size();
  if (chunked_) {
    append_header(out, "Transfer-Encoding", "chunked");
  } else if (length_) {
    append_header(out, "Content-Length", fmt::format_int(*length_).str());
  }
  out.append(kCrlf);
}

asio::awaitable<Forwarder::Attempt> Forwarder::exchange(upstream::UpstreamConnection& connection) {
  const auto timeout = pool_.upstream().config.timeout;
  Attempt attempt;
  attempt_start_ = std::chrono::steady_clock::now();
  client_.upstream.watch(connection.socket, timeout);
  if (has_body_ && !buffered_) {
    attempt = co_await stream_request_body(connection);
    if (attempt.outcome != AttemptOutcome::kResponseHead) co_return attempt;
  } else {
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(request_head_), asio::buffer(body_)};
    error_code error;
    const std::size_t n = net::write_now(connection, buffers, error);
    if (!error && n < asio::buffer_size(buffers)) {
      std::tie(error, std::ignore) = co_await net::write_rest(connection, buffers, n);
    }
    if (error) {
      attempt.error = upstream_error(error);
      co_return attempt;
    }
  }
  request_sent();

  // The response deadline runs from the end of the request to the end of the response.
  client_.upstream.deadline.arm(timeout);
  response_fields_.reserve(kTypicalResponseFields);
  if (const error_code error = co_await read_final_head(connection, response_, response_fields_, head_request_,
                                                         attempt.got_response_bytes)) {
    attempt.error = upstream_error(error);
    co_return attempt;
  }
  attempt.outcome = AttemptOutcome::kResponseHead;
  co_return attempt;
}

asio::awaitable<Forwarder::Attempt> Forwarder::stream_request_body(upstream::UpstreamConnection& connection) {
  Attempt attempt;
  const auto timeout = pool_.upstream().config.timeout;
  relay_ = std::make_unique_for_overwrite<char[]>(kRelayChunk);
  relay_size_ = kRelayChunk;
  bool head_sent = false;
  while (!head_sent || !client_.parser.is_done()) {
    std::size_t got = 0;
    if (!client_.parser.is_done()) {
      const error_code error = co_await read_client_chunk(relay_.get(), kRelayChunk, got);
      if (error) {
        fail_on_client(error);
        attempt.outcome = AttemptOutcome::kClientFailed;
        co_return attempt;
      }
      if (request_.request_observer && got > 0) request_.request_observer->on_request_body({relay_.get(), got});
    }
    const bool last = client_.parser.is_done();
    char size_line[24];
    const auto size_end = fmt::format_to(size_line, "{:x}\r\n", got);
    std::array<asio::const_buffer, 5> buffers{};
    std::size_t count = 0;
    if (!head_sent) buffers[count++] = asio::buffer(request_head_);
    if (chunked_ && got > 0) buffers[count++] = asio::buffer(size_line, size_end - size_line);
    buffers[count++] = asio::buffer(relay_.get(), got);
    if (chunked_ && got > 0) buffers[count++] = asio::buffer(kCrlf);
    if (chunked_ && last) buffers[count++] = asio::buffer(kLastChunk);
    client_.upstream.deadline.arm(timeout);
    auto [error, n] =
        co_await net::write_all(connection, std::span<const asio::const_buffer>(buffers.data(), count));
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

std::string Forwarder::build_response_head(bool& keep_alive, bool& chunked, bool& has_body) {
  const unsigned status = response_->status();
  has_body = !head_request_ && status != 204 && status != 304;
  HopByHopRules rules;
  for (const ResponseParser::Field& field : response_->fields()) {
    if (field.name == bhttp::field::connection) rules.add_connection(field.value);
  }
  const bool client_http11 = client_.parser.get().version() == 11;
  chunked = has_body && !response_->content_length() && client_http11;
  // Without a length and without chunked, the end of the body is the end of the connection.
  // A drain that began while the request was in flight closes the connection after this response.
  keep_alive = request_.keep_alive && !client_.draining && (!has_body || response_->content_length() || chunked);

  std::string out;
  out.reserve(512);
  const std::string_view reason = response_->reason();
  fmt::format_to(std::back_inserter(out), "HTTP/1.1 {} {}\r\n", status,
                 reason.empty() ? apigw::http::reason_phrase(status) : reason);
  bool has_date = false;
  for (const ResponseParser::Field& field : response_->fields()) {
    if (rules.drop(field.name, field.name_text)) continue;
    const ForwardingHeader kind = classify(field.name, field.name_text);
    if (kind == ForwardingHeader::kRequestId || kind == ForwardingHeader::kApigw) continue;
    if (!request_.cache_status.empty() && beast::iequals(field.name_text, "X-Cache")) continue;
    has_date = has_date || field.name == bhttp::field::date;
    append_header(out, field.name_text, field.value);
  }
  if (!has_date) append_header(out, "Date", apigw::http::http_date());
  append_header(out, "X-Request-Id", request_.request_id);
  if (request_.debug_headers) append_header(out, "X-Apigw-Route", request_.route->name);
  if (request_.debug_headers || request_.name_upstream) {
    append_header(out, "X-Apigw-Upstream", pool_.upstream().config.name);
  }
  if (chunked) {
    append_header(out, "Transfer-Encoding", "chunked");
  } else if (response_->content_length() && (has_body || head_request_ || status == 304)) {
    // A HEAD or 304 answer carries the length the full response would have.
    append_header(out, "Content-Length", fmt::format_int(*response_->content_length()).str());
  }
  if (!request_.cache_status.empty()) append_header(out, "X-Cache", request_.cache_status);
  if (!keep_alive) {
    append_header(out, "Connection", "close");
  } else if (!client_http11) {
    append_header(out, "Connection", "keep-alive");
  }
  out.append(kCrlf);
  return out;
}

asio::awaitable<void> Forwarder::relay_response(upstream::UpstreamConnectionPtr connection) {
  bool keep_alive = false, chunked = false, has_body = false;
  const std::string head = build_response_head(keep_alive, chunked, has_body);
  result_.status = response_->status();
  if (result_.status >= 500) pool_.stats().error(upstream::UpstreamError::k5xx);
  const auto length = response_->content_length();
  const auto& observers = request_.observers;
  for (ResponseObserver* observer : observers) {
    if (observer) observer->on_head(result_.status, response_->fields());
  }

  if (has_body && length && connection->buffer.size() >= *length) {
    // The whole body came with the head (most API responses): it goes out from the read buffer as it is.
    const std::array<asio::const_buffer, 2> buffers{
        asio::buffer(head), asio::buffer(connection->buffer.data().data(), static_cast<std::size_t>(*length))};
    client_.deadline.arm(client_.io_timeout);
    error_code error;
    std::size_t n = net::write_now(client_.connection, buffers, error);
    if (!error && n < asio::buffer_size(buffers)) {
      std::tie(error, n) = co_await net::write_rest(client_.connection, buffers, n);
    }
    result_.bytes += n;
    for (ResponseObserver* observer : observers) {
      if (!observer || error) continue;
      observer->on_body({static_cast<const char*>(connection->buffer.data().data()),
                         static_cast<std::size_t>(*length)});
      observer->on_complete();
    }
    connection->buffer.consume(static_cast<std::size_t>(*length));
    const bool reusable = !error && response_->keep_alive() && connection->buffer.size() == 0;
    pool_.stats().duration.observe(std::chrono::steady_clock::now() - attempt_start_);
    ++connection->requests;
    end_lease(std::move(connection), reusable);
    result_.kind = error ? ForwardResult::Kind::kAbort : ForwardResult::Kind::kResponded;
    result_.keep_alive = keep_alive;
    co_return;
  }

  if (!relay_) {
    // Most responses are small: a buffer of their size, not of the largest chunk.
    relay_size_ = length && *length < kRelayChunk ? std::max<std::size_t>(*length, 1) : kRelayChunk;
    relay_ = std::make_unique_for_overwrite<char[]>(relay_size_);
  }
  bool head_sent = false;
  for (;;) {
    std::size_t got = 0;
    if (has_body && !response_->is_done()) {
      if (const error_code error = co_await read_response_body(*connection, got)) {
        // The response was cut short; the client must not take a truncated body for a whole one.
        count_failure(error);
        end_lease(std::move(connection), false);
        result_.kind = ForwardResult::Kind::kAbort;
        co_return;
      }
    }
    const bool last = !has_body || response_->is_done();
    if (head_sent && got == 0 && !last) continue;  // a chunk header, nothing to pass on yet
    for (ResponseObserver* observer : observers) {
      if (observer && got > 0) observer->on_body({relay_.get(), got});
    }
    char size_line[24];
    const auto size_end = fmt::format_to(size_line, "{:x}\r\n", got);
    std::array<asio::const_buffer, 5> buffers{};
    std::size_t count = 0;
    if (!head_sent) buffers[count++] = asio::buffer(head);
    if (chunked && got > 0) buffers[count++] = asio::buffer(size_line, size_end - size_line);
    buffers[count++] = asio::buffer(relay_.get(), got);
    if (chunked && got > 0) buffers[count++] = asio::buffer(kCrlf);
    if (chunked && last) buffers[count++] = asio::buffer(kLastChunk);
    client_.deadline.arm(client_.io_timeout);
    auto [error, n] =
        co_await net::write_all(client_.connection, std::span<const asio::const_buffer>(buffers.data(), count));
    result_.bytes += n;
    head_sent = true;
    if (error) {
      end_lease(std::move(connection), false);
      result_.kind = ForwardResult::Kind::kAbort;
      co_return;
    }
    if (last) break;
  }
  const bool reusable = response_->keep_alive() && response_->is_done() && connection->buffer.size() == 0;
  pool_.stats().duration.observe(std::chrono::steady_clock::now() - attempt_start_);
  ++connection->requests;
  end_lease(std::move(connection), reusable);
  for (ResponseObserver* observer : observers) {
    if (observer) observer->on_complete();
  }
  result_.kind = ForwardResult::Kind::kResponded;
  result_.keep_alive = keep_alive;
}

// Moves the next body bytes of the upstream response into relay_ (`got` of them, possibly none after a chunk
// header), reading from the upstream only when nothing is buffered.
asio::awaitable<error_code> Forwarder::read_response_body(upstream::UpstreamConnection& connection, std::size_t& got) {
  response_->set_body_buffer(relay_.get(), relay_size_);
  // A body that ends with the connection needs the end of stream, which may have come with the last bytes read
  // and so brings no new readiness: look at the socket itself.
  if (response_->need_eof()) connection.drained = false;
  error_code error = co_await net::parse_some(connection, connection.buffer, *response_, upstream::kUpstreamReadSize);
  if (error == bhttp::error::need_buffer) error = {};
  got = relay_size_ - response_->body_space();
  co_return upstream_error(error);
}

}  // namespace apigw::proxy
