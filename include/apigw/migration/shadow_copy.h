// The migration shadow's copy of one request: the request the primary side received whole, sent to the shadow side
// once the primary exchange is over, its answer read and set aside, and, for an audited request, the record
// comparing the two answers. Nothing here delays, changes or fails the primary exchange. ShadowDispatch sends it.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>

#include "apigw/config/snapshot.h"
#include "apigw/core/digest.h"
#include "apigw/migration/audit_record.h"
#include "apigw/migration/migration_stats.h"
#include "apigw/proxy/forward_request.h"
#include "apigw/tracing/span.h"
#include "apigw/tracing/span_exporter.h"
#include "apigw/upstream/upstream_pool.h"

namespace apigw::migration {

class ShadowDispatch;

// One side's answer as the audit keeps it: status, size and hash, and the body while it fits max_body_bytes.
class AnswerCapture {
 public:
  explicit AnswerCapture(std::uint64_t max_body) : max_body_(max_body) {}

  void start() { start_ = std::chrono::steady_clock::now(); }
  void head(unsigned status) { side_.status = status; }
  void body(std::string_view bytes);
  void complete();
  void fail(std::string error);
  bool finished() const { return finished_; }
  AuditSide& side() { return side_; }

 private:
  std::uint64_t max_body_;
  std::chrono::steady_clock::time_point start_{};
  core::Sha256 hash_;
  AuditSide side_;
  bool finished_ = false;
};

// The copy's part in the request's trace (tracing on): the copy goes out as a span of its own, a child of the
// request's span linked to the primary exchange's, and the shadow side is told of that span instead of the
// primary's.
struct ShadowTrace {
  std::string primary_headers;  // the trace header lines ending the primary's upstream head
  std::string headers;          // the copy's, which replace them
  // Exported when `exporter` is set: everything but the times, the status and the outcome, which the copy adds.
  tracing::Span span;
  tracing::SpanExporter* exporter = nullptr;
};

class ShadowCopy final : public proxy::RequestObserver, public std::enable_shared_from_this<ShadowCopy> {
 public:
  struct Params {
    ShadowDispatch& dispatch;      // sends the copy; counts copies in flight
    config::SnapshotPtr snapshot;  // the settings the request is served with
    upstream::UpstreamPoolPtr pool;  // the shadow side's
    RouteMigrationStats& stats;    // the route's; outlives the copy
    bool framed = false;           // the request had a Content-Length or a chunked body
    bool idempotent = false;       // a stale keep-alive connection may be retried
    bool head_method = false;      // a HEAD request: the answer has no body
  };
  explicit ShadowCopy(Params params);
  ~ShadowCopy();
  ShadowCopy(const ShadowCopy&) = delete;
  ShadowCopy& operator=(const ShadowCopy&) = delete;

  // The two answers are compared: `record` identifies the request (the sides are filled in as they answer).
  void audit(AuditRecord record);
  // The copy carries the request's trace context (before the primary is forwarded).
  void trace(ShadowTrace trace);

  void on_request_body(std::string_view bytes) override;
  void on_request_sent(std::string_view head) override;

  // The primary answer's observer (null unless audited).
  proxy::ResponseObserver* primary_observer() { return audit_ ? &primary_observer_ : nullptr; }
  // The primary exchange is over (after Forwarder::run), however it ended: a copy made ready leaves now, in a batch
  // with other copies to its side (see ShadowDispatch).
  void primary_finished(const proxy::ForwardResult& result);

 private:
  friend class ShadowDispatch;
  class PrimaryObserver final : public proxy::ResponseObserver {
   public:
    explicit PrimaryObserver(ShadowCopy& copy) : copy_(copy) {}
    void on_head(unsigned status, std::span<const http::ResponseParser::Field> fields) override;
    void on_body(std::string_view bytes) override;
    void on_complete() override;

   private:
    ShadowCopy& copy_;
  };
  struct Audit {
    explicit Audit(std::uint64_t max_body) : primary(max_body), shadow(max_body) {}
    AnswerCapture primary;
    AnswerCapture shadow;
  };

  // For ShadowDispatch, which sends the copy.
  const upstream::UpstreamPoolPtr& pool() const { return pool_; }
  core::Duration timeout() const { return snapshot_->config.migration.shadow.timeout; }
  unsigned pipeline() const { return snapshot_->config.migration.shadow.pipeline; }
  bool idempotent() const { return idempotent_; }
  std::array<boost::asio::const_buffer, 2> request() const;
  void sending();
  // Reads this copy's answer from `connection` (the answers to copies written before it were read already).
  // `got_bytes`: some of it arrived; `keep_alive`: the shadow side keeps the connection open after it.
  boost::asio::awaitable<boost::system::error_code> read_answer(upstream::UpstreamConnection& connection,
                                                                bool& got_bytes, bool& keep_alive);
  // The copy's outcome: answered (no failure) or not; writes the audit record.
  void finish(std::optional<ShadowFailure> failure);
  RouteMigrationStats& stats() const { return stats_; }
  void write_audit();  // both answers are in
  void export_span(std::optional<ShadowFailure> failure);  // the copy's span, once it is over

  ShadowDispatch& dispatch_;
  config::SnapshotPtr snapshot_;
  upstream::UpstreamPoolPtr pool_;
  RouteMigrationStats& stats_;
  bool framed_;
  bool idempotent_;
  bool head_method_;
  std::uint64_t max_body_;
  bool overflow_ = false;   // the body outgrew migration.shadow.max_body_bytes: no copy
  bool launched_ = false;   // the copy is on its way: the worker counts it in flight
  std::string body_;
  std::string head_;
  std::optional<Audit> audit_;
  AuditRecord record_;
  std::optional<ShadowTrace> trace_;
  std::chrono::system_clock::time_point sent_at_{};  // when the copy was sent (an exported span's start)
  unsigned answer_status_ = 0;                       // the shadow side's answer, once its head was read
  PrimaryObserver primary_observer_{*this};
};

}  // namespace apigw::migration
