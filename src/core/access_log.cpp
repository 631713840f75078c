// Access log and process log set-up (see access_log.h).
#include "apigw/core/access_log.h"

#include <spdlog/async.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace apigw::core {
namespace {

// Lines queued for the writer thread; when full, a worker waits rather than lose a line.
constexpr std::size_t kQueueSize = 64 * 1024;

std::string_view or_dash(std::string_view text) { return text.empty() ? std::string_view("-") : text; }

}  // namespace

AccessLog::AccessLog(const std::string& target) {
  if (target == "off") return;
  if (!spdlog::thread_pool()) spdlog::init_thread_pool(kQueueSize, 1);
  if (target == "stdout") {
    logger_ = spdlog::create_async<spdlog::sinks::stdout_sink_mt>("access");
  } else {
    logger_ = spdlog::create_async<spdlog::sinks::basic_file_sink_mt>("access", target);
  }
  logger_->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %v");
  logger_->set_level(spdlog::level::info);
  logger_->flush_on(spdlog::level::err);
}

AccessLog::~AccessLog() {
  if (logger_) {
    logger_->flush();
    spdlog::drop(logger_->name());
  }
}

void AccessLog::record(const AccessRecord& r) {
  if (!logger_) return;
  logger_->info("{} {} \"{} {}\" {} {} {:.3f} {} {}", r.request_id, r.client, r.method, r.path, r.status, r.bytes,
                static_cast<double>(r.duration.count()) / 1000.0, or_dash(r.route), or_dash(r.endpoint));
}

void AccessLog::flush() {
  if (logger_) logger_->flush();
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
