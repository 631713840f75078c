// Request patterns (pure), as `migration.shadow_ignore` lists them: requests that must never be copied to the other
// side (payments, notifications). "POST /payments/**" or "/notifications/**": an optional method, then a path
// pattern whose segments are literal text, `*` (exactly one segment) or `**` (any number of segments, none
// included).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace apigw::routing {

class RequestPattern {
 public:
  // nullopt (with `why`) for: an empty pattern; a method that is not an upper-case token (A-Z first, then A-Z,
  // 0-9, '-' or '_'); a method without a path; more than one space between method and path, or anything after the
  // path; a path that does not start with '/'; a path holding a control character or a '?' (the query is never
  // matched); an empty segment ("a//b"); a segment mixing '*' with other characters ("a*", "***"). A trailing '/' is
  // ignored ("/a/" is "/a"); "/" alone matches only "/"; `**` may stand anywhere, more than once.
  static std::optional<RequestPattern> parse(std::string_view text, std::string& why);

  // Whether a request matches: the method (if the pattern has one) is equal, and the path (as received, before any
  // rewrite, without the query; a trailing '/' ignored) matches segment by segment, literal segments byte for byte
  // (still percent-encoded). A path not starting with '/' matches nothing. Takes at most (path segments) × (pattern
  // segments) steps, however many `**` the pattern holds.
  bool matches(std::string_view method, std::string_view path) const;

  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::string method_;                 // empty: any method
  std::vector<std::string> segments_;  // "**", "*" or literal
};

}  // namespace apigw::routing
