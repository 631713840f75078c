// The migration shadow's copy of a request and the audit of the two answers (see shadow_stage.h).
#include "shadow_stage.h"

#include <algorithm>
#include <array>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
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
// What a batch of copies may take the shadow side to answer, at the pace it answers (see ShadowDispatch).
constexpr std::chrono::milliseconds kBatchBudget{5};
// Connections in a row one batch may use without any copy coming out answered or failed: a stale kept-alive one
// and a fresh one.
constexpr unsigned kBatchFruitlessConnections = 2;

std::chrono::microseconds since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
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

void ShadowCopy::PrimaryObserver::on_head(unsigned status, std::span<const http::ResponseParser::Field>) {
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
  worker_.shadow_dispatch().add(shared_from_this());
}

std::array<asio::const_buffer, 2> ShadowCopy::request() const { return {asio::buffer(head_), asio::buffer(body_)}; }

void ShadowCopy::sending() {
  if (audit_) audit_->shadow.start();
}

asio::awaitable<error_code> ShadowCopy::read_answer(upstream::UpstreamConnection& connection, bool& got_bytes,
                                                    bool& keep_alive) {
  upstream::ResponseReader reader;
  if (const error_code error = co_await reader.read_head(connection, head_method_, got_bytes)) co_return error;
  const unsigned status = reader.status();
  if (audit_) audit_->shadow.head(status);
  // The body is read through; the audit keeps what it compares.
  std::function<void(std::string_view)> sink;
  if (audit_) sink = [this](std::string_view bytes) { audit_->shadow.body(bytes); };
  if (const error_code error = co_await reader.read_rest(connection, sink)) co_return error;
  stats().shadow_answered(status);
  keep_alive = reader.response().keep_alive();
  co_return error_code{};
}

void ShadowCopy::finish(std::optional<ShadowFailure> failure) {
  if (failure) {
    stats().shadow_failed(*failure);
    if (audit_) audit_->shadow.fail(std::string(failure_text(*failure)));
  } else if (audit_) {
    audit_->shadow.complete();
  }
  if (audit_) write_audit();
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

std::size_t ShadowDispatch::Lane::batch_limit(unsigned pipeline) const {
  if (pace_us <= 0) return 1;  // not measured yet: the first copies go alone, and are measured
  const double fits = std::chrono::duration<double, std::micro>(kBatchBudget).count() / pace_us;
  return fits >= static_cast<double>(pipeline) ? pipeline : std::max<std::size_t>(1, static_cast<std::size_t>(fits));
}

void ShadowDispatch::Lane::observe(std::chrono::steady_clock::duration answer_time) {
  const double us = std::chrono::duration<double, std::micro>(answer_time).count();
  pace_us = pace_us <= 0 ? us : pace_us + (us - pace_us) / 8;
}

void ShadowDispatch::add(std::shared_ptr<ShadowCopy> copy) {
  const upstream::UpstreamPoolPtr& pool = copy->pool();
  auto [it, inserted] = lanes_.try_emplace(pool.get());
  Lane& lane = it->second;
  if (lane.pool.expired()) {  // new, or a pool at the address of a retired one
    lane = Lane{};
    lane.pool = pool;
  }
  const bool idempotent = copy->idempotent();
  const std::size_t limit = lane.batch_limit(copy->pipeline());
  lane.batch.push_back(std::move(copy));
  if (lane.batch.size() >= limit || !idempotent) return launch(lane);
  // While a batch of this lane is on its way, the next one fills up until that one is back (or it is full).
  if (lane.sending > 0 || flush_posted_) return;
  flush_posted_ = true;
  // Behind the handlers already due in this turn of the loop: their copies join this batch.
  asio::post(worker_.executor(), [this] {
    flush_posted_ = false;
    flush();
  });
}

void ShadowDispatch::launch(Lane& lane) {
  ++lane.sending;
  Batch batch;
  batch.swap(lane.batch);
  upstream::UpstreamPoolPtr pool = batch.front()->pool();
  asio::co_spawn(worker_.executor(), send(lane, std::move(pool), std::move(batch)), asio::detached);
}

void ShadowDispatch::flush() {
  for (auto& [key, lane] : lanes_) {
    if (!lane.batch.empty() && lane.sending == 0) launch(lane);
  }
  // A running batch holds its pool: an expired pool's lane is idle.
  std::erase_if(lanes_, [](const auto& entry) { return entry.second.pool.expired(); });
}

asio::awaitable<void> ShadowDispatch::send(Lane& lane, upstream::UpstreamPoolPtr pool_ptr, Batch copies) {
  upstream::UpstreamPool& pool = *pool_ptr;
  core::Duration timeout = copies.front()->timeout();
  for (const auto& copy : copies) timeout = std::min(timeout, copy->timeout());
  upstream::ExchangeDeadline deadline(worker_.executor(), std::chrono::steady_clock::now() + timeout);
  for (const auto& copy : copies) copy->sending();

  std::size_t next = 0;  // the first copy without an outcome
  const auto fail_rest = [&](ShadowFailure failure) {
    for (; next < copies.size(); ++next) {
      copies[next]->finish(failure);
      copies[next].reset();
    }
  };
  bool fresh = false;  // the next connection is a new one (the last, reused, had gone stale)
  for (unsigned fruitless = 0; next < copies.size();) {
    if (fruitless == kBatchFruitlessConnections) {
      fail_rest(ShadowFailure::kReset);
      break;
    }
    upstream::LeaseResult leased = pool.lease_idle(upstream::kNoEndpoint, fresh);
    if (leased.pending()) leased = co_await pool.lease_new(leased.endpoint, fresh);
    if (!leased.lease) {
      fail_rest(leased.failure == upstream::LeaseResult::Failure::kNoEndpoint ? ShadowFailure::kNoEndpoint
                : leased.failure == upstream::LeaseResult::Failure::kPoolFull ? ShadowFailure::kPoolFull
                : deadline.expired()                                             ? ShadowFailure::kTimeout
                                                                               : ShadowFailure::kConnect);
      break;
    }
    upstream::Lease& lease = leased.lease;
    upstream::UpstreamConnection& connection = lease.connection();
    if (deadline.expired()) {
      if (worker_.drained()) {
        lease.discard();
      } else {
        lease.put_back();
      }
      fail_rest(ShadowFailure::kTimeout);
      break;
    }
    fresh = false;

    // Every copy still without an answer, in one write.
    std::vector<asio::const_buffer> buffers;
    buffers.reserve(2 * (copies.size() - next));
    for (std::size_t i = next; i < copies.size(); ++i) {
      const auto request = copies[i]->request();
      buffers.insert(buffers.end(), request.begin(), request.end());
    }
    deadline.watch(connection);
    const auto start = std::chrono::steady_clock::now();
    auto last = start;
    const std::size_t first = next;
    auto [error, written] = co_await upstream::send_request(connection, buffers);
    bool got_bytes = false, keep_alive = true;
    while (!error && keep_alive && next < copies.size()) {
      error = co_await copies[next]->read_answer(connection, got_bytes, keep_alive);
      if (error) break;
      const auto now = std::chrono::steady_clock::now();
      pool.stats().duration.observe(now - start);
      // How fast the shadow side answers: the time between two answers of one write, or, for a copy written
      // alone, its whole exchange (an upper bound: it includes the round trip).
      if (next > first || copies.size() - first == 1) lane.observe(now - last);
      last = now;
      ++connection.requests;
      copies[next]->finish(std::nullopt);
      copies[next++].reset();
      got_bytes = false;
    }
    deadline.unwatch();
    if (!error) {
      // After the worker drained, an idle connection's watch would keep its loop from ending.
      const bool reusable = keep_alive && next == copies.size() && connection.buffer.size() == 0;
      if (reusable && !worker_.drained()) {
        lease.put_back();
      } else {
        lease.discard();
      }
      fruitless = 0;
      continue;  // the shadow side closed after an answer: the copies after it go on another connection
    }
    lease.discard();
    if (deadline.expired()) {
      pool.stats().error(upstream::UpstreamError::kTimeout);
      fail_rest(ShadowFailure::kTimeout);
      break;
    }
    const bool answered_here = next > first || got_bytes;
    const bool reused = lease.reused();
    // A kept-alive connection the upstream closed while idle: nothing was answered, and the copies go again on
    // a fresh one, as the primary does. Otherwise the copy being answered failed, and the copies after it, which
    // the shadow side may not have read, go again.
    if (upstream::is_protocol_error(error)) {
      pool.stats().error(upstream::UpstreamError::kBadResponse);
      copies[next]->finish(ShadowFailure::kBadResponse);
      copies[next++].reset();
      fruitless = 0;
    } else {
      pool.stats().error(upstream::UpstreamError::kReset);
      if (reused && !answered_here) {
        fresh = true;
        ++fruitless;
      } else {
        copies[next]->finish(ShadowFailure::kReset);
        copies[next++].reset();
        fruitless = 0;
      }
    }
    // Only idempotent copies are sent again; one that is not is the last of its batch.
    if (next < copies.size() && !copies.back()->idempotent()) {
      copies.back()->finish(ShadowFailure::kReset);
      copies.pop_back();
    }
  }
  // The batch that filled up meanwhile leaves now.
  --lane.sending;
  if (!lane.batch.empty()) launch(lane);
}

}  // namespace apigw::server
