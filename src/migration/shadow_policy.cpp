// The shadow's ignore list (see shadow_policy.h).
#include "apigw/migration/shadow_policy.h"

#include <optional>

#include "apigw/http/text.h"

namespace apigw::migration {
namespace {

bool unreserved(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

// The unreserved character `path[at..at+2]` escapes, if it is one.
std::optional<char> escaped_unreserved(std::string_view path, std::size_t at) {
  if (path[at] != '%' || at + 2 >= path.size()) return std::nullopt;
  const int high = http::hex_digit_value(path[at + 1]);
  const int low = http::hex_digit_value(path[at + 2]);
  if (high < 0 || low < 0) return std::nullopt;
  const char c = static_cast<char>((high << 4) | low);
  if (!unreserved(c)) return std::nullopt;
  return c;
}

bool already_comparable(std::string_view path) {
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '/' && i + 1 < path.size() && path[i + 1] == '/') return false;
    if (escaped_unreserved(path, i)) return false;
  }
  return true;
}

}  // namespace

std::string_view comparable_path(std::string_view path, std::string& storage) {
  if (already_comparable(path)) return path;
  storage.clear();
  storage.reserve(path.size());
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (const std::optional<char> c = escaped_unreserved(path, i)) {
      storage.push_back(*c);
      i += 2;
    } else if (path[i] != '/' || storage.empty() || storage.back() != '/') {
      storage.push_back(path[i]);
    }
  }
  return storage;
}

bool shadow_ignored(std::span<const routing::RequestPattern> ignore, std::string_view method,
                    std::string_view path) {
  if (ignore.empty()) return false;
  std::string storage;
  const std::string_view comparable = comparable_path(path, storage);
  for (const routing::RequestPattern& pattern : ignore) {
    if (pattern.matches(method, comparable)) return true;
  }
  return false;
}

}  // namespace apigw::migration
