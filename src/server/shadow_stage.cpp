// The migration shadow's copy of a request and the audit of the two answers (see shadow_stage.h).
#include "shadow_stage.h"

#include <array>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/error.hpp>
#include <fmt/format.h>

#include "apigw/migration/audit_sink.h"
#include "apigw/net/socket_io.h"

namespace apigw::server {
namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using boost::system::error_code;

namespace {

constexpr std::size_t kShadowBodyChunk = 16 * 1024;

std::chrono::microseconds since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
}

bool is_http_error(const error_code& error) {
  return error.category() == make_error_code(bhttp::error::bad_method).category() &&
         error != bhttp::error::partial_message && error != bhttp::error::end_of_stream;
}

std::string_view failure_text(ShadowFailure failure) {
  switch (failure) {
    case ShadowFailure::kNoEndpoint: return "no healthy endpoint";
    case ShadowFailure::kPoolFull: return "no free connection";
    case ShadowFailure::kConnect: return "connect failed";
    case ShadowFailure::kTimeout: return "timed out";
    case ShadowFailure::kReset: return "connection failed";
    case ShadowFailure::kBadResponse: return "malformed response";
  }
  return "failed";
}

}  // namespace

void AnswerCapture::body(std::string_view bytes) {
  side_.body_bytes += bytes.size();
  hash_.update(bytes);
  if (!side_.body_kept) return;
  if (side_.body.size() + bytes.size() > max_body_) {
    side_.body_kept = false;
    std::string().swap(side_.body);
    return;
  }
  side_.body.append(bytes);
}

void AnswerCapture::complete() {
  side_.latency = since(start_);
  side_.body_sha256 = hash_.hex_final();
  finished_ = true;
}

void AnswerCapture::fail(std::string error) {
  side_.latency = since(start_);
  side_.error = std::move(error);
  std::string().swap(side_.body);
  finished_ = true;
}

void ShadowCopy::PrimaryObserver::on_head(unsigned status, std::span<const proxy::ResponseParser::Field>) {
  copy_.audit_->primary.head(status);
}

void ShadowCopy::PrimaryObserver::on_body(std::string_view bytes) { copy_.audit_->primary.body(bytes); }

void ShadowCopy::PrimaryObserver::on_complete() { copy_.audit_->primary.complete(); }

ShadowCopy::ShadowCopy(Params params)
    : worker_(params.worker),
      generation_(std::move(params.generation)),
      route_index_(params.route_index),
      shadow_upstream_(params.shadow_upstream),
      framed_(params.framed),
      idempotent_(params.idempotent),
      head_method_(params.head_method),
      max_body_(generation_->snapshot->config.migration.shadow.max_body_bytes),
      record_(std::move(params.record)) {
  if (params.audited) {
    audit_.emplace(generation_->snapshot->config.migration.audit.max_body_bytes);
    audit_->primary.side().upstream = record_.primary.upstream;
    audit_->shadow.side().upstream = generation_->pools[shadow_upstream_]->upstream().config.name;
  }
}

ShadowCopy::~ShadowCopy() {
  if (launched_) worker_.end_shadow();
}

void ShadowCopy::on_request_body(std::string_view bytes) {
  if (overflow_) return;
  if (body_.size() + bytes.size() > max_body_) {
    overflow_ = true;
    std::string().swap(body_);
    return;
  }
  body_.append(bytes);
}

void ShadowCopy::on_request_sent(std::string_view head) {
  if (overflow_) {
    stats().shadow_dropped(ShadowDrop::kBodyTooLarge);
    audit_.reset();
    return;
  }
  const config::ShadowSettings& settings = generation_->snapshot->config.migration.shadow;
  if (!worker_.begin_shadow(settings.max_in_flight)) {
    stats().shadow_dropped(ShadowDrop::kMaxInFlight);
    audit_.reset();
    return;
  }
  launched_ = true;
  stats().shadow_sent();
  head_.reserve(head.size() + settings.header.size() + 48);
  head_.append(head);
  head_.append(settings.header);
  head_.append(": 1\r\n");
  if (framed_ || !body_.empty()) fmt::format_to(std::back_inserter(head_), "Content-Length: {}\r\n", body_.size());
  head_.append("\r\n");
  if (audit_) audit_->primary.start();
}

void ShadowCopy::primary_finished(const proxy::ForwardResult& result) {
  if (!launched_) return;
  if (audit_ && !audit_->primary.finished()) {
    audit_->primary.fail(result.kind == proxy::ForwardResult::Kind::kLocalReply
                             ? fmt::format("no answer: the gateway replied {}", result.status)
                             : std::string("the exchange was cut short"));
  }
  // The copy leaves once the client has its answer, so that neither this loop nor the shadow side's servers
  // compete with the primary exchange for the processor. It ends last, and writes the audit record.
  asio::co_spawn(worker_.executor(), send(shared_from_this()), asio::detached);
}

asio::awaitable<void> ShadowCopy::send(std::shared_ptr<ShadowCopy> self) {
  ShadowCopy& copy = *self;
  upstream::UpstreamPool& pool = *copy.generation_->pools[copy.shadow_upstream_];
  asio::steady_timer timer(copy.worker_.executor());
  timer.expires_after(copy.generation_->snapshot->config.migration.shadow.timeout);
  timer.async_wait([self](const error_code& error) {
    if (error) return;
    self->timed_out_ = true;
    if (self->socket_ != nullptr) {
      error_code ignored;
      self->socket_->cancel(ignored);
    }
  });
  if (copy.audit_) copy.audit_->shadow.start();
  const std::optional<ShadowFailure> failure = co_await copy.exchange(pool);
  timer.cancel();
  if (failure) {
    copy.stats().shadow_failed(*failure);
    if (copy.audit_) copy.audit_->shadow.fail(std::string(failure_text(*failure)));
  } else if (copy.audit_) {
    copy.audit_->shadow.complete();
  }
  if (copy.audit_) copy.write_audit();
}

asio::awaitable<std::optional<ShadowFailure>> ShadowCopy::exchange(upstream::UpstreamPool& pool) {
  bool fresh = false;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const std::size_t endpoint = pool.pick();
    if (endpoint == upstream::kNoEndpoint) co_return ShadowFailure::kNoEndpoint;
    upstream::AcquireResult acquired;
    if (!fresh) acquired.connection = pool.acquire_idle(endpoint);
    if (acquired.connection) {
      acquired.reused = true;
    } else {
      acquired = co_await pool.acquire(endpoint, fresh);
    }
    if (acquired.pool_full) {
      pool.stats().error(upstream::UpstreamError::kPoolFull);
      co_return ShadowFailure::kPoolFull;
    }
    if (acquired.error) {
      pool.stats().error(upstream::UpstreamError::kConnect);
      co_return timed_out_ ? ShadowFailure::kTimeout : ShadowFailure::kConnect;
    }
    upstream::UpstreamConnectionPtr connection = std::move(acquired.connection);
    if (timed_out_) {
      pool.release(std::move(connection), !worker_.drained());
      co_return ShadowFailure::kTimeout;
    }
    socket_ = &connection->socket;
    const auto start = std::chrono::steady_clock::now();
    bool answered = false, reusable = false;
    const error_code error = co_await round_trip(*connection, answered, reusable);
    socket_ = nullptr;
    if (!error) {
      pool.stats().duration.observe(std::chrono::steady_clock::now() - start);
      ++connection->requests;
      // After the worker drained, an idle connection's watch would keep its loop from ending.
      pool.release(std::move(connection), reusable && !worker_.drained());
      co_return std::nullopt;
    }
    pool.release(std::move(connection), false);
    if (timed_out_) {
      pool.stats().error(upstream::UpstreamError::kTimeout);
      co_return ShadowFailure::kTimeout;
    }
    if (is_http_error(error)) {
      pool.stats().error(upstream::UpstreamError::kBadResponse);
      co_return ShadowFailure::kBadResponse;
    }
    pool.stats().error(upstream::UpstreamError::kReset);
    // A kept-alive connection the upstream closed while idle: one more try on a fresh one, as the primary does.
    if (acquired.reused && !answered && idempotent_ && !fresh) {
      fresh = true;
      continue;
    }
    co_return ShadowFailure::kReset;
  }
  co_return ShadowFailure::kReset;
}

asio::awaitable<error_code> ShadowCopy::round_trip(upstream::UpstreamConnection& connection, bool& answered,
                                                   bool& reusable) {
  const std::array<asio::const_buffer, 2> request{asio::buffer(head_), asio::buffer(body_)};
  if (auto [error, n] = co_await net::write_all(connection, request); error) co_return error;

  std::vector<proxy::ResponseParser::Field> fields;
  std::optional<proxy::ResponseParser> response;
  if (const error_code error = co_await proxy::read_final_head(connection, response, fields, head_method_, answered)) {
    co_return error;
  }
  const unsigned status = response->status();
  if (audit_) audit_->shadow.head(status);

  // Bodies are read through and dropped: one scratch buffer per thread serves every copy.
  thread_local std::array<char, kShadowBodyChunk> chunk;
  while (!response->is_done()) {
    response->set_body_buffer(chunk.data(), chunk.size());
    if (response->need_eof()) connection.drained = false;
    error_code error =
        co_await net::parse_some(connection, connection.buffer, *response, upstream::kUpstreamReadSize);
    if (error == bhttp::error::need_buffer) error = {};
    if (error) co_return error;
    if (audit_) audit_->shadow.body({chunk.data(), chunk.size() - response->body_space()});
  }
  stats().shadow_answered(status);
  reusable = response->keep_alive() && connection.buffer.size() == 0;
  co_return error_code{};
}

void ShadowCopy::write_audit() {
  record_.primary = std::move(audit_->primary.side());
  record_.shadow = std::move(audit_->shadow.side());
  migration::AuditResult result = migration::AuditResult::kIncomplete;
  std::string line =
      migration::audit_line(record_, generation_->snapshot->config.migration.audit.ignore_fields, result);
  stats().audited(static_cast<std::size_t>(result));
  worker_.audit_sink().write(std::move(line));
  audit_.reset();
}

}  // namespace apigw::server
