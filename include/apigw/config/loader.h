// Loads and validates a config file (and its includes) into a typed Config. Runs at start-up and on reload,
// never on a worker thread. Collects every error it finds, each with file, line, column and reason.
#pragma once

#include <string>
#include <string_view>
#include <vector>
#include <optional>

#include "apigw/config/config.h"

namespace apigw::config {

struct ConfigError {
  Position position;
  std::string message;
  std::string text() const;  // "file:line:column: message"
};

struct LoadResult {
  std::optional<Config> config;    // set when errors is empty
  std::vector<ConfigError> errors;
  std::vector<ConfigError> warnings;  // accepted, but said at load (a TLS peer left unverified)
};

// Reads `path`; `include:` globs are relative to the including file's directory.
LoadResult load_file(const std::string& path);

// Parses `yaml` as if it were the file `name` (includes relative to name's directory).
LoadResult load_string(std::string_view yaml, const std::string& name);

}  // namespace apigw::config
