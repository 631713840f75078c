// The access log: one line per request, written by spdlog's async logger so a worker never waits on disk.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace spdlog {
class logger;
}

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
};

class AccessLog {
 public:
  // `target` is "stdout", "off" or a file path; throws std::runtime_error when the file cannot be opened.
  explicit AccessLog(const std::string& target);
  ~AccessLog();
  bool enabled() const { return logger_ != nullptr; }
  void record(const AccessRecord& record);
  void flush();

 private:
  std::shared_ptr<spdlog::logger> logger_;
};

// Sets up the process log (stderr) at `level` ("info", "debug", ...). Returns false on an unknown level.
bool configure_process_log(const std::string& level);

}  // namespace apigw::core
