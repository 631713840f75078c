// sd_notify through libsystemd (see service_notify.h).
#include "service_notify.h"

#include <sys/socket.h>
#include <time.h>

#include <string>

#include <fmt/format.h>
#include <systemd/sd-daemon.h>

namespace apigw::app {
namespace {

void send(const std::string& message) { sd_notify(0, message.c_str()); }

std::uint64_t monotonic_usec() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::uint64_t>(now.tv_sec) * 1'000'000 + static_cast<std::uint64_t>(now.tv_nsec) / 1000;
}

}  // namespace

void notify_ready(std::string_view status) { send(fmt::format("READY=1\nSTATUS={}", status)); }

void notify_reloading(std::string_view status) {
  send(fmt::format("RELOADING=1\nMONOTONIC_USEC={}\nSTATUS={}", monotonic_usec(), status));
}

void notify_stopping(std::string_view status) { send(fmt::format("STOPPING=1\nSTATUS={}", status)); }

void notify_status(std::string_view status) { send(fmt::format("STATUS={}", status)); }

void notify_watchdog() { send("WATCHDOG=1"); }

std::vector<int> inherited_sockets() {
  std::vector<int> sockets;
  const int count = sd_listen_fds(1);
  for (int i = 0; i < count; ++i) {
    const int fd = SD_LISTEN_FDS_START + i;
    if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) > 0) sockets.push_back(fd);
  }
  return sockets;
}

std::optional<std::chrono::microseconds> watchdog_interval() {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec);
}

}  // namespace apigw::app
