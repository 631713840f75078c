// A client connection's request loop (see client_session.h).
#include "apigw/server/client_session.h"

#include <random>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "apigw/auth/request_token.h"
#include "apigw/cache/cache_key.h"
#include "apigw/cache/cache_policy.h"
#include "apigw/http/request_head.h"
#include "apigw/http/query.h"
#include "apigw/http/request_id.h"
#include "apigw/http/request_target.h"
#include "apigw/migration/affinity.h"
#include "apigw/migration/shadow_policy.h"
#include "apigw/net/readiness.h"
#include "apigw/net/socket_io.h"
#include "apigw/server/worker.h"
#include "cache_stage.h"
#include "request_state.h"
#include "shadow_stage.h"

namespace apigw::server {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using boost::system::error_code;
using Clock = core::Deadline::Clock;

namespace {
constexpr std::size_t kReadChunk = 8 * 1024;
// After an error reply, unread input is drained this long so that the client reads the reply instead of a reset.
constexpr auto kLingerTime = std::chrono::seconds(1);
constexpr std::size_t kLingerBytes = 1024 * 1024;

// `target` with the value of every query parameter that auth takes tokens from replaced by "REDACTED": logs and
// audit records never hold a token. Empty when there was nothing to redact.
std::string redact_tokens(const config::Snapshot* snapshot, std::string_view target) {
  std::string redacted;
  if (!snapshot || !snapshot->config.auth.enabled || target.find('?') == std::string_view::npos) return redacted;
  for (const auth::TokenSource& source : snapshot->config.auth.token_from) {
    if (source.kind != auth::TokenSource::Kind::kQuery) continue;
    redacted = http::redact_query_parameter(redacted.empty() ? target : std::string_view(redacted), source.name);
  }
  return redacted;
}

std::size_t request_line_length(std::string_view data) {
  const std::size_t end = data.find("\r\n");
  return end == std::string_view::npos ? data.size() : end;
}
}  // namespace

struct ClientSession::Exchange {
  Clock::time_point start = Clock::now();
  GenerationPtr generation;  // what the request is served with, whatever reloads happen meanwhile
  const config::Snapshot* snapshot = nullptr;
  std::string request_id;
  std::string_view method = "-";
  std::string_view target = "-";
  http::RequestTarget parsed_target;
  std::string target_storage;
  std::string_view host;
  const config::Route* route = nullptr;
  std::uint32_t route_index = 0;
  std::string_view upstream;
  std::string_view endpoint;
  unsigned status = 0;
  std::uint64_t bytes = 0;
  std::string user;            // the user id auth resolved; empty when anonymous
  std::string token_id;        // the token's fingerprint, for the log
  std::string reply_message;   // backs a LocalReply's message
  std::optional<std::uint32_t> bucket;  // the affinity bucket, once a migration stage needed it
};

ClientSession::ClientSession(Worker& worker, asio::ip::tcp::socket socket)
    : worker_(worker), client_(std::move(socket)) {
  error_code error;
  const auto peer = client_.socket.remote_endpoint(error);
  if (!error) {
    auto address = peer.address();
    if (address.is_v6() && address.to_v6().is_v4_mapped()) {
      address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
    }
    peer_address_ = address.to_string();
    peer_ip_ = http::parse_ip(peer_address_);
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
  // A new connection has header_timeout to send its first request.
  deadline_.arm(worker_.snapshot()->config.server.limits.header_timeout);
  wait_idle();
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
    // A response that went out just before a drain began said keep-alive: the client may already be sending its
    // next request, which is answered (with Connection: close) if it comes within the drain's idle grace.
    if (closed_ || worker_.idle_grace_over()) {
      open = false;
    } else if (next_request_buffered()) {
      deadline_.arm(worker_.snapshot()->config.server.limits.header_timeout);
    } else {
      break;
    }
  }
  co_return open && !closed_;
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
    const http::HeadScan scan = scanner.scan(data);
    if (scan.state == http::HeadScan::State::kComplete && scan.length <= limits.max_header_bytes) {
      co_return HeadResult{HeadResult::Kind::kHead, scan.length, 0, {}};
    }
    if (scan.state == http::HeadScan::State::kBad) co_return HeadResult{HeadResult::Kind::kReply, 0, 400, scan.reason};
    if (scanner.in_request_line() && data.size() > limits.max_uri_bytes + 32) {
      co_return HeadResult{HeadResult::Kind::kReply, 0, 414, "request target exceeds server.limits.max_uri_bytes"};
    }
    // A head over the limit is refused whether it is still arriving or came whole in one read.
    if (data.size() > limits.max_header_bytes) {
      if (scanner.in_request_line() || request_line_length(data) > limits.max_uri_bytes) {
        co_return HeadResult{HeadResult::Kind::kReply, 0, 414, "request line exceeds server.limits.max_header_bytes"};
      }
      co_return HeadResult{HeadResult::Kind::kReply, 0, 431, "request head exceeds server.limits.max_header_bytes"};
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
  Exchange exchange;
  const HeadResult head = co_await read_head();
  // The request arrived with its head: it is served by the configuration current now.
  exchange.generation = worker_.generation();
  exchange.snapshot = exchange.generation->snapshot.get();
  if (head.kind == HeadResult::Kind::kClosed) co_return false;
  exchange.request_id = http::generate_request_id();
  if (head.kind == HeadResult::Kind::kReply) {
    http::LocalReply reply;
    reply.status = head.status;
    reply.message = head.message;
    reply.close = true;
    co_await send_reply(exchange, reply);
    co_return false;
  }

  const auto& limits = exchange.snapshot->config.server.limits;
  state_->parser.emplace();
  state_->parser->header_limit(static_cast<std::uint32_t>(limits.max_header_bytes + 4));
  state_->parser->body_limit(limits.max_body_bytes);
  error_code error;
  state_->parser->put(asio::buffer(state_->buffer.data().data(), head.length), error);
  if (!error && !state_->parser->is_header_done()) error = bhttp::error::need_more;
  if (error) {
    const std::string message = fmt::format("malformed request: {}", error.message());
    http::LocalReply reply;
    reply.close = true;
    reply.status = error == bhttp::error::body_limit ? 413 : 400;
    reply.message = reply.status == 413 ? std::string_view("request body exceeds server.limits.max_body_bytes")
                                        : std::string_view(message);
    co_await send_reply(exchange, reply);
    co_return false;
  }
  state_->buffer.consume(head.length);

  const auto& request = state_->parser->get();
  exchange.method = request.method_string();
  exchange.target = request.target();
  if (const auto id = request.find("X-Request-Id"); id != request.end() && http::is_sane_request_id(id->value())) {
    exchange.request_id = std::string(id->value());
  }
  if (std::optional<http::LocalReply> reply = check_request(exchange)) {
    reply->close = true;  // the request is not trusted enough to read past it
    co_await send_reply(exchange, *reply);
    co_return false;
  }
  co_return co_await route_and_forward(exchange);
}

std::optional<http::LocalReply> ClientSession::check_request(Exchange& exchange) {
  const auto& request = state_->parser->get();
  const auto& limits = exchange.snapshot->config.server.limits;
  http::LocalReply reply;
  reply.status = 400;
  if (request.version() != 10 && request.version() != 11) {
    reply.status = 505;
    reply.message = "only HTTP/1.0 and HTTP/1.1 are served";
    return reply;
  }
  if (request.find(bhttp::field::transfer_encoding) != request.end() && !state_->parser->chunked()) {
    reply.message = "Transfer-Encoding other than chunked";
    return reply;
  }
  if (exchange.target.size() > limits.max_uri_bytes) {
    reply.status = 414;
    reply.message = "request target exceeds server.limits.max_uri_bytes";
    return reply;
  }
  if (const std::string_view error =
          http::parse_request_target(exchange.target, exchange.parsed_target, exchange.target_storage);
      !error.empty()) {
    reply.message = error;
    return reply;
  }
  const std::size_t hosts = request.count(bhttp::field::host);
  if (hosts > 1 || (hosts == 0 && request.version() == 11)) {
    reply.message = hosts > 1 ? "more than one Host header" : "missing Host header";
    return reply;
  }
  exchange.host = exchange.parsed_target.authority;
  if (exchange.host.empty() && hosts == 1) exchange.host = request.at(bhttp::field::host);
  return std::nullopt;
}

asio::awaitable<bool> ClientSession::route_and_forward(Exchange& exchange) {
  const config::Snapshot& snapshot = *exchange.snapshot;
  const auto& request = state_->parser->get();
  const auto match = snapshot.trie.match(exchange.host, exchange.method, exchange.parsed_target.path);
  if (match.kind != routing::RouteTrieMatch::Kind::kFound) {
    http::LocalReply reply;
    const std::string message = fmt::format("{} {} {}", match.kind == routing::RouteTrieMatch::Kind::kNoPath
                                                             ? "no route matches" : "method not allowed for",
                                            exchange.method, exchange.parsed_target.path);
    reply.status = match.kind == routing::RouteTrieMatch::Kind::kNoPath ? 404 : 405;
    reply.message = message;
    reply.allow = match.allow;
    co_await send_reply(exchange, reply);
    co_return !closed_ && state_->parser->is_done() && request.keep_alive() && !worker_.draining();
  }

  exchange.route = &snapshot.routes[match.route];
  exchange.route_index = match.route;
  upstream::UpstreamPool* pool = exchange.generation->pools[exchange.route->upstream].get();
  exchange.upstream = pool->upstream().config.name;
  if (exchange.generation->authenticator && exchange.route->auth != config::RouteAuth::kNone) {
    if (std::optional<http::LocalReply> reply = co_await authenticate(exchange)) {
      co_await send_reply(exchange, *reply);
      co_return !closed_ && state_->parser->is_done() && request.keep_alive() && !worker_.draining();
    }
  }
  CacheState cache;
  if (exchange.generation->cache && exchange.route->cache.enabled) {
    const std::shared_ptr<const cache::CachedResponse> hit = co_await look_up_cache(exchange, cache);
    if (hit) co_return co_await send_cached(exchange, *hit);
  }
  std::size_t serving = exchange.route->upstream;
  if (const std::optional<config::SideTarget>& split = exchange.route->split) {
    // The migration stage: users in the split's share are served by the other side.
    const bool moved = in_migration_share(exchange, split->threshold);
    if (moved) {
      serving = split->upstream;
      pool = exchange.generation->pools[serving].get();
      exchange.upstream = pool->upstream().config.name;
    }
    exchange.generation->route_stats[exchange.route_index]->record_split(moved);
  }
  std::shared_ptr<ShadowCopy> shadow;
  if (exchange.route->shadow) shadow = plan_shadow(exchange, serving);
  proxy::ForwardRequest forward;
  forward.route = exchange.route;
  forward.request_id = exchange.request_id;
  forward.path = http::strip_path_prefix(exchange.parsed_target.path, exchange.route->strip_prefix);
  forward.query = exchange.parsed_target.query;
  forward.has_query = exchange.parsed_target.has_query;
  forward.authority = exchange.parsed_target.authority;
  forward.host = exchange.host;
  forward.peer_address = peer_address_;
  forward.trusted_peer = snapshot.trusted_proxies.contains(peer_ip_);
  forward.debug_headers = snapshot.config.server.debug_headers;
  forward.name_upstream = exchange.route->split.has_value();  // which side served it is part of the answer
  forward.keep_alive = request.keep_alive() && !worker_.draining();
  if (snapshot.config.auth.enabled) {
    // On every route, so that no client can pass itself off as a user.
    forward.user_header = snapshot.config.auth.forward_header;
    forward.user_id = exchange.user;
  }
  forward.cache_status = cache.status;
  std::array<proxy::ResponseObserver*, 2> observers{};
  std::size_t observer_count = 0;
  if (cache.observer) observers[observer_count++] = &*cache.observer;
  if (shadow) {
    forward.request_observer = shadow.get();
    if (proxy::ResponseObserver* audit = shadow->primary_observer()) observers[observer_count++] = audit;
  }
  forward.observers = std::span<proxy::ResponseObserver* const>(observers.data(), observer_count);

  const auto& limits = snapshot.config.server.limits;
  proxy::Forwarder forwarder(
      {client_, state_->buffer, *state_->parser, deadline_, limits.idle_timeout, upstream_deadline_, worker_.draining_flag(),
       closed_},
      forward, *pool);
  proxy::ForwardResult result = co_await forwarder.run();
  if (cache.observer) finish_fill(cache);
  if (shadow) shadow->primary_finished(result);
  exchange.endpoint = result.endpoint;
  switch (result.kind) {
    case proxy::ForwardResult::Kind::kResponded:
      exchange.status = result.status;
      exchange.bytes = result.bytes;
      log(exchange);
      if (!result.keep_alive) co_await close_gracefully(false);
      co_return result.keep_alive && !closed_;
    case proxy::ForwardResult::Kind::kLocalReply: {
      http::LocalReply reply;
      reply.status = result.status;
      reply.message = result.message;
      reply.cache_status = cache.status;
      reply.close = !result.body_consumed || !forward.keep_alive;
      co_await send_reply(exchange, reply);
      co_return !reply.close && !closed_;
    }
    case proxy::ForwardResult::Kind::kAbort:
      // Nothing reached the client: logged as 499 (client closed), whatever the upstream said.
      exchange.status = result.status == 0 || result.bytes == 0 ? 499 : result.status;
      exchange.bytes = result.bytes;
      log(exchange);
      co_return false;
  }
  co_return false;
}

asio::awaitable<std::optional<http::LocalReply>> ClientSession::authenticate(Exchange& exchange) {
  using Decision = AuthStats::Decision;
  const config::AuthConfig& auth = exchange.snapshot->config.auth;
  AuthStats& stats = worker_.auth_stats();
  const bool required = exchange.route->auth == config::RouteAuth::kRequired;
  http::LocalReply reply;
  reply.status = 401;
  reply.no_store = true;
  reply.www_authenticate = R"(Bearer realm="apigw", error="invalid_token")";

  auth::RequestToken token = auth::find_request_token(state_->parser->get(), exchange.parsed_target.query,
                                                      exchange.parsed_target.has_query, auth.token_from);
  if (token.found && token.shape != auth::TokenShape::kValid) {
    // Refused before Redis is asked: such a token can name no session.
    stats.record(Decision::kMalformed);
    exchange.reply_message = fmt::format("malformed token: {}", auth::token_shape_text(token.shape));
    reply.message = exchange.reply_message;
    co_return reply;
  }
  if (!token.found) {
    if (!required) {
      stats.record(Decision::kAnonymous);
      co_return std::nullopt;
    }
    stats.record(Decision::kMissing);
    exchange.reply_message = "this route needs a token; none was found in";
    for (const auth::TokenSource& source : auth.token_from) {
      exchange.reply_message += source.kind == auth::TokenSource::Kind::kHeader   ? " header:"
                                : source.kind == auth::TokenSource::Kind::kCookie ? " cookie:"
                                                                                  : " query:";
      exchange.reply_message += source.name;
    }
    reply.message = exchange.reply_message;
    reply.www_authenticate = R"(Bearer realm="apigw")";
    co_return reply;
  }

  exchange.token_id = auth::token_fingerprint(token.token);
  // The generation (and with it the authenticator) outlives the lookup, whatever reloads happen meanwhile.
  auth::Authenticator& authenticator = *exchange.generation->authenticator;
  // (No co_await inside a conditional expression: g++ 12 miscompiles it.)
  std::optional<auth::Lookup> cached = authenticator.cached(token.token);
  auth::Lookup lookup;
  if (cached) {
    lookup = std::move(*cached);
  } else {
    lookup = co_await authenticator.lookup(std::move(token.token));
  }
  switch (lookup.outcome) {
    case auth::Lookup::Outcome::kUser:
      stats.record(Decision::kAuthenticated);
      exchange.user = lookup.user;
      co_return std::nullopt;
    case auth::Lookup::Outcome::kInvalid:
      stats.record(Decision::kInvalid);
      reply.message = "invalid or expired token";
      co_return reply;
    case auth::Lookup::Outcome::kError:
      break;
  }
  const std::string cause = lookup.error == asio::error::timed_out ? std::string("timed out")
                                                                   : lookup.error.message();
  if (auth.on_error == config::AuthOnError::kAnonymous && !required) {
    stats.record(Decision::kAnonymous);
    co_return std::nullopt;
  }
  stats.record(Decision::kUnavailable);
  if (auth.on_error == config::AuthOnError::kAnonymous) {
    // The token counts as absent, and this route needs one.
    exchange.reply_message =
        fmt::format("the token could not be checked ({}), so the request is anonymous; this route needs a user",
                    cause);
    reply.message = exchange.reply_message;
    reply.www_authenticate = R"(Bearer realm="apigw")";
    co_return reply;
  }
  exchange.reply_message = fmt::format("the token store is unavailable: {}", cause);
  reply.status = 503;
  reply.error = "auth_unavailable";
  reply.message = exchange.reply_message;
  reply.www_authenticate = {};
  co_return reply;
}

bool ClientSession::in_migration_share(Exchange& exchange, std::uint32_t threshold) {
  const config::Snapshot& snapshot = *exchange.snapshot;
  if (!exchange.user.empty() && snapshot.beta_users.contains(exchange.user)) return true;
  if (!exchange.bucket) {
    const config::MigrationConfig& migration = snapshot.config.migration;
    const auto& request = state_->parser->get();
    std::string client;
    if (snapshot.trusted_proxies.contains(peer_ip_)) client = http::forwarded_client(request);
    if (client.empty()) client = peer_address_;
    const std::optional<std::string> key = migration::affinity_key(migration.affinity, exchange.user, request, client);
    // Without a key the request has no user to keep on one side: a draw of its own.
    exchange.bucket = key ? migration::bucket_of(*key, migration.buckets)
                          : std::uniform_int_distribution<std::uint32_t>(0, migration.buckets - 1)(worker_.random());
  }
  return migration::in_share(*exchange.bucket, threshold);
}

std::shared_ptr<ShadowCopy> ClientSession::plan_shadow(Exchange& exchange, std::size_t serving_upstream) {
  const config::SideTarget& target = *exchange.route->shadow;
  // A request the split sent to the shadow's side already is not sent there twice.
  if (target.upstream == serving_upstream) return nullptr;
  const config::Snapshot& snapshot = *exchange.snapshot;
  const config::MigrationConfig& migration = snapshot.config.migration;
  const auto& request = state_->parser->get();
  // A copy is never copied again, whatever loop the two sides' routes make.
  if (request.find(migration.shadow.header) != request.end()) return nullptr;
  if (!in_migration_share(exchange, target.threshold)) return nullptr;
  RouteStats& stats = *exchange.generation->route_stats[exchange.route_index];
  if (migration::shadow_ignored(snapshot.shadow_ignore, exchange.method, exchange.parsed_target.path)) {
    stats.shadow_ignored();
    return nullptr;
  }
  const auto length = state_->parser->content_length();
  if (length && *length > migration.shadow.max_body_bytes) {
    stats.shadow_dropped(ShadowDrop::kBodyTooLarge);
    return nullptr;
  }
  ShadowCopy::Params params{worker_, exchange.generation};
  params.route_index = exchange.route_index;
  params.shadow_upstream = target.upstream;
  params.framed = length.has_value() || state_->parser->chunked();
  params.idempotent = proxy::is_idempotent(request.method());
  params.head_method = request.method() == bhttp::verb::head;
  const unsigned sample = migration.audit.sample;
  params.audited = migration.audit.enabled && sample > 0 &&
                   (sample >= 100 || std::uniform_int_distribution<unsigned>(0, 99)(worker_.random()) < sample);
  if (params.audited) {
    migration::AuditRecord& record = params.record;
    record.time = std::chrono::system_clock::now();
    record.request_id = exchange.request_id;
    record.route = exchange.route->name;
    record.method = exchange.method;
    record.path = exchange.parsed_target.path;
    record.query = exchange.parsed_target.query;
    if (std::string redacted = redact_tokens(&snapshot, "?" + record.query); !redacted.empty()) {
      record.query = redacted.substr(1);
    }
    record.bucket = exchange.bucket;
    record.primary.upstream = exchange.upstream;
  }
  return std::make_shared<ShadowCopy>(std::move(params));
}

asio::awaitable<std::shared_ptr<const cache::CachedResponse>> ClientSession::look_up_cache(Exchange& exchange,
                                                                                           CacheState& state) {
  using namespace asio::experimental::awaitable_operators;
  cache::CacheStats& stats = exchange.generation->cache->stats();
  const config::RouteCacheConfig& rule = exchange.route->cache;
  const auto& request = state_->parser->get();
  state.status = "BYPASS";
  const cache::RequestCacheability cacheability = cache::classify_request(exchange.method, request);
  // A request with a body is not one the cache can answer: the body would have to be read for nothing.
  const bool has_body = state_->parser->chunked() || (state_->parser->content_length() && *state_->parser->content_length() > 0);
  if (cacheability == cache::RequestCacheability::kBypass || has_body) {
    stats.bypasses.add();
    co_return nullptr;
  }
  state.cache = exchange.generation->cache;
  // HEAD is answered from the GET entry (and never fills it: its response has no body).
  const bool head = exchange.method == "HEAD";
  cache::KeyRequest key_request{"GET", exchange.host, exchange.parsed_target.path, exchange.parsed_target.query,
                                &request, {}};
  if (!exchange.user.empty()) key_request.user_id = exchange.user;
  std::optional<std::string> key =
      cache::build_cache_key(state.cache->config().key_prefix, exchange.route->name, rule, key_request);
  if (!key) {
    stats.bypasses.add();
    co_return nullptr;
  }
  state.key = std::move(*key);
  const auto max_bytes = static_cast<std::size_t>(state.cache->config().max_item_bytes);
  if (cacheability == cache::RequestCacheability::kRevalidate) {
    // Fetched from upstream whatever is stored, and stored afresh.
    state.status = "MISS";
    stats.misses.add();
    if (!head) state.observer.emplace(rule, max_bytes);
    co_return nullptr;
  }

  cache::ResponseCache::Joined joined = state.cache->join(state.key, !head);
  if (!joined.fill || joined.is_leader) {
    const memcache::GetResult got = co_await state.cache->get(state.key);
    if (got.error) {
      // The primary is down or slow: served from upstream, and nothing is stored.
      if (joined.fill) {
        joined.fill->unavailable = true;
        state.cache->finish(state.key, joined.fill, nullptr);
      }
      stats.bypasses.add();
      co_return nullptr;
    }
    if (got.item) {
      std::optional<cache::CachedResponse> stored = cache::decode_record(got.item->value);
      const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch()).count();
      // A value that is not a record (corrupt, or another program's) or is past its ttl is a miss.
      if (stored && stored->fresh(now)) {
        auto response = std::make_shared<const cache::CachedResponse>(std::move(*stored));
        if (joined.fill) state.cache->finish(state.key, joined.fill, response);
        stats.hits.add();
        state.status = "HIT";
        co_return response;
      }
    }
    state.status = "MISS";
    stats.misses.add();
    if (joined.fill) {
      state.fill = std::move(joined.fill);
      state.observer.emplace(rule, max_bytes);
    }
    co_return nullptr;
  }

  // Another request is looking this key up or fetching it: its outcome is this request's too, unless it takes
  // longer than the upstream's timeout.
  const std::shared_ptr<cache::Fill> fill = std::move(joined.fill);
  if (!fill->done) {
    asio::steady_timer limit(client_.socket.get_executor());
    limit.expires_after(exchange.generation->pools[exchange.route->upstream]->upstream().config.timeout);
    co_await (fill->done_signal.async_wait(asio::as_tuple(asio::use_awaitable)) ||
              limit.async_wait(asio::as_tuple(asio::use_awaitable)));
  }
  if (fill->done && fill->response) {
    stats.hits.add();
    stats.coalesced.add();
    state.status = "HIT";
    co_return fill->response;
  }
  if (fill->unavailable) {
    stats.bypasses.add();
    co_return nullptr;
  }
  state.status = "MISS";
  stats.misses.add();
  co_return nullptr;
}

void ClientSession::finish_fill(CacheState& state) {
  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::optional<std::string> record = state.observer->record(now);
  std::shared_ptr<const cache::CachedResponse> response;
  if (record) {
    if (std::optional<cache::CachedResponse> decoded = cache::decode_record(*record)) {
      response = std::make_shared<const cache::CachedResponse>(std::move(*decoded));
    }
    state.cache->store(state.key, std::move(*record), state.observer->ttl());
  }
  if (state.fill) {
    state.cache->finish(state.key, state.fill, std::move(response));
    state.fill.reset();
  }
}

asio::awaitable<bool> ClientSession::send_cached(Exchange& exchange, const cache::CachedResponse& stored) {
  const auto& request = state_->parser->get();
  // A client that holds the stored version already is told so instead of being sent it again.
  std::optional<cache::CachedResponse> reduced;
  if (not_modified(stored, request)) reduced = not_modified_response(stored);
  const cache::CachedResponse& response = reduced ? *reduced : stored;
  const bool keep_alive = request.keep_alive() && !worker_.draining();
  CachedHead head;
  head.request_id = exchange.request_id;
  if (exchange.snapshot->config.server.debug_headers) {
    head.route = exchange.route->name;
    head.upstream = exchange.upstream;
  }
  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  head.age = response.age(now);
  head.keep_alive = keep_alive;
  head.http10 = request.version() == 10;
  const std::string out = cached_response_head(response, head);
  const bool with_body = exchange.method != "HEAD" && response.status != 204 && response.status != 304;
  const std::array<asio::const_buffer, 2> buffers{asio::buffer(out),
                                                  asio::buffer(response.body.data(), with_body ? response.body.size()
                                                                                               : 0)};
  deadline_.arm(exchange.snapshot->config.server.limits.idle_timeout);
  auto [error, n] = co_await net::write_all(client_, buffers);
  exchange.status = error && n == 0 ? 499 : response.status;
  exchange.bytes = n;
  log(exchange);
  if (error) {
    closed_ = true;
    co_return false;
  }
  if (!keep_alive) co_await close_gracefully(false);
  co_return keep_alive && !closed_;
}

asio::awaitable<void> ClientSession::send_reply(Exchange& exchange, http::LocalReply reply) {
  const bool keep_alive = !reply.close && state_->parser && state_->parser->is_header_done() && state_->parser->is_done() &&
                          state_->parser->get().keep_alive() && !worker_.draining();
  reply.close = !keep_alive;
  reply.request_id = exchange.request_id;
  reply.head = exchange.method == "HEAD";
  if (exchange.snapshot->config.server.debug_headers && exchange.route) {
    reply.route = exchange.route->name;
    reply.upstream = exchange.upstream;
  }
  std::string out;
  http::write_local_reply(out, reply);
  deadline_.arm(exchange.snapshot->config.server.limits.idle_timeout);
  auto [error, n] = co_await net::write_all(client_, asio::buffer(out));
  exchange.status = error && n == 0 ? 499 : reply.status;
  exchange.bytes = n;
  log(exchange);
  if (error) {
    closed_ = true;
    co_return;
  }
  if (reply.close) co_await close_gracefully(true);
}

asio::awaitable<void> ClientSession::close_gracefully(bool drain_input) {
  closed_ = true;
  error_code ignored;
  client_.socket.shutdown(asio::socket_base::shutdown_send, ignored);
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
  client_.socket.close(ignored);
}

void ClientSession::log(const Exchange& exchange) {
  const auto elapsed = Clock::now() - exchange.start;
  if (exchange.generation) {
    RouteStats* stats = exchange.route ? exchange.generation->route_stats[exchange.route_index]
                                       : exchange.generation->unrouted;
    stats->record(exchange.method, exchange.status, elapsed);
  }
  core::AccessLogBuffer& access_log = worker_.access_log();
  if (!access_log.enabled()) return;
  core::AccessRecord record;
  record.request_id = exchange.request_id;
  record.client = peer_address_;
  record.method = exchange.method;
  // A token sent in the query string stays out of the log, whichever route the request took.
  const std::string redacted = redact_tokens(exchange.snapshot, exchange.target);
  record.path = redacted.empty() ? exchange.target : std::string_view(redacted);
  record.status = exchange.status;
  record.bytes = exchange.bytes;
  record.duration = std::chrono::duration_cast<std::chrono::microseconds>(elapsed);
  record.route = exchange.route ? std::string_view(exchange.route->name) : std::string_view();
  record.endpoint = exchange.endpoint;
  record.user = exchange.user;
  record.token = exchange.token_id;
  access_log.record(record);
}

}  // namespace apigw::server
