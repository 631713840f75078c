// Expands `${VAR}`, `${VAR:-default}` and `$$` inside one config scalar from the process environment.
// Runs on the parsed scalar, never on raw YAML text, so a variable's value cannot inject YAML structure.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace apigw::config {

struct EnvExpansion {
  std::string text;                 // the expanded scalar; meaningful only when errors is empty
  std::vector<std::string> errors;  // one per unset variable or malformed reference
};

// `${VAR:-default}` uses the default when VAR is unset or empty (as the shell does); a lone '$' not followed
// by '{' or '$' is kept as is.
EnvExpansion expand_env(std::string_view text);

}  // namespace apigw::config
