// The grammar of `migration.audit.sink` (pure), shared by the config loader, which checks it, and the audit sink,
// which opens what it names.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "apigw/config/config.h"

namespace apigw::config {

struct AuditSinkTarget {
  enum class Kind { kFile, kHttp };
  Kind kind = Kind::kFile;
  std::string file;        // kFile: the absolute path
  bool tls = false;        // kHttp: https://
  Endpoint endpoint;       // kHttp: host and port
  std::string authority;   // kHttp: host:port as written, for the Host header
  std::string path;        // kHttp: the request path, starting with '/'
};

// "file:/absolute/path" (no trailing '/', no control characters), "http://host:port/path" or
// "https://host:port/path" (host:port as upstream endpoints take them, then a path without spaces or control
// characters); nullopt with `why` (the reason alone, without the text) otherwise. Only the form is checked, not the file or the server.
std::optional<AuditSinkTarget> parse_audit_sink_target(std::string_view text, std::string& why);

}  // namespace apigw::config
