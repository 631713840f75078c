// The migration shadow's copy of a request and the audit of the two answers (see shadow_copy.h).
#include "apigw/migration/shadow_copy.h"

#include <functional>
#include <iterator>

#include <fmt/format.h>

#include "apigw/migration/audit_sink.h"
#include "apigw/migration/shadow_dispatch.h"
#include "apigw/upstream/http_client.h"

namespace apigw::migration {
namespace asio = boost::asio;
using boost::system::error_code;

namespace {

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
    case ShadowFailure::kTls: return "TLS handshake failed";
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
    : dispatch_(params.dispatch),
      snapshot_(std::move(params.snapshot)),
      pool_(std::move(params.pool)),
      stats_(params.stats),
      framed_(params.framed),
      idempotent_(params.idempotent),
      head_method_(params.head_method),
      max_body_(snapshot_->config.migration.shadow.max_body_bytes) {}

ShadowCopy::~ShadowCopy() {
  if (launched_) dispatch_.end();
}

void ShadowCopy::audit(AuditRecord record) {
  record_ = std::move(record);
  audit_.emplace(snapshot_->config.migration.audit.max_body_bytes);
  audit_->primary.side().upstream = record_.primary.upstream;
  audit_->primary.side().span_id = record_.primary.span_id;
  audit_->shadow.side().upstream = pool_->upstream().config.name;
  if (trace_) audit_->shadow.side().span_id = tracing::to_hex(trace_->span.id);
}

void ShadowCopy::trace(ShadowTrace trace) {
  if (audit_) audit_->shadow.side().span_id = tracing::to_hex(trace.span.id);
  trace_ = std::move(trace);
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
  const config::ShadowSettings& settings = snapshot_->config.migration.shadow;
  if (!dispatch_.begin(settings.max_in_flight)) {
    stats().shadow_dropped(ShadowDrop::kMaxInFlight);
    audit_.reset();
    return;
  }
  launched_ = true;
  stats().shadow_sent();
  // The shadow side is told of the copy's span, not of the primary exchange's.
  if (trace_ && head.ends_with(trace_->primary_headers)) head.remove_suffix(trace_->primary_headers.size());
  head_.reserve(head.size() + settings.header.size() + 48 + (trace_ ? trace_->headers.size() : 0));
  head_.append(head);
  if (trace_) head_.append(trace_->headers);
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
  dispatch_.add(shared_from_this());
}

std::array<asio::const_buffer, 2> ShadowCopy::request() const { return {asio::buffer(head_), asio::buffer(body_)}; }

void ShadowCopy::sending() {
  if (trace_ && trace_->exporter) sent_at_ = std::chrono::system_clock::now();
  if (audit_) audit_->shadow.start();
}

asio::awaitable<error_code> ShadowCopy::read_answer(upstream::UpstreamConnection& connection, bool& got_bytes,
                                                    bool& keep_alive) {
  upstream::ResponseReader reader;
  if (const error_code error = co_await reader.read_head(connection, head_method_, got_bytes)) co_return error;
  const unsigned status = reader.status();
  answer_status_ = status;
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
  if (trace_ && trace_->exporter) export_span(failure);
}

void ShadowCopy::export_span(std::optional<ShadowFailure> failure) {
  const auto unix_ns = [](std::chrono::system_clock::time_point at) {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch())
                                          .count());
  };
  const auto now = std::chrono::system_clock::now();
  tracing::Span& span = trace_->span;
  span.start_unix_ns = unix_ns(sent_at_ == std::chrono::system_clock::time_point{} ? now : sent_at_);
  span.end_unix_ns = unix_ns(now);
  if (failure) {
    span.status = tracing::SpanStatus::kError;
    span.status_message = std::string(failure_text(*failure));
  } else {
    span.add("http.response.status_code", static_cast<std::int64_t>(answer_status_));
    if (answer_status_ >= 500) span.status = tracing::SpanStatus::kError;
  }
  trace_->exporter->export_span(span);
}

void ShadowCopy::write_audit() {
  record_.primary = std::move(audit_->primary.side());
  record_.shadow = std::move(audit_->shadow.side());
  AuditResult result = AuditResult::kIncomplete;
  std::string line = audit_line(record_, snapshot_->config.migration.audit.ignore_fields, result);
  stats().audited(static_cast<std::size_t>(result));
  dispatch_.audit_sink().write(std::move(line));
  audit_.reset();
}

}  // namespace apigw::migration
