// Text forms of config values for logs, error messages and the `/config` view.
#include "apigw/config/config.h"

#include "apigw/config/loader.h"
#include "position_text.h"

namespace apigw::config {

std::string Endpoint::text() const {
  // A ':' in the host can only be an IPv6 literal, which needs brackets to keep the port apart.
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

const MigrationTarget* effective_target(const std::optional<MigrationTarget>& own,
                                        const std::optional<MigrationTarget>& fallback) {
  const std::optional<MigrationTarget>& chosen = own ? own : fallback;
  return chosen && !chosen->upstream.empty() ? &*chosen : nullptr;
}

std::string position_text(const Position& position) {
  std::string out = position.file;
  if (position.line > 0) {
    out += (out.empty() ? "" : ":") + std::to_string(position.line);
    if (position.column > 0) out += ":" + std::to_string(position.column);
  }
  return out;
}

std::string ConfigError::text() const {
  const std::string where = position_text(position);
  return where.empty() ? message : where + ": " + message;
}

}  // namespace apigw::config
