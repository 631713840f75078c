// Sends the migration shadow's copies of one worker (see ShadowCopy) and counts them in flight.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "apigw/core/metrics.h"
#include "apigw/migration/audit_sink.h"
#include "apigw/migration/shadow_copy.h"
#include "apigw/upstream/upstream_pool.h"

namespace apigw::migration {

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
  // Runs on `executor` (one worker's loop); `in_flight` counts the copies on their way (a gauge), `drained` is the
  // worker's flag that says nothing may keep its loop alive any more (no connection goes back to a pool then).
  ShadowDispatch(boost::asio::any_io_executor executor, AuditSink& audit_sink, core::Gauge& in_flight,
                 const bool& drained)
      : executor_(std::move(executor)), audit_sink_(audit_sink), in_flight_(in_flight), drained_(drained) {}
  ShadowDispatch(const ShadowDispatch&) = delete;
  ShadowDispatch& operator=(const ShadowDispatch&) = delete;

  // A copy is about to leave: counted in flight, unless `max` are already.
  bool begin(unsigned max);
  // A copy that left is done.
  void end() { in_flight_.sub(1); }
  // A copy ready to leave.
  void add(std::shared_ptr<ShadowCopy> copy);
  AuditSink& audit_sink() { return audit_sink_; }

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
  struct Run;
  // What one connection did for a run: the error that ended it (none: every copy written on it got its outcome,
  // or the shadow side closed after an answer), and whether any of the answer being read had arrived.
  struct ConnectionOutcome {
    boost::system::error_code error;
    bool got_bytes = false;
    bool keep_alive = true;
    std::size_t first = 0;  // the first copy written on it
  };
  boost::asio::awaitable<void> send(Lane& lane, upstream::UpstreamPoolPtr pool, Batch copies);
  // Writes every copy still without an outcome on `lease`, in one write, and reads their answers in order.
  boost::asio::awaitable<ConnectionOutcome> exchange(Run& run, upstream::UpstreamConnection& connection);
  // After a connection failed: which copies go again, and whether on a fresh connection. Returns whether the
  // connection counts as fruitless (nothing came out of it).
  bool after_failure(Run& run, const ConnectionOutcome& outcome, bool reused, bool& fresh);

  boost::asio::any_io_executor executor_;
  AuditSink& audit_sink_;
  core::Gauge& in_flight_;
  const bool& drained_;
  bool flush_posted_ = false;
  std::map<const upstream::UpstreamPool*, Lane> lanes_;
};

}  // namespace apigw::migration
