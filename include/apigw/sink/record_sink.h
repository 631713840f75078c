// A writer of records (the migration's audit records, spans): records from the workers go, in batches, to a file or
// an HTTP collector from a thread of the sink's own. A worker never waits on the destination: when the writer falls
// behind by the format's max_pending records, records are dropped and counted, and a failing destination costs
// records, not time. What a batch looks like on the wire is the sink's Format.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace apigw::net {
class TlsClientContext;
}

namespace apigw::sink {

// Where batches go: a file or an HTTP collector (record_sink.cpp). Used and destroyed by the writer thread only.
class Destination;
using DestinationPtr = std::unique_ptr<Destination>;

// What a sink's batches are, and how it behaves.
struct Format {
  std::string name = "sink";                       // in the log: "<name> <target>: ..."
  std::string content_type = "application/x-ndjson";  // of a POST
  std::string user_agent = "apigw";
  std::size_t max_pending = 20000;                 // records waiting; beyond this, write() drops and counts
  std::size_t batch = 1000;                        // at most this many records per file write / POST
  std::chrono::milliseconds linger{0};             // a batch short of `batch` waits this long for more
  std::chrono::milliseconds timeout{2000};         // a POST (connect, send, answer) that takes longer fails
  // The bytes of a batch (a file gets them appended, a collector as a POST's body); by default each record and
  // a newline.
  std::function<std::string(const std::vector<std::string>&)> encode;
};

class RecordSink {
 public:
  // Off: write() drops nothing and counts nothing (records are simply not wanted).
  explicit RecordSink(Format format);
  // Stops the writer after trying to deliver what is pending; an HTTP destination gets the timeout for all of it.
  ~RecordSink();
  RecordSink(const RecordSink&) = delete;
  RecordSink& operator=(const RecordSink&) = delete;

  const Format& format() const { return format_; }
  // Any thread: whether records are wanted (a destination was named).
  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }

  // Main thread. `target` is "" (off), "file:/absolute/path" (appended to, created with mode 0640) or
  // "http://host:port/path" or "https://host:port/path" (an IPv4 address, an IPv6 address in brackets or a host
  // name resolved at each connect): the grammar of migration.audit.sink. An https target needs `tls`, the
  // collector's TLS context; its sessions are resumed when the connection is opened again. Applies to the batches
  // the writer takes after the call; the
  // previous destination is closed by the writer once its batch in hand is done, so calling it again with the same
  // file target reopens the file (log rotation).
  // Returns "" when the destination is usable now, else a one-line reason ("cannot open /x/audit.ndjson: Permission
  // denied") for the caller to log. Never fatal: records meant for an unusable destination count as failed, and a
  // file that cannot be opened is tried again at most once per second. An HTTP collector is not contacted here.
  std::string reopen(const std::string& target, std::shared_ptr<net::TlsClientContext> tls = nullptr);

  // Any thread: from now on, at most `max_pending` records wait (those beyond are not dropped now, but no new one
  // is taken until fewer wait), and a POST of the next batch gets `timeout`. The format's values until called.
  void set_limits(std::size_t max_pending, std::chrono::milliseconds timeout);

  // Any thread; `line` is one JSON object without '\n'. Never waits on I/O, only on a short append under a lock.
  void write(std::string line);

  // Any thread: waits until every record handed over before the call was written or failed (or discarded, the
  // sink having been turned off since).
  void flush();

  // Any thread: totals since construction.
  std::uint64_t written() const { return written_.load(std::memory_order_relaxed); }  // file written, or 2xx
  std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }  // max_pending were pending
  // Lost to a failing destination: open or write error, connect error, timeout, non-2xx answer.
  std::uint64_t failed() const { return failed_.load(std::memory_order_relaxed); }

 private:
  using Clock = std::chrono::steady_clock;

  void write_loop();
  std::vector<std::string> take_batch();  // under mutex_: up to format_.batch records, oldest first

  const Format format_;
  std::atomic<bool> enabled_{false};
  std::mutex mutex_;
  std::condition_variable wake_;      // the writer: records, a new destination, or stop
  std::condition_variable finished_;  // flush(): records were delivered or failed
  std::deque<std::string> pending_;   // under mutex_, as every member below up to the counters
  std::optional<DestinationPtr> next_;  // set by reopen() until the writer takes it; nullptr for off
  std::uint64_t accepted_ = 0;               // records ever put in pending_
  std::uint64_t done_ = 0;                   // of those, delivered, failed or discarded (off)
  bool stopping_ = false;
  Clock::time_point stop_deadline_{};  // when stopping_: no POST may outlast it
  std::size_t max_pending_;                 // set_limits(), else the format's
  std::chrono::milliseconds timeout_;       // set_limits(), else the format's
  std::atomic<std::uint64_t> written_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> failed_{0};
  std::thread writer_;
};

}  // namespace apigw::sink
