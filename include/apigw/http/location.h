// Where a URI reference in a response (Location, Content-Location) points, relative to the request it answers
// (RFC 3986 §5 resolution). Pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace apigw::http {

struct SameHostTarget {
  std::string path;   // still percent-encoded, dot segments removed
  std::string query;  // without '?'; empty when there is none
};

// The path and query `reference` points to when it names the request's own host: a relative reference, or an
// absolute http or https URI whose authority equals `host` (case-insensitively, a default port and a trailing dot
// aside). nullopt for another host or scheme, or a reference that is not a URI reference.
std::optional<SameHostTarget> same_host_target(std::string_view reference, std::string_view host,
                                               std::string_view path, std::string_view query);

}  // namespace apigw::http
