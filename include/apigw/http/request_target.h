// Request-target handling: origin-form and absolute-form, dot-segment resolution, and the strip_prefix
// rewrite. Pure; the matched path is what the upstream receives, so `/public/../admin` cannot reach `/admin`
// through a `/public/*` route.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace apigw::http {

struct RequestTarget {
  std::string_view path;   // what routing matches: normalised, starts with '/'
  std::string_view query;  // without the '?', may be empty
  bool has_query = false;
  std::string_view authority;  // from an absolute-form target, else empty
};

// Splits and normalises `raw`. `storage` is used only when the path must change (dot segments), so the common
// case does not allocate. Returns an error reason, or an empty view on success. A target with a byte outside
// ASCII is refused (RFC 9112 §3.2), as are fragments and paths that climb above the root.
std::string_view parse_request_target(std::string_view raw, RequestTarget& out, std::string& storage);

// `text` with each %XX replaced by its byte (and '+' by a space when `plus_is_space`, as in a query); nullopt
// when a '%' is not followed by two hex digits.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);

// Removes `prefix` (starts with '/', no trailing '/') from `path` when it stands at a segment boundary:
// "/v1/users" → "/users", "/v1" → "/", "/v10" unchanged.
std::string_view strip_path_prefix(std::string_view path, std::string_view prefix);

}  // namespace apigw::http
