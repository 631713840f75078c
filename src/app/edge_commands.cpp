// The edge-export and route-test commands (see edge_commands.h): argument handling, files, and the messages.
#include "edge_commands.h"

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "apigw/core/digest.h"
#include "apigw/core/text_file.h"
#include "apigw/edge/edge_export.h"
#include "apigw/edge/route_check.h"
#include "control.h"

namespace apigw::app {
namespace {

namespace fs = std::filesystem;

constexpr const char* kExportUsage =
    "Usage: apigw edge-export -c FILE --format worker|nginx|json [-o OUT]\n"
    "\n"
    "Exports the route table's edge routing (the `edge` section and each route's `site`): which site serves each\n"
    "request, with apigw's own precedence (static > :param > *wildcard, methods, host).\n"
    "  worker  a JavaScript module for edge workers (a fetch(request) handler) holding the trie as data\n"
    "  nginx   an include file for an NGINX front: maps that choose the site's upstream\n"
    "  json    the compiled table, versioned, for any other consumer\n"
    "The output is the same bytes for the same YAML; -o writes it to OUT (replaced whole), else to stdout.\n";

constexpr const char* kRouteTestUsage =
    "Usage: apigw route-test -c FILE CASES.yaml...\n"
    "       apigw route-test -c FILE --explain METHOD TARGET [--host HOST] [--user ID] [--client-ip IP]\n"
    "                                [-H 'Name: value']...\n"
    "\n"
    "Checks a route table before it ships. Each case of CASES.yaml is a request and what it must get:\n"
    "  - name: a user's profile is served by the new side      # optional\n"
    "    request: GET /users/7?fields=name                     # METHOD TARGET\n"
    "    host: api.example.com                                 # optional, as are user, client_ip and headers\n"
    "    user: \"42\"\n"
    "    expect: { route: user-profile, upstream: users-cloud, site: cloud, path: \"/users/7?fields=name\",\n"
    "              side: new, shadow: false }                  # or status: 404 | 405 | 400\n"
    "Every failure is printed with the route that matched instead and its place in the config; the exit code is 1\n"
    "when any case fails. --explain prints how one request would be handled.\n";

// The snapshot of `path`, its errors printed; null when it has any.
config::SnapshotPtr load(const std::string& path) {
  const Loaded loaded = load_snapshot(path, 1);
  for (const std::string& error : loaded.errors) std::fprintf(stderr, "%s\n", error.c_str());
  for (const std::string& warning : loaded.warnings) std::fprintf(stderr, "warning: %s\n", warning.c_str());
  if (!loaded.snapshot) {
    std::fprintf(stderr, "apigw: configuration %s has %zu error%s\n", path.c_str(), loaded.errors.size(),
                 loaded.errors.size() == 1 ? "" : "s");
  }
  return loaded.snapshot;
}

// SHA-256 over every file the config read, in order (each file's length, then its bytes).
std::string config_digest(const config::Config& config) {
  core::Sha256 digest;
  for (const std::string& file : config.files) {
    std::string text;
    std::string why;
    if (!core::read_text_file(file, text, why)) text.clear();
    digest.update(std::to_string(text.size()) + "\n");
    digest.update(text);
  }
  return digest.hex_final();
}

int usage_error(const char* usage, const std::string& message) {
  std::fprintf(stderr, "apigw: %s\n\n%s", message.c_str(), usage);
  return 2;
}

}  // namespace

int run_edge_export(int argc, char** argv) {
  std::string config_path;
  std::string format_name;
  std::string output;
  for (int i = 0; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kExportUsage, stdout);
      return 0;
    }
    const bool has_value = i + 1 < argc;
    if ((arg == "-c" || arg == "--config") && has_value) {
      config_path = argv[++i];
    } else if (arg == "--format" && has_value) {
      format_name = argv[++i];
    } else if ((arg == "-o" || arg == "--output") && has_value) {
      output = argv[++i];
    } else {
      return usage_error(kExportUsage, "edge-export: unknown or incomplete option '" + arg + "'");
    }
  }
  if (config_path.empty()) return usage_error(kExportUsage, "edge-export: no configuration file given (-c FILE)");
  edge::Format format;
  if (format_name == "worker") {
    format = edge::Format::kWorker;
  } else if (format_name == "nginx") {
    format = edge::Format::kNginx;
  } else if (format_name == "json") {
    format = edge::Format::kJson;
  } else {
    return usage_error(kExportUsage, format_name.empty() ? "edge-export: no --format given (worker, nginx or json)"
                                                         : "edge-export: unknown format '" + format_name +
                                                               "' (worker, nginx or json)");
  }
  const config::SnapshotPtr snapshot = load(config_path);
  if (!snapshot) return 1;
  if (!snapshot->config.edge.enabled) {
    std::fprintf(stderr,
                 "apigw: edge-export: %s has no edge section: name the sites (edge.sites) and the default site "
                 "first\n",
                 config_path.c_str());
    return 1;
  }
  const edge::ExportSource source{fs::path(config_path).filename().string(), config_digest(snapshot->config),
                                  std::string("apigw ") + APIGW_VERSION};
  const std::string text = edge::export_table(*snapshot, source, format);
  if (output.empty()) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return std::fflush(stdout) == 0 ? 0 : 1;
  }
  std::string why;
  if (!core::write_file_atomically(output, text, why)) {
    std::fprintf(stderr, "apigw: edge-export: cannot write %s: %s\n", output.c_str(), why.c_str());
    return 1;
  }
  std::fprintf(stderr, "apigw: edge-export: wrote %s (%s, table version %s)\n", output.c_str(), format_name.c_str(),
               edge::table_version(*snapshot).c_str());
  return 0;
}

int run_route_test(int argc, char** argv) {
  std::string config_path;
  std::vector<std::string> case_files;
  std::vector<std::string> explain_words;
  bool explaining = false;
  edge::RouteRequest request;
  for (int i = 0; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kRouteTestUsage, stdout);
      return 0;
    }
    const bool has_value = i + 1 < argc;
    if ((arg == "-c" || arg == "--config") && has_value) {
      config_path = argv[++i];
    } else if (arg == "--explain") {
      explaining = true;
    } else if (arg == "--host" && has_value) {
      request.host = argv[++i];
    } else if (arg == "--user" && has_value) {
      request.user = argv[++i];
    } else if (arg == "--client-ip" && has_value) {
      request.client_ip = argv[++i];
    } else if (arg == "-H" && has_value) {
      const std::string header = argv[++i];
      const auto colon = header.find(':');
      if (colon == std::string::npos || colon == 0) {
        return usage_error(kRouteTestUsage, "route-test: -H takes 'Name: value', got '" + header + "'");
      }
      const auto value_start = header.find_first_not_of(' ', colon + 1);
      request.headers.emplace_back(header.substr(0, colon),
                                   value_start == std::string::npos ? "" : header.substr(value_start));
    } else if (!arg.empty() && arg[0] == '-' && arg != "-") {
      return usage_error(kRouteTestUsage, "route-test: unknown or incomplete option '" + arg + "'");
    } else if (explaining) {
      explain_words.push_back(arg);
    } else {
      case_files.push_back(arg);
    }
  }
  if (config_path.empty()) return usage_error(kRouteTestUsage, "route-test: no configuration file given (-c FILE)");
  if (explaining) {
    if (explain_words.size() != 2 || !case_files.empty()) {
      return usage_error(kRouteTestUsage, "route-test: --explain takes a METHOD and a TARGET (GET /users/7)");
    }
  } else if (case_files.empty()) {
    return usage_error(kRouteTestUsage, "route-test: no case file given (or --explain METHOD TARGET)");
  }
  const config::SnapshotPtr snapshot = load(config_path);
  if (!snapshot) return 1;
  if (explaining) {
    request.method = explain_words[0];
    request.target = explain_words[1];
    const edge::RouteOutcome outcome = edge::resolve(*snapshot, request);
    const std::string text = edge::explain(*snapshot, request, outcome);
    std::fputs(text.c_str(), stdout);
    return 0;
  }
  std::size_t total = 0;
  std::size_t failed = 0;
  bool unreadable = false;
  for (const std::string& file : case_files) {
    std::string text;
    std::string why;
    if (!core::read_text_file(file, text, why)) {
      std::fprintf(stderr, "apigw: route-test: cannot read %s: %s\n", file.c_str(), why.c_str());
      unreadable = true;
      continue;
    }
    const edge::CaseFile cases = edge::load_cases(text, file);
    for (const std::string& error : cases.errors) std::fprintf(stderr, "%s\n", error.c_str());
    if (!cases.errors.empty()) {
      unreadable = true;
      continue;
    }
    for (const edge::RouteCase& route_case : cases.cases) {
      ++total;
      const std::vector<std::string> failures = edge::check_case(*snapshot, route_case);
      if (failures.empty()) continue;
      ++failed;
      for (const std::string& failure : failures) {
        std::printf("%s:%d:%d: %s: %s\n", route_case.at.file.c_str(), route_case.at.line, route_case.at.column,
                    route_case.name.c_str(), failure.c_str());
      }
    }
  }
  std::printf("route-test: %zu case%s, %zu passed, %zu failed%s\n", total, total == 1 ? "" : "s", total - failed,
              failed, unreadable ? " (some case files could not be read: see above)" : "");
  return failed == 0 && !unreadable ? 0 : 1;
}

}  // namespace apigw::app
