// Request patterns (see request_pattern.h). Matching is the classic glob walk over segments: on a mismatch it
// resumes after the last `**` seen, one path segment further, so it takes at most path segments × pattern segments
// steps and never allocates.
#include "apigw/routing/request_pattern.h"

#include <algorithm>

namespace apigw::routing {
namespace {

constexpr std::size_t kNone = static_cast<std::size_t>(-1);

bool upper_case_token(std::string_view method) {
  if (method.empty() || method.front() < 'A' || method.front() > 'Z') return false;
  return std::all_of(method.begin(), method.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

// The path without its leading '/' and one trailing '/': "/a/b/" → "a/b", "/" → "" (no segment at all).
std::string_view path_body(std::string_view path) {
  path.remove_prefix(1);
  if (!path.empty() && path.back() == '/') path.remove_suffix(1);
  return path;
}

// Where the segment starting at `at` ends (the '/' after it, or the end of `body`).
std::size_t segment_end(std::string_view body, std::size_t at) { return std::min(body.find('/', at), body.size()); }

// Why a path pattern is not one, or empty; fills `segments`.
std::string path_error(std::string_view path, std::vector<std::string>& segments) {
  if (path.empty() || path.front() != '/') return "the path must start with '/'";
  for (const char c : path) {
    if (c == ' ') return "text after the path (only one space, between method and path, is allowed)";
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return "a control character in the path";
    if (c == '?') return "a '?' in the path (patterns match the path alone, without the query)";
  }
  if (path == "/") return {};
  const std::string_view body = path_body(path);
  for (std::size_t at = 0; at <= body.size();) {
    const std::size_t end = segment_end(body, at);
    const std::string_view segment = body.substr(at, end - at);
    if (segment.empty()) return "an empty segment ('//')";
    if (segment.find('*') != std::string_view::npos && segment != "*" && segment != "**") {
      return "a segment mixing '*' with other characters (a segment is literal, '*' or '**')";
    }
    segments.emplace_back(segment);
    at = end + 1;
  }
  return {};
}

}  // namespace

std::optional<RequestPattern> RequestPattern::parse(std::string_view text, std::string& why) {
  if (text.empty()) {
    why = "empty pattern";
    return std::nullopt;
  }
  RequestPattern pattern;
  pattern.text_ = std::string(text);
  std::string_view path = text;
  if (text.front() != '/') {
    const std::size_t space = text.find(' ');
    if (space == std::string_view::npos) {
      why = upper_case_token(text) ? "a method without a path" : "the path must start with '/'";
      return std::nullopt;
    }
    const std::string_view method = text.substr(0, space);
    if (!upper_case_token(method)) {
      why = "the method must be an upper-case token (\"POST\")";
      return std::nullopt;
    }
    path = text.substr(space + 1);
    if (path.starts_with(' ')) {
      why = "more than one space between method and path";
      return std::nullopt;
    }
    pattern.method_ = std::string(method);
  }
  why = path_error(path, pattern.segments_);
  if (!why.empty()) return std::nullopt;
  return pattern;
}

bool RequestPattern::matches(std::string_view method, std::string_view path) const {
  if (!method_.empty() && method != method_) return false;
  if (path.empty() || path.front() != '/') return false;
  const std::string_view body = path_body(path);
  // `at` is where the next path segment starts; `done` is past the last one (a body "" has no segment at all).
  const std::size_t done = body.empty() ? 0 : body.size() + 1;
  std::size_t at = 0;
  std::size_t p = 0;
  std::size_t star = kNone;  // the last `**` seen, and where the path stood when it was seen
  std::size_t star_at = 0;
  while (at < done) {
    if (p < segments_.size() && segments_[p] == "**") {
      star = p++;
      star_at = at;
      continue;
    }
    const std::size_t end = segment_end(body, at);
    if (p < segments_.size() && (segments_[p] == "*" || segments_[p] == body.substr(at, end - at))) {
      ++p;
      at = end + 1;
      continue;
    }
    if (star == kNone) return false;
    // Let the last `**` take one more segment and try again from there.
    p = star + 1;
    star_at = segment_end(body, star_at) + 1;
    at = star_at;
  }
  while (p < segments_.size() && segments_[p] == "**") ++p;
  return p == segments_.size();
}

}  // namespace apigw::routing
