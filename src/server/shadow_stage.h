// The migration shadow's part of a request (see ClientSession::plan_shadow): a copy of the request the primary
// side received whole, sent to the shadow side once the primary exchange is over, its answer read and set aside,
// and, for an audited request, the record comparing the two answers. Nothing here delays, changes or fails the
// primary exchange.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "apigw/core/digest.h"
#include "apigw/migration/audit_record.h"
#include "apigw/proxy/forwarder.h"
#include "apigw/server/request_stats.h"
#include "apigw/server/worker.h"

namespace apigw::server {

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
  migration::AuditSide& side() { return side_; }

 private:
  std::uint64_t max_body_;
  std::chrono::steady_clock::time_point start_{};
  core::Sha256 hash_;
  migration::AuditSide side_;
  bool finished_ = false;
};

class ShadowCopy final : public proxy::RequestObserver, public std::enable_shared_from_this<ShadowCopy> {
 public:
  struct Params {
    Worker& worker;
    GenerationPtr generation;
    std::uint32_t route_index = 0;
    std::size_t shadow_upstream = 0;  // snapshot upstream index
    bool framed = false;              // the request had a Content-Length or a chunked body
    bool idempotent = false;          // a stale keep-alive connection may be retried
    bool head_method = false;         // a HEAD request: the answer has no body
    bool audited = false;
    migration::AuditRecord record{};  // what identifies the request (the sides are filled as they answer)
  };
  explicit ShadowCopy(Params params);
  ~ShadowCopy();
  ShadowCopy(const ShadowCopy&) = delete;
  ShadowCopy& operator=(const ShadowCopy&) = delete;

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
  const upstream::UpstreamPoolPtr& pool() const { return generation_->pools[shadow_upstream_]; }
  core::Duration timeout() const { return generation_->snapshot->config.migration.shadow.timeout; }
  unsigned pipeline() const { return generation_->snapshot->config.migration.shadow.pipeline; }
  bool idempotent() const { return idempotent_; }
  std::array<boost::asio::const_buffer, 2> request() const;
  void sending();
  // Reads this copy's answer from `connection` (the answers to copies written before it were read already).
  // `got_bytes`: some of it arrived; `keep_alive`: the shadow side keeps the connection open after it.
  boost::asio::awaitable<boost::system::error_code> read_answer(upstream::UpstreamConnection& connection,
                                                                bool& got_bytes, bool& keep_alive);
  // The copy's outcome: answered (no failure) or not; writes the audit record.
  void finish(std::optional<ShadowFailure> failure);
  RouteStats& stats() const { return *generation_->route_stats[route_index_]; }
  void write_audit();  // both answers are in

  Worker& worker_;
  GenerationPtr generation_;
  std::uint32_t route_index_;
  std::size_t shadow_upstream_;
  bool framed_;
  bool idempotent_;
  bool head_method_;
  std::uint64_t max_body_;
  bool overflow_ = false;   // the body outgrew migration.shadow.max_body_bytes: no copy
  bool launched_ = false;   // the copy is on its way: the worker counts it in flight
  std::string body_;
  std::string head_;
  std::optional<Audit> audit_;
  migration::AuditRecord record_;
  PrimaryObserver primary_observer_{*this};
};

// The copies ready to leave, gathered and sent in batches: a batch of copies to one shadow upstream goes out in one
// write on one connection (HTTP/1.1 pipelining) and their answers are read in order, which spares the gateway and
// the shadow side a write, a read and a wake-up per copy. A batch leaves once it is full; otherwise at the end of
// the turn of the loop, or, while another batch to that upstream is on its way, when that one is back (as Nagle's
// algorithm does for small writes): under load batches fill up by themselves, at low load a copy leaves at once.
//
// A batch holds at most migration.shadow.pipeline copies, and fewer when the shadow side answers slowly: it
// answers pipelined requests one after the other, so a batch holds what it answers in about kBatchBudget, at the
// pace measured per upstream (between two answers of one write, or a lone copy's whole exchange); until that is
// measured, and when a single answer takes longer, a batch is one copy. A copy of a request that is not
// idempotent ends its batch (RFC 9112, 9.3.2).
// A connection that ends before every copy is answered: the copy being answered fails (unless the connection was
// a kept-alive one that had gone stale: nothing was answered), and the copies after it, which the shadow side may
// never have read, are sent again on another connection if they are idempotent, and fail otherwise. One timer per
// batch bounds it by migration.shadow.timeout.
class ShadowDispatch {
 public:
  explicit ShadowDispatch(Worker& worker) : worker_(worker) {}
  ShadowDispatch(const ShadowDispatch&) = delete;
  ShadowDispatch& operator=(const ShadowDispatch&) = delete;

  void add(std::shared_ptr<ShadowCopy> copy);

 private:
  using Batch = std::vector<std::shared_ptr<ShadowCopy>>;
  // One shadow upstream's pool, the batch filling for it, and how fast it answers pipelined copies.
  struct Lane {
    std::weak_ptr<upstream::UpstreamPool> pool;
    Batch batch;
    unsigned sending = 0;  // batches on their way
    double pace_us = 0;  // moving average of the time an answer takes (0: not measured yet)
    std::size_t batch_limit(unsigned pipeline) const;
    void observe(std::chrono::steady_clock::duration answer_time);
  };

  void launch(Lane& lane);  // its batch leaves
  void flush();             // the turn is over: every batch leaves
  boost::asio::awaitable<void> send(Lane& lane, upstream::UpstreamPoolPtr pool, Batch copies);

  Worker& worker_;
  bool flush_posted_ = false;
  std::map<const upstream::UpstreamPool*, Lane> lanes_;
};

}  // namespace apigw::server
