// The writer of migration audit records: NDJSON lines from the workers go, in batches, to a file or an HTTP
// collector from a thread of the sink's own. A worker never waits on the destination: when the writer falls behind
// by kMaxPendingRecords, records are dropped and counted, and a failing destination costs records, not time.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace apigw::net {
class TlsClientContext;
}

namespace apigw::migration {

// Where batches go: a file or an HTTP collector (audit_sink.cpp). Used and destroyed by the writer thread only.
class AuditDestination;
using AuditDestinationPtr = std::unique_ptr<AuditDestination>;

class AuditSink {
 public:
  static constexpr std::size_t kMaxPendingRecords = 20000;  // beyond this, write() drops and counts
  static constexpr std::size_t kBatchRecords = 1000;        // at most this many records per file write / POST
  static constexpr std::chrono::seconds kHttpTimeout{2};    // a POST (connect, send, answer) that takes longer fails
  static_assert(kBatchRecords > 0 && kBatchRecords <= kMaxPendingRecords);

  // Off: write() drops nothing and counts nothing (records are simply not wanted).
  AuditSink();
  // Stops the writer after trying to deliver what is pending; an HTTP destination gets kHttpTimeout for all of it.
  ~AuditSink();
  AuditSink(const AuditSink&) = delete;
  AuditSink& operator=(const AuditSink&) = delete;

  // Main thread. `target` is "" (off), "file:/absolute/path" (appended to, created with mode 0640) or
  // "http://host:port/path" or "https://host:port/path" (an IPv4 address, an IPv6 address in brackets or a host
  // name resolved at each connect): the grammar of migration.audit.sink. An https target needs `tls`, the context
  // of migration.audit.tls; its sessions are resumed when the connection is opened again. Applies to the batches the writer takes after the call; the
  // previous destination is closed by the writer once its batch in hand is done, so calling it again with the same
  // file target reopens the file (log rotation).
  // Returns "" when the destination is usable now, else a one-line reason ("cannot open /x/audit.ndjson: Permission
  // denied") for the caller to log. Never fatal: records meant for an unusable destination count as failed, and a
  // file that cannot be opened is tried again at most once per second. An HTTP collector is not contacted here.
  std::string reopen(const std::string& target, std::shared_ptr<net::TlsClientContext> tls = nullptr);

  // Any thread; `line` is one JSON object without '\n'. Never waits on I/O, only on a short append under a lock.
  void write(std::string line);

  // Any thread: waits until every record handed over before the call was written or failed (or discarded, the
  // sink having been turned off since).
  void flush();

  // Any thread: totals since construction.
  std::uint64_t written() const { return written_.load(std::memory_order_relaxed); }  // file written, or 2xx
  std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }  // kMaxPendingRecords pending
  // Lost to a failing destination: open or write error, connect error, timeout, non-2xx answer.
  std::uint64_t failed() const { return failed_.load(std::memory_order_relaxed); }

 private:
  using Clock = std::chrono::steady_clock;

  void write_loop();
  std::vector<std::string> take_batch();  // under mutex_: up to kBatchRecords records, oldest first

  std::atomic<bool> enabled_{false};
  std::mutex mutex_;
  std::condition_variable wake_;      // the writer: records, a new destination, or stop
  std::condition_variable finished_;  // flush(): records were delivered or failed
  std::deque<std::string> pending_;   // under mutex_, as every member below up to the counters
  std::optional<AuditDestinationPtr> next_;  // set by reopen() until the writer takes it; nullptr for off
  std::uint64_t accepted_ = 0;               // records ever put in pending_
  std::uint64_t done_ = 0;                   // of those, delivered, failed or discarded (off)
  bool stopping_ = false;
  Clock::time_point stop_deadline_{};  // when stopping_: no POST may outlast it
  std::atomic<std::uint64_t> written_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> failed_{0};
  std::thread writer_;
};

}  // namespace apigw::migration
