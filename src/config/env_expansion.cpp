// `${VAR}` expansion for config scalars: reads the environment, reports every unset variable in the scalar.
#include "env_expansion.h"

#include <cstdlib>

namespace apigw::config {
namespace {

bool is_name_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }

bool is_variable_name(std::string_view name) {
  if (name.empty() || !is_name_start(name[0])) return false;
  for (char c : name) {
    if (!is_name_char(c)) return false;
  }
  return true;
}

// Expands the inside of one `${...}` (without the braces) into `out`.
void expand_reference(std::string_view inside, EnvExpansion& out) {
  const auto separator = inside.find(":-");
  const std::string_view name = inside.substr(0, separator);
  if (!is_variable_name(name)) {
    out.errors.push_back("bad variable name '" + std::string(name) + "' in '${" + std::string(inside) +
                         "}' (expected [A-Za-z_][A-Za-z0-9_]*)");
    return;
  }
  const char* value = std::getenv(std::string(name).c_str());
  if (separator == std::string_view::npos) {
    if (value == nullptr) {
      out.errors.push_back("environment variable '" + std::string(name) + "' is not set (write ${" +
                           std::string(name) + ":-default} to give a default)");
      return;
    }
    out.text += value;
  } else {
    out.text += (value != nullptr && *value != '\0') ? std::string_view(value) : inside.substr(separator + 2);
  }
}

}  // namespace

EnvExpansion expand_env(std::string_view text) {
  EnvExpansion out;
  std::size_t at = 0;
  while (at < text.size()) {
    const auto dollar = text.find('$', at);
    out.text += text.substr(at, dollar - at);
    if (dollar == std::string_view::npos) break;
    if (text.substr(dollar, 2) == "$$") {
      out.text += '$';
      at = dollar + 2;
    } else if (text.substr(dollar, 2) == "${") {
      const auto close = text.find('}', dollar + 2);
      if (close == std::string_view::npos) {
        out.errors.push_back("unterminated '${' (missing '}')");
        break;
      }
      expand_reference(text.substr(dollar + 2, close - dollar - 2), out);
      at = close + 1;
    } else {
      out.text += '$';
      at = dollar + 1;
    }
  }
  return out;
}

}  // namespace apigw::config
