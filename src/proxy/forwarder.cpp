// One request's way to an upstream: the attempts, their failures and retries (see forwarder.h).
#include "apigw/proxy/forwarder.h"

#include <array>
#include <tuple>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <fmt/format.h>

#include "apigw/net/socket_io.h"
#include "apigw/proxy/retry_policy.h"

namespace apigw::proxy {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using boost::system::error_code;

namespace {
bool is_timeout(const error_code& error) { return error == asio::error::timed_out; }
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

void ExchangeBuffers::trim(std::size_t max_capacity) {
  for (std::string* head : {&request_head, &response_head}) {
    if (head->capacity() <= max_capacity) continue;
    head->clear();
    head->shrink_to_fit();
  }
}

Forwarder::Forwarder(ClientSide client, const ForwardRequest& request, upstream::UpstreamPool& pool,
                     ExchangeBuffers& buffers)
    : client_(client),
      request_(request),
      pool_(pool),
      request_head_(buffers.request_head),
      response_head_(buffers.response_head),
      response_(buffers.response) {
  request_head_.clear();
  response_head_.clear();
}

void Forwarder::local_reply(unsigned status, std::string message, std::string_view error) {
  result_.kind = ForwardResult::Kind::kLocalReply;
  result_.status = status;
  result_.message = std::move(message);
  result_.error = error;
}

asio::awaitable<ForwardResult> Forwarder::run() {
  auto& request = client_.parser.get();
  head_request_ = request.method() == bhttp::verb::head;
  idempotent_ = is_idempotent(request.method());
  framing_.chunked = client_.parser.chunked();
  if (const auto length = client_.parser.content_length()) framing_.length = *length;
  has_body_ = framing_.chunked || (framing_.length && *framing_.length > 0);
  buffered_ = has_body_ && !framing_.chunked && *framing_.length <= kBufferedBodyLimit;
  result_.body_consumed = !has_body_;

  if (wants_continue()) {
    const bool continued = co_await send_continue();
    if (!continued) co_return result_;  // kAbort
  }
  if (buffered_ && !co_await read_buffered_body()) co_return result_;
  framing_at_ = build_upstream_request_head(request, request_, framing_, request_head_);

  RetryPolicy retry(pool_.upstream().config.retry_attempts, idempotent_, replayable());
  bool fresh = false;
  std::size_t avoid = upstream::kNoEndpoint;
  for (;;) {
    upstream::LeaseResult leased = pool_.lease_idle(avoid, fresh);
    if (leased.pending()) leased = co_await pool_.lease_new(leased.endpoint, fresh);
    fresh = false;
    if (leased.endpoint != upstream::kNoEndpoint) result_.endpoint = pool_.endpoint_text(leased.endpoint);
    RetryPolicy::Next next = RetryPolicy::Next::kGiveUp;
    if (!leased.lease) {
      // Nothing was sent on a connection that failed to open, with or without its TLS handshake.
      if (leased.failure == upstream::LeaseResult::Failure::kConnect ||
          leased.failure == upstream::LeaseResult::Failure::kTls) {
        next = retry.after_connect_failure();
      }
      if (next == RetryPolicy::Next::kGiveUp) {
        lease_failed(leased);
        co_return result_;
      }
    } else if (client_.closed) {
      // The drain timeout closed the client while a connection was being found: send nothing upstream.
      leased.lease.put_back();
      result_.kind = ForwardResult::Kind::kAbort;
      co_return result_;
    } else {
      const Attempt attempt = co_await exchange(leased.lease.connection());
      if (attempt.outcome == AttemptOutcome::kResponseHead) {
        co_await relay_response(std::move(leased.lease));
        co_return result_;
      }
      const bool reused = leased.lease.reused();
      fail_lease(leased.lease);
      if (attempt.outcome == AttemptOutcome::kClientFailed) co_return result_;
      count_failure(attempt.error);
      next = retry.after_exchange_failure(attempt.error, reused, attempt.got_response_bytes);
      if (next == RetryPolicy::Next::kGiveUp) {
        attempt_failed(attempt, leased.endpoint);
        co_return result_;
      }
    }
    fresh = next == RetryPolicy::Next::kFreshConnection;
    avoid = next == RetryPolicy::Next::kOtherEndpoint ? leased.endpoint : upstream::kNoEndpoint;
  }
}

bool Forwarder::wants_continue() const {
  const auto& request = client_.parser.get();
  if (!has_body_ || request.version() != 11) return false;
  const auto expect = request.find(bhttp::field::expect);
  return expect != request.end() && beast::iequals(expect->value(), "100-continue");
}

asio::awaitable<bool> Forwarder::send_continue() {
  // The client waits for this before sending the body; the upstream never sees Expect.
  static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
  client_.deadline.arm(client_.io_timeout);
  auto [error, n] = co_await net::write_all(client_.connection, asio::buffer(kContinue));
  co_return !error;
}

void Forwarder::lease_failed(const upstream::LeaseResult& leased) {
  const std::string& name = pool_.upstream().config.name;
  switch (leased.failure) {
    case upstream::LeaseResult::Failure::kNoEndpoint:
      local_reply(503, fmt::format("upstream '{}' has no {}endpoint", name,
                                   pool_.endpoint_count() == 0 ? "" : "healthy "));
      return;
    case upstream::LeaseResult::Failure::kPoolFull:
      local_reply(503, fmt::format("upstream '{}' has no free connection", name));
      return;
    case upstream::LeaseResult::Failure::kTls:
      local_reply(502,
                  fmt::format("TLS handshake with upstream '{}' at {} failed: {}", name,
                              pool_.endpoint_text(leased.endpoint), leased.tls_failure),
                  "upstream_tls");
      return;
    case upstream::LeaseResult::Failure::kConnect:
    case upstream::LeaseResult::Failure::kNone: {
      const bool timed_out = is_timeout(leased.error);
      local_reply(timed_out ? 504 : 502,
                  fmt::format("cannot connect to upstream '{}' at {}: {}", name, pool_.endpoint_text(leased.endpoint),
                              timed_out ? std::string("connect timed out") : leased.error.message()));
      return;
    }
  }
}

void Forwarder::attempt_failed(const Attempt& attempt, std::size_t endpoint) {
  const std::string& name = pool_.upstream().config.name;
  if (is_timeout(attempt.error)) {
    local_reply(504, fmt::format("upstream '{}' at {} timed out", name, pool_.endpoint_text(endpoint)));
  } else {
    local_reply(502, fmt::format("upstream '{}' at {} failed: {}", name, pool_.endpoint_text(endpoint),
                                 attempt.error.message()));
  }
}

asio::awaitable<Forwarder::Attempt> Forwarder::exchange(upstream::UpstreamConnection& connection) {
  const auto timeout = pool_.upstream().config.timeout;
  Attempt attempt;
  attempt_start_ = std::chrono::steady_clock::now();
  client_.upstream.watch(connection.socket, timeout);
  if (has_body_ && !buffered_) {
    attempt = co_await stream_request_body(connection);
    if (attempt.outcome != AttemptOutcome::kResponseHead) co_return attempt;
    // The body went out; the attempt succeeds only once the response head is in.
    attempt.outcome = AttemptOutcome::kUpstreamFailed;
  } else {
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(request_head_), asio::buffer(body_)};
    // Most requests go out in this one write, without suspending.
    error_code error;
    const std::size_t n = net::write_now(connection, buffers, error);
    if (!error && n < asio::buffer_size(buffers)) {
      std::tie(error, std::ignore) = co_await upstream::send_request(connection, buffers, n);
    }
    if (error) {
      attempt.error = upstream_error(error);
      co_return attempt;
    }
  }
  request_sent();

  // The response deadline runs from the end of the request to the end of the response.
  client_.upstream.deadline.arm(timeout);
  // RFC 9110 §15.2: a proxy forwards 1xx responses (but the 100 Continue it answers itself), never to HTTP/1.0.
  const bool forward_interim = client_.parser.get().version() >= 11;
  for (;;) {
    if (const error_code error =
            co_await response_.read_head(connection, head_request_, attempt.got_response_bytes, forward_interim)) {
      attempt.error = upstream_error(error);
      co_return attempt;
    }
    if (!response_.interim()) break;
    if (!co_await send_interim()) {
      result_.kind = ForwardResult::Kind::kAbort;  // the client went away
      attempt.outcome = AttemptOutcome::kClientFailed;
      co_return attempt;
    }
  }
  attempt.outcome = AttemptOutcome::kResponseHead;
  co_return attempt;
}

asio::awaitable<bool> Forwarder::send_interim() {
  std::string head;
  build_interim_response_head(response_.response(), head);
  client_.deadline.arm(client_.io_timeout);
  auto [error, n] = co_await net::write_all(client_.connection, asio::buffer(head));
  client_.deadline.disarm();
  co_return !error;
}

void Forwarder::request_sent() {
  if (sent_) return;
  sent_ = true;
  if (request_.request_observer) {
    request_.request_observer->on_request_sent(std::string_view(request_head_).substr(0, framing_at_));
  }
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
  } else if (upstream::is_protocol_error(error)) {
    kind = upstream::UpstreamError::kBadResponse;
  }
  pool_.stats().error(kind);
}

void Forwarder::fail_lease(upstream::Lease& lease) {
  client_.upstream.clear();
  lease.discard();
}

void Forwarder::finish_lease(upstream::Lease& lease, bool reusable) {
  client_.upstream.clear();
  pool_.stats().duration.observe(std::chrono::steady_clock::now() - attempt_start_);
  lease.finish(reusable);
}

}  // namespace apigw::proxy
