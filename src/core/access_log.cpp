// The access log's line format, batching and writer thread (see access_log.h), and the process log set-up.
#include "apigw/core/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iterator>
#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace apigw::core {
namespace {

std::string_view or_dash(std::string_view text) { return text.empty() ? std::string_view("-") : text; }

bool write_fully(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

bool AccessLogBuffer::enabled() const { return log_.enabled(); }

void AccessLogBuffer::record(const AccessRecord& r) {
  if (!log_.enabled()) return;
  // Local time with milliseconds and the UTC offset, e.g. 2026-11-23T00:56:43.631+00:00; the part up to the
  // seconds is formatted once per second.
  const auto now = std::chrono::system_clock::now();
  const auto since_epoch = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::int64_t second = since_epoch / 1000;
  if (second != stamp_second_) {
    const std::time_t t = static_cast<std::time_t>(second);
    std::tm local{};
    localtime_r(&t, &local);
    stamp_length_ = std::strftime(stamp_, sizeof stamp_, "%Y-%m-%dT%H:%M:%S", &local);
    stamp_second_ = second;
    const long offset = local.tm_gmtoff / 60;
    zone_ = fmt::format("{}{:02}:{:02}", offset < 0 ? '-' : '+', std::abs(offset) / 60, std::abs(offset) % 60);
  }
  auto out = std::back_inserter(lines_);
  lines_.append(stamp_, stamp_length_);
  fmt::format_to(out, ".{:03}{} {} {} \"{} {}\" {} {} {}.{:03} {} {} {} {} {} {}\n", since_epoch % 1000, zone_,
                 r.request_id, r.client, r.method, r.path, r.status, r.bytes, r.duration.count() / 1000,
                 r.duration.count() % 1000, or_dash(r.route), or_dash(r.endpoint), or_dash(r.user), or_dash(r.token),
                 or_dash(r.error), or_dash(r.trace));
  ++count_;
  if (lines_.size() >= AccessLog::kBatchBytes) flush();
}

void AccessLogBuffer::flush() {
  if (count_ == 0) return;
  log_.submit(std::move(lines_), count_);
  lines_ = std::string();
  lines_.reserve(AccessLog::kBatchBytes + 1024);
  count_ = 0;
}

int AccessLog::open_target(const std::string& target) {
  if (target == "off") return -1;
  if (target == "stdout") return STDOUT_FILENO;
  const int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(fmt::format("cannot open access log {}: {}", target, std::strerror(errno)));
  return fd;
}

AccessLog::AccessLog(const std::string& target) : fd_(open_target(target)) {
  enabled_.store(fd_ >= 0, std::memory_order_relaxed);
  writer_ = std::thread([this] { write_loop(); });
}

AccessLog::~AccessLog() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  writer_.join();
  retired_.push_back(fd_);
  close_retired();
}

void AccessLog::reopen(const std::string& target) {
  const int fd = open_target(target);
  {
    std::lock_guard lock(mutex_);
    retired_.push_back(fd_);
    fd_ = fd;
    enabled_.store(fd >= 0, std::memory_order_relaxed);
    if (!writing_) close_retired();
  }
}

void AccessLog::close_retired() {
  for (const int fd : retired_) {
    if (fd > STDERR_FILENO) ::close(fd);
  }
  retired_.clear();
}

void AccessLog::submit(std::string&& lines, std::size_t count) {
  {
    std::lock_guard lock(mutex_);
    if (pending_bytes_ + lines.size() > kMaxPendingBytes) {
      dropped_lines_.fetch_add(count, std::memory_order_relaxed);
      return;
    }
    pending_bytes_ += lines.size();
    queue_.emplace_back(std::move(lines), count);
  }
  wake_.notify_one();
}

void AccessLog::flush() {
  std::unique_lock lock(mutex_);
  written_.wait(lock, [this] { return queue_.empty() && !writing_; });
}

void AccessLog::write_loop() {
  std::unique_lock lock(mutex_);
  bool warned = false;
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything is written
    auto [lines, count] = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    const int fd = fd_;
    lock.unlock();
    // Lines left over from before the log was turned off are not written anywhere.
    const bool ok = fd < 0 || write_fully(fd, lines);
    if (!ok) {
      dropped_lines_.fetch_add(count, std::memory_order_relaxed);
      if (!warned) spdlog::error("access log: write failed: {}; lines are being dropped", std::strerror(errno));
      warned = true;
    }
    lock.lock();
    writing_ = false;
    close_retired();
    pending_bytes_ -= lines.size();
    if (queue_.empty()) written_.notify_all();
  }
}

bool configure_process_log(const std::string& level) {
  const auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") return false;
  auto logger = spdlog::stderr_color_mt("apigw");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z [%l] %v");
  logger->set_level(parsed);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  return true;
}

}  // namespace apigw::core
