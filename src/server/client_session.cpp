// A client connection's request loop (see client_session.h); its answers are in client_replies.cpp.
#include "apigw/server/client_session.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "apigw/http/request_head.h"
#include "apigw/http/request_id.h"
#include "apigw/net/readiness.h"
#include "apigw/net/socket_io.h"
#include "apigw/server/worker.h"
#include "pipeline.h"
#include "request_context.h"
#include "request_state.h"
#include "request_log.h"

namespace apigw::server {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using boost::system::error_code;
using Clock = core::Deadline::Clock;

namespace {
constexpr std::size_t kReadChunk = 8 * 1024;
// Sweeps (100 ms apart) a kept-alive connection waits for its next request in its coroutine before it goes cold.
constexpr unsigned kHotSweeps = 2;
// Requests a connection serves before it waits hot: one that sent a single request (a health check, a client
// that opens a connection per request) would only hold its coroutine for nothing.
constexpr unsigned kHotAfter = 2;
}  // namespace

ClientSession::ClientSession(Worker& worker, asio::ip::tcp::socket socket)
    : worker_(worker), client_(std::move(socket)) {
  error_code error;
  const auto peer = client_.socket.remote_endpoint(error);
  if (!error) {
    auto address = peer.address();
    if (address.is_v6() && address.to_v6().is_v4_mapped()) {
      address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
    }
    peer_.address = address.to_string();
    peer_.ip = http::parse_ip(peer_.address);
  }
  client_.socket.set_option(asio::ip::tcp::no_delay(true), error);
  worker_.attach(this);
}

ClientSession::~ClientSession() { worker_.detach(this); }

void ClientSession::check_deadline(Clock::time_point now) {
  if (deadline_.expire(now)) {
    error_code ignored;
    client_.socket.cancel(ignored);
  }
  upstream_deadline_.check(now);
  // A connection waiting hot since before the last sweep goes cold: its coroutine ends, and it waits frameless.
  if (hot_ && ++hot_sweeps_ >= kHotSweeps && !cooling_) {
    cooling_ = true;
    error_code ignored;
    client_.socket.cancel(ignored);
  }
}

void ClientSession::on_drain() {
  if (idle_) force_close();
}

void ClientSession::force_close() {
  closed_ = true;
  error_code ignored;
  client_.socket.shutdown(asio::socket_base::shutdown_both, ignored);
  client_.socket.cancel(ignored);
  // An upstream exchange in progress ends now too, as a timeout would end it: no retry, no waiting for the
  // upstream to answer a client that is gone.
  upstream_deadline_.check(Clock::time_point::max());
}

void ClientSession::start() {
  // A new connection has header_timeout to send its first request (and before it, over TLS, to finish the
  // handshake).
  deadline_.arm(worker_.snapshot()->config.server.limits.header_timeout);
  if (const auto& tls = worker_.generation()->listener_tls) {
    net::tls_accept_begin(client_, tls);
    handshaking_ = true;
  }
  wait_idle();
}

bool ClientSession::continue_handshake() {
  std::string failure;
  switch (net::tls_accept_now(client_, failure)) {
    case net::TlsStep::kDone:
      handshaking_ = false;
      worker_.listener_handshake(net::tls_resumed(client_) ? ListenerHandshake::kResumed : ListenerHandshake::kFull);
      return true;
    case net::TlsStep::kWantRead:
      wait_idle();
      return false;
    case net::TlsStep::kWantWrite:
      idle_ = true;
      client_.socket.async_wait(asio::socket_base::wait_write,
                                [self = shared_from_this()](const error_code& error) { self->on_readable(error); });
      return false;
    case net::TlsStep::kFailed:
      break;
    case net::TlsStep::kClosed:
      close();
      return false;
    case net::TlsStep::kPlainHttp: {
      // As NGINX does, a plain HTTP request on the TLS port is told so, in plain HTTP (it is never served).
      const http::RequestId id = http::RequestId::generate();
      const std::string body = fmt::format(
          R"({{"error":"plain_http","message":"this port speaks TLS: use https://","request_id":"{}"}})", id.view());
      const std::string reply = fmt::format(
          "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nX-Request-Id: "
          "{}\r\nConnection: close\r\n\r\n{}",
          body.size(), id.view(), body);
      // Counted before the answer goes out, so that a client that reads it finds it counted.
      worker_.listener_handshake(ListenerHandshake::kFailed);
      client_.tls.reset();
      error_code ignored;
      const asio::const_buffer bytes = asio::buffer(reply);
      net::write_now(client_, std::span<const asio::const_buffer>(&bytes, 1), ignored);
      spdlog::debug("worker {}: client {} spoke plain HTTP to the TLS listener (answered 400)", worker_.index(),
                    peer_.address);
      // The rest of the request may still come: read and dropped, so that the close does not reset the answer.
      asio::co_spawn(client_.socket.get_executor(), close_gracefully(true),
                     [self = shared_from_this()](const std::exception_ptr&) {});
      return false;
    }
  }
  worker_.listener_handshake(ListenerHandshake::kFailed);
  spdlog::debug("worker {}: TLS handshake with client {} failed: {}", worker_.index(), peer_.address, failure);
  client_.tls.reset();
  close();
  return false;
}

void ClientSession::wait_idle() {
  idle_ = true;
  net::async_wait_readable(client_.socket,
                           [self = shared_from_this()](const error_code& error) { self->on_readable(error); });
}

void ClientSession::on_readable(const error_code& error) {
  idle_ = false;
  // Aborted: the deadline passed, or a drain closed the idle connection.
  if (error || closed_) return close();
  if (handshaking_ && !continue_handshake()) return;
  state_ = worker_.request_states().acquire();
  error_code read_error;
  client_.drained = false;
  const std::size_t n = net::read_now(client_, state_->buffer.prepare(kReadChunk), read_error);
  if (read_error) return close();  // the client left
  if (n == 0) {
    // The readiness was from bytes an earlier read already took.
    worker_.request_states().release(std::move(state_));
    return wait_idle();
  }
  state_->buffer.commit(n);
  // Keep-alive: the next request took up to idle_timeout to start; now it has header_timeout to complete.
  if (kept_alive_) deadline_.arm(worker_.snapshot()->config.server.limits.header_timeout);
  // The completion keeps the session alive until its requests are served.
  asio::co_spawn(client_.socket.get_executor(), serve_requests(),
                 [self = shared_from_this()](const std::exception_ptr& failure, bool idle) {
                   if (failure) self->log_failure(failure);
                   if (idle && !failure) {
                     self->go_idle();
                   } else {
                     self->close();
                   }
                 });
}

void ClientSession::log_failure(const std::exception_ptr& failure) {
  try {
    std::rethrow_exception(failure);
  } catch (const std::exception& error) {
    spdlog::error("worker {}: client session ended on an error: {}", worker_.index(), error.what());
  }
}

asio::awaitable<bool> ClientSession::serve_requests() {
  bool open = true;
  while (open) {
    open = co_await serve_request();
    if (!open) break;
    kept_alive_ = true;
    if (served_ < kHotAfter) ++served_;
    // A response that went out just before a drain began said keep-alive: the client may already be sending its
    // next request, which is answered (with Connection: close) if it comes within the drain's idle grace.
    if (closed_ || worker_.idle_grace_over()) {
      open = false;
    } else if (next_request_buffered()) {
      deadline_.arm(worker_.snapshot()->config.server.limits.header_timeout);
    } else if (served_ < kHotAfter) {
      break;  // a connection that has not shown itself busy yet waits cold
    } else {
      const HotWait waited = co_await wait_hot();
      if (waited == HotWait::kCold) break;
      open = waited == HotWait::kRequest;
    }
  }
  co_return open && !closed_;
}

asio::awaitable<ClientSession::HotWait> ClientSession::wait_hot() {
  // Nothing is held for the next request but this coroutine and the wait.
  worker_.request_states().release(std::move(state_));
  deadline_.arm(worker_.snapshot()->config.server.limits.idle_timeout);
  idle_ = true;
  hot_ = true;
  hot_sweeps_ = 0;
  auto [error] = co_await net::async_wait_readable(client_.socket, asio::as_tuple(asio::use_awaitable));
  idle_ = false;
  hot_ = false;
  const bool cooled = cooling_;
  cooling_ = false;
  // Aborted by the deadline (idle_timeout) or a drain: the connection ends. Aborted by the sweeper because the
  // client has been quiet: the connection goes cold, unless its next request came meanwhile.
  if (closed_ || (error && (!cooled || deadline_.expired))) co_return HotWait::kClosed;
  state_ = worker_.request_states().acquire();
  error_code read_error;
  client_.drained = false;
  const std::size_t n = net::read_now(client_, state_->buffer.prepare(kReadChunk), read_error);
  if (read_error) co_return HotWait::kClosed;  // the client left
  if (n == 0) co_return HotWait::kCold;        // quiet, or readiness from bytes an earlier read took
  state_->buffer.commit(n);
  // The next request took up to idle_timeout to start; now it has header_timeout to complete.
  deadline_.arm(worker_.snapshot()->config.server.limits.header_timeout);
  co_return HotWait::kRequest;
}

bool ClientSession::next_request_buffered() {
  beast::flat_buffer& buffer = state_->buffer;
  if (buffer.size() != 0) return true;  // pipelined
  // A read that filled the buffer may have left bytes in the socket, and no new edge will announce them.
  if (client_.drained) return false;
  error_code error;
  const std::size_t n = net::read_now(client_, buffer.prepare(kReadChunk), error);
  buffer.commit(n);
  if (error) closed_ = true;
  return n != 0;
}

void ClientSession::go_idle() {
  worker_.request_states().release(std::move(state_));
  // Keep-alive: the next request may take idle_timeout to start, then header_timeout to complete.
  deadline_.arm(worker_.snapshot()->config.server.limits.idle_timeout);
  wait_idle();
}

void ClientSession::close() {
  closed_ = true;
  if (state_) worker_.request_states().release(std::move(state_));
  error_code ignored;
  client_.tls.reset();  // says close_notify to a TLS client, while the socket is open
  client_.socket.close(ignored);
}

asio::awaitable<ClientSession::HeadResult> ClientSession::read_head() {
  // A copy: a reload during the wait below may free the snapshot.
  const config::Limits limits = worker_.snapshot()->config.server.limits;
  http::RequestHeadScanner scanner;
  for (;;) {
    std::string_view data(static_cast<const char*>(state_->buffer.data().data()), state_->buffer.size());
    if (scanner.scanned() == 0) {
      if (const std::size_t blank = http::leading_empty_lines(data); blank > 0) {
        state_->buffer.consume(blank);
        continue;
      }
    }
    const http::HeadVerdict verdict = http::judge_head(scanner, data, {limits.max_uri_bytes, limits.max_header_bytes});
    if (verdict.kind == http::HeadVerdict::Kind::kHead) {
      co_return HeadResult{HeadResult::Kind::kHead, verdict.length, 0, {}};
    }
    if (verdict.kind == http::HeadVerdict::Kind::kRefuse) {
      co_return HeadResult{HeadResult::Kind::kReply, 0, verdict.status, verdict.message};
    }
    idle_ = state_->buffer.size() == 0;  // a new connection that has sent nothing yet is as idle as a kept-alive one
    auto [error, n] = co_await net::read_some(client_, state_->buffer.prepare(kReadChunk));
    idle_ = false;
    state_->buffer.commit(n);
    if (error) {
      // A client that started a request but did not finish its head in time is told so; one that sent nothing
      // or went away is just closed.
      if (deadline_.expired && state_->buffer.size() != 0 && !closed_) {
        co_return HeadResult{HeadResult::Kind::kReply, 0, 408, "request head not received within header_timeout"};
      }
      co_return HeadResult{};
    }
  }
}

asio::awaitable<bool> ClientSession::serve_request() {
  // The previous request's context goes now; the state's release (hot, cold or closed) ends this one's.
  RequestContext& context = state_->context.emplace(worker_, peer_, state_->exchange);
  const HeadResult head = co_await read_head();
  // The request arrived with its head: it is served by the configuration current now.
  context.generation = worker_.generation();
  context.snapshot = context.generation->snapshot.get();
  if (head.kind == HeadResult::Kind::kClosed) co_return false;
  context.request_id = http::RequestId::generate();
  // The locals of this coroutine stay few (what a reply needs is in the context): its frame is one per request.
  bool parsed = false;
  if (head.kind == HeadResult::Kind::kReply) {
    context.reply.status = head.status;
    context.reply.message = head.message;
  } else {
    parsed = parse_head(context, head.length);
  }
  if (!parsed) {
    context.reply.close = true;  // the request is not trusted enough to read past it
    co_await send_reply(context, context.reply);
    co_return false;
  }

  const auto& request = state_->parser->get();
  const config::Limits& limits = context.snapshot->config.server.limits;
  context.client.emplace(client_, state_->buffer, *state_->parser, deadline_, limits.idle_timeout,
                         limits.header_timeout, static_cast<std::size_t>(limits.max_header_bytes),
                         upstream_deadline_, worker_.draining_flag(), closed_);
  const PipelineOutcome outcome = co_await worker_.pipeline().run(context);
  switch (outcome.kind) {
    case PipelineOutcome::Kind::kReply:
      co_await send_reply(context, context.reply);
      co_return !closed_ && state_->parser->is_done() && request.keep_alive() && !worker_.draining();
    case PipelineOutcome::Kind::kStored:
      co_return co_await send_stored(context, *context.stored);
    case PipelineOutcome::Kind::kForwarded:
      if (outcome.forward.kind == proxy::ForwardResult::Kind::kResponded && outcome.forward.keep_alive) {
        // The common case, without a coroutine of its own: the response went out and the connection stays.
        context.status = outcome.forward.status;
        context.bytes = outcome.forward.bytes;
        log_request(context);
        co_return !closed_;
      }
      co_return co_await finish_forwarded(context, outcome.forward);
  }
  co_return false;
}

bool ClientSession::parse_head(RequestContext& context, std::size_t length) {
  const auto& limits = context.snapshot->config.server.limits;
  state_->parser.emplace();
  state_->parser->header_limit(static_cast<std::uint32_t>(limits.max_header_bytes + 4));
  state_->parser->body_limit(limits.max_body_bytes);
  error_code error;
  state_->parser->put(asio::buffer(state_->buffer.data().data(), length), error);
  if (!error && !state_->parser->is_header_done()) error = bhttp::error::need_more;
  if (error) {
    context.reply.status = error == bhttp::error::body_limit ? 413 : 400;
    context.reply_message = context.reply.status == 413
                                ? std::string("request body exceeds server.limits.max_body_bytes")
                                : fmt::format("malformed request: {}", error.message());
    context.reply.message = context.reply_message;
    return false;
  }
  state_->buffer.consume(length);
  const auto& request = state_->parser->get();
  context.method = request.method_string();
  context.target = request.target();
  if (const auto id = request.find("X-Request-Id"); id != request.end()) context.request_id.assign_if_sane(id->value());
  std::optional<http::LocalReply> refused =
      http::check_request(request, state_->parser->chunked(), limits.max_uri_bytes, context.checked);
  if (!refused) return true;
  context.reply = *refused;
  return false;
}

}  // namespace apigw::server
