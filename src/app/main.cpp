// apigw's entry point: command line, config loading, logging, signals, and the gateway's lifetime.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include <spdlog/spdlog.h>

#include "apigw/core/access_log.h"
#include "control.h"
#include "ctl.h"
#include "edge_commands.h"

namespace {

constexpr const char* kUsage =
    "Usage: apigw -c FILE [-t]\n"
    "       apigw ctl -c FILE COMMAND ...   (the fleet's runtime state: apigw ctl --help)\n"
    "       apigw edge-export -c FILE --format worker|nginx|json [-o OUT]   (the edge's routing)\n"
    "       apigw route-test -c FILE CASES.yaml... | --explain METHOD TARGET   (test a route table)\n"
    "\n"
    "A reverse-proxy API gateway: routes HTTP/1.1 requests by a YAML route table to upstream services.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE  the configuration file (YAML)\n"
    "  -t, --test         check the configuration and exit: 0 when valid, 1 otherwise\n"
    "  -v, --version      print the version and exit\n"
    "  -h, --help         print this help and exit\n"
    "\n"
    "Signals: SIGHUP reloads the configuration (a bad one is rejected and the running one kept);\n"
    "SIGTERM or SIGINT drain in-flight requests and exit; SIGUSR1 reopens the access log file.\n";

struct Options {
  std::string config_path;
  bool test_only = false;
};

// Returns the exit code to leave with, or -1 to carry on.
int parse_options(int argc, char** argv, Options& options) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "-v" || arg == "--version") {
      std::printf("apigw %s\n", APIGW_VERSION);
      return 0;
    }
    if (arg == "-t" || arg == "--test") {
      options.test_only = true;
    } else if ((arg == "-c" || arg == "--config") && i + 1 < argc) {
      options.config_path = argv[++i];
    } else {
      std::fprintf(stderr, "apigw: unknown or incomplete option '%s'\n\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }
  if (options.config_path.empty()) {
    std::fprintf(stderr, "apigw: no configuration file given (-c FILE)\n\n%s", kUsage);
    return 2;
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "ctl") == 0) return apigw::app::run_ctl(argc - 2, argv + 2);
  if (argc >= 2 && std::strcmp(argv[1], "edge-export") == 0) return apigw::app::run_edge_export(argc - 2, argv + 2);
  if (argc >= 2 && std::strcmp(argv[1], "route-test") == 0) return apigw::app::run_route_test(argc - 2, argv + 2);
  Options options;
  if (const int code = parse_options(argc, argv, options); code >= 0) return code;

  // Writes to a client that already left must fail with EPIPE, not kill the process.
  std::signal(SIGPIPE, SIG_IGN);

  const apigw::app::Loaded loaded = apigw::app::load_snapshot(options.config_path, 1);
  for (const std::string& error : loaded.errors) std::fprintf(stderr, "%s\n", error.c_str());
  for (const std::string& warning : loaded.warnings) std::fprintf(stderr, "warning: %s\n", warning.c_str());
  if (!loaded.snapshot) {
    std::fprintf(stderr, "apigw: configuration %s has %zu error%s\n", options.config_path.c_str(),
                 loaded.errors.size(), loaded.errors.size() == 1 ? "" : "s");
    return 1;
  }
  if (options.test_only) {
    std::printf("apigw: configuration %s is valid\n", options.config_path.c_str());
    return 0;
  }

  try {
    apigw::core::configure_process_log(loaded.snapshot->config.log.level);
    spdlog::flush_every(std::chrono::seconds(1));
    apigw::core::AccessLog access_log(loaded.snapshot->config.log.access);
    {
      apigw::app::Control control(options.config_path, loaded.snapshot, access_log);
      control.run();
    }
    access_log.flush();
    spdlog::info("apigw stopped");
  } catch (const std::exception& error) {
    spdlog::critical("{}", error.what());
    std::fprintf(stderr, "apigw: %s\n", error.what());
    return 1;
  }
  return 0;
}
