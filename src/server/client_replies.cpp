// How a client session answers (see client_session.h): the end of a forward, a stored response, a local reply, and
// the graceful close after an answer that ends the connection.
#include <array>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "apigw/cache/stored_answer.h"
#include "apigw/net/socket_io.h"
#include "apigw/server/client_session.h"
#include "apigw/server/worker.h"
#include "request_context.h"
#include "request_log.h"
#include "request_state.h"

namespace apigw::server {
namespace asio = boost::asio;
using boost::system::error_code;

namespace {
// After an error reply, unread input is drained this long so that the client reads the reply instead of a reset.
constexpr auto kLingerTime = std::chrono::seconds(1);
constexpr std::size_t kLingerBytes = 1024 * 1024;
}  // namespace

asio::awaitable<bool> ClientSession::finish_forwarded(RequestContext& context, const proxy::ForwardResult& result) {
  switch (result.kind) {
    case proxy::ForwardResult::Kind::kResponded:
      context.status = result.status;
      context.bytes = result.bytes;
      log_request(context);
      if (!result.keep_alive) co_await close_gracefully(false);
      co_return result.keep_alive && !closed_;
    case proxy::ForwardResult::Kind::kLocalReply: {
      http::LocalReply reply;
      reply.status = result.status;
      reply.message = result.message;
      reply.error = result.error;
      reply.cache_status = context.cache.status;
      reply.close = !result.body_consumed || !state_->parser->get().keep_alive() || worker_.draining();
      co_await send_reply(context, reply);
      co_return !reply.close && !closed_;
    }
    case proxy::ForwardResult::Kind::kAbort:
      // Nothing reached the client: logged as 499 (client closed), whatever the upstream said.
      context.status = result.status == 0 || result.bytes == 0 ? 499 : result.status;
      context.bytes = result.bytes;
      log_request(context);
      co_return false;
  }
  co_return false;
}

asio::awaitable<bool> ClientSession::send_stored(RequestContext& context, const cache::CachedResponse& stored) {
  const auto& request = state_->parser->get();
  const bool keep_alive = request.keep_alive() && !worker_.draining();
  cache::CachedHead head;
  head.request_id = context.request_id;
  if (!context.cache.status.empty()) head.cache_status = context.cache.status;
  if (context.snapshot->config.server.debug_headers) {
    head.route = context.route->name;
    head.upstream = context.upstream;
    head.tag_header = context.route->cache.tag_header;
  }
  head.rate_limit_headers = context.rate_limit_headers;
  head.keep_alive = keep_alive;
  head.http10 = request.version() == 10;
  const cache::StoredAnswer answer =
      cache::answer_from_store(stored, request, context.method == "HEAD", head, cache::unix_now());
  const std::array<asio::const_buffer, 2> buffers{asio::buffer(answer.head), asio::buffer(answer.body)};
  deadline_.arm(context.snapshot->config.server.limits.idle_timeout);
  auto [error, n] = co_await net::write_all(client_, buffers);
  context.status = error && n == 0 ? 499 : answer.status;
  context.bytes = n;
  log_request(context);
  if (error) {
    closed_ = true;
    co_return false;
  }
  if (!keep_alive) co_await close_gracefully(false);
  co_return keep_alive && !closed_;
}

asio::awaitable<void> ClientSession::send_reply(RequestContext& context, http::LocalReply reply) {
  const bool keep_alive = !reply.close && state_->parser && state_->parser->is_header_done() &&
                          state_->parser->is_done() &&
                          state_->parser->get().keep_alive() && !worker_.draining();
  reply.close = !keep_alive;
  reply.request_id = context.request_id;
  reply.head = context.method == "HEAD";
  if (reply.extra_headers.empty()) reply.extra_headers = context.rate_limit_headers;
  if (context.snapshot->config.server.debug_headers && context.route) {
    reply.route = context.route->name;
    reply.upstream = context.upstream;
  }
  std::string out;
  http::write_local_reply(out, reply);
  deadline_.arm(context.snapshot->config.server.limits.idle_timeout);
  auto [error, n] = co_await net::write_all(client_, asio::buffer(out));
  context.status = error && n == 0 ? 499 : reply.status;
  context.error = reply.error.empty() ? http::error_code(reply.status) : reply.error;
  context.bytes = n;
  log_request(context);
  if (error) {
    closed_ = true;
    co_return;
  }
  if (reply.close) co_await close_gracefully(true);
}

asio::awaitable<void> ClientSession::close_gracefully(bool drain_input) {
  closed_ = true;
  error_code ignored;
  net::shutdown_send(client_, ignored);
  if (drain_input) {
    // Unread request bytes would make close() send a reset that can destroy the reply in flight.
    deadline_.arm(kLingerTime);
    std::size_t drained = 0;
    char sink[4096];
    while (drained < kLingerBytes) {
      // The client's end of stream may have come with its last bytes, bringing no new readiness.
      client_.drained = false;
      auto [error, n] = co_await net::read_some(client_, asio::buffer(sink));
      if (error) break;
      drained += n;
    }
  }
  client_.tls.reset();
  client_.socket.close(ignored);
}

}  // namespace apigw::server
