// Request-target parsing and normalisation (see request_target.h).
#include "apigw/http/request_target.h"

#include <algorithm>
#include <vector>

#include "apigw/http/text.h"

namespace apigw::http {
namespace {

bool is_dot(std::string_view segment) { return segment == "." || segment == "%2e" || segment == "%2E"; }

bool is_dot_dot(std::string_view segment) {
  if (segment.size() < 2 || segment.size() > 6) return false;
  const std::string lowered = lower_case(segment);
  return lowered == ".." || lowered == "%2e." || lowered == ".%2e" || lowered == "%2e%2e";
}

bool needs_normalising(std::string_view path) {
  // Only a segment that starts with '.' or "%2e" can be a dot segment.
  for (std::size_t i = 0; i + 1 < path.size(); ++i) {
    if (path[i] != '/') continue;
    const char c = path[i + 1];
    if (c == '.' || c == '%') return true;
  }
  return false;
}

// Resolves "." and ".." segments (RFC 3986 §5.2.4); false when ".." would climb above the root.
bool remove_dot_segments(std::string_view path, std::string& out) {
  std::vector<std::string_view> segments;
  std::size_t start = 1;
  bool trailing_slash = false;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view segment = path.substr(start, end - start);
    const bool last = end == path.size();
    if (is_dot(segment)) {
      trailing_slash = last;
    } else if (is_dot_dot(segment)) {
      if (segments.empty()) return false;
      segments.pop_back();
      trailing_slash = last;
    } else {
      segments.push_back(segment);
      trailing_slash = false;
    }
    start = end + 1;
  }
  out.clear();
  for (std::string_view segment : segments) {
    out.push_back('/');
    out.append(segment);
  }
  if (out.empty() || trailing_slash) out.push_back('/');
  return true;
}

}  // namespace

std::string_view parse_request_target(std::string_view raw, RequestTarget& out, std::string& storage) {
  out = {};
  if (raw.empty()) return "empty request target";
  // RFC 9112 §3.2: a target is ASCII; raw UTF-8 or Latin-1 bytes would reach each upstream as it guesses.
  if (std::any_of(raw.begin(), raw.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; })) {
    return "request target has bytes outside ASCII (percent-encode them)";
  }
  std::string_view rest = raw;
  if (raw.front() != '/') {
    // Absolute-form, which a server must accept (RFC 9112 §3.2.2): keep the authority, route on the path.
    constexpr std::string_view kScheme = "http://";
    if (raw.size() <= kScheme.size() || !iequals(raw.substr(0, kScheme.size()), kScheme)) {
      return "request target must be a path or an absolute http URI";
    }
    rest = raw.substr(kScheme.size());
    const std::size_t slash = rest.find_first_of("/?");
    out.authority = rest.substr(0, slash);
    if (out.authority.empty()) return "absolute URI without a host";
    rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
    if (rest.empty() || rest.front() == '?') return "absolute URI without a path";
  }
  const std::size_t fragment = rest.find('#');
  if (fragment != std::string_view::npos) return "fragment in request target";
  const std::size_t question = rest.find('?');
  std::string_view path = rest.substr(0, question);
  if (question != std::string_view::npos) {
    out.has_query = true;
    out.query = rest.substr(question + 1);
  }
  if (needs_normalising(path)) {
    if (!remove_dot_segments(path, storage)) return "path climbs above the root";
    path = storage;
  }
  out.path = path;
  return {};
}

std::string_view strip_path_prefix(std::string_view path, std::string_view prefix) {
  if (prefix.empty() || path.size() < prefix.size() || path.substr(0, prefix.size()) != prefix) return path;
  if (path.size() == prefix.size()) return "/";
  if (path[prefix.size()] != '/') return path;
  return path.substr(prefix.size());
}

std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+' && plus_is_space) {
      out.push_back(' ');
    } else if (text[i] == '%') {
      const int high = i + 2 < text.size() ? hex_digit_value(text[i + 1]) : -1;
      const int low = i + 2 < text.size() ? hex_digit_value(text[i + 2]) : -1;
      if (high < 0 || low < 0) return std::nullopt;
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

}  // namespace apigw::http
