// The service manager's side channel (sd_notify): readiness, reloads, stopping, status and the watchdog.
// Without systemd (no NOTIFY_SOCKET) every call is a no-op.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>
#include <vector>

namespace apigw::app {

void notify_ready(std::string_view status);
// Sent before a reload starts; notify_ready() ends it (systemd's Type=notify-reload protocol, understood by
// older systemd as plain status updates).
void notify_reloading(std::string_view status);
void notify_stopping(std::string_view status);
void notify_status(std::string_view status);
void notify_watchdog();
// Listening sockets passed by the service manager (socket activation, LISTEN_FDS), in the order it passed them;
// empty when none were. The variables are removed from the environment.
std::vector<int> inherited_sockets();
// The watchdog interval systemd expects a ping within (WATCHDOG_USEC), when it is enabled for this process.
std::optional<std::chrono::microseconds> watchdog_interval();

}  // namespace apigw::app
