// The access log: one line per request. A worker formats its lines into a buffer of its own and hands full
// buffers (or, every sweep, what it has) to one writer thread, so a worker never waits on the disk and takes a
// lock once per batch, not once per line. When the writer falls behind by more than kMaxPendingBytes, whole
// batches are dropped and counted rather than let memory grow.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace apigw::core {

struct AccessRecord {
  std::string_view request_id;
  std::string_view client;  // peer address
  std::string_view method;
  std::string_view path;    // the request target as received
  unsigned status = 0;
  std::uint64_t bytes = 0;  // response bytes written
  std::chrono::microseconds duration{0};
  std::string_view route;     // "-" when none matched
  std::string_view endpoint;  // upstream endpoint, "-" when none was used
  std::string_view user;      // the authenticated user id, "-" when none
  std::string_view token;     // the token's fingerprint (never the token), "-" when none was checked
  std::string_view error;     // the "error" code of a reply apigw made itself, "-" for an upstream's answer
  std::string_view trace;     // the request's trace id (tracing on), "-" without tracing
};

class AccessLog;

// One worker's lines not yet handed to the writer. Worker thread only.
class AccessLogBuffer {
 public:
  explicit AccessLogBuffer(AccessLog& log) : log_(log) {}
  ~AccessLogBuffer() { flush(); }
  AccessLogBuffer(const AccessLogBuffer&) = delete;
  AccessLogBuffer& operator=(const AccessLogBuffer&) = delete;

  bool enabled() const;
  void record(const AccessRecord& record);
  // Hands the buffered lines to the writer (the worker's sweeper calls this, so a line waits at most ~100 ms).
  void flush();

 private:
  AccessLog& log_;
  std::string lines_;
  std::size_t count_ = 0;
  std::int64_t stamp_second_ = -1;  // the second `stamp_` was formatted for
  char stamp_[32] = {};
  std::size_t stamp_length_ = 0;
  std::string zone_;
};

class AccessLog {
 public:
  static constexpr std::size_t kBatchBytes = 64 * 1024;
  static constexpr std::size_t kMaxPendingBytes = 16 * 1024 * 1024;

  // `target` is "stdout", "off" or a file path (appended to); throws std::runtime_error when the file cannot be
  // opened.
  explicit AccessLog(const std::string& target);
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }
  // Switches to `target` (a reload, or log rotation with the same path): the new file is opened here, and the
  // old one closed by the writer once the batch it is writing is done. Throws std::runtime_error when the file
  // cannot be opened; the log then goes on as it was.
  void reopen(const std::string& target);
  // Waits until every batch handed over so far is written.
  void flush();
  // Lines lost because the writer fell behind or a write failed.
  std::uint64_t dropped_lines() const { return dropped_lines_.load(std::memory_order_relaxed); }

 private:
  friend class AccessLogBuffer;
  void submit(std::string&& lines, std::size_t count);
  void write_loop();

  static int open_target(const std::string& target);  // -1 for "off"
  void close_retired();  // under mutex_, by the writer or the destructor

  int fd_ = -1;  // under mutex_
  std::atomic<bool> enabled_{false};
  std::vector<int> retired_;  // file descriptors to close, under mutex_
  std::mutex mutex_;
  std::condition_variable wake_;     // the writer: work or stop
  std::condition_variable written_;  // flush(): the queue emptied
  std::deque<std::pair<std::string, std::size_t>> queue_;
  std::size_t pending_bytes_ = 0;
  bool writing_ = false;
  bool stopping_ = false;
  std::atomic<std::uint64_t> dropped_lines_{0};
  std::thread writer_;
};

// Sets up the process log (stderr) at `level` ("info", "debug", ...). Returns false on an unknown level.
bool configure_process_log(const std::string& level);

}  // namespace apigw::core
