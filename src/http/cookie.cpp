// Cookie header values (see cookie.h).
#include "apigw/http/cookie.h"

#include "apigw/http/text.h"

namespace apigw::http {

std::optional<std::string_view> cookie_value(std::string_view cookie_header, std::string_view name) {
  while (!cookie_header.empty()) {
    const std::size_t end = cookie_header.find(';');
    const std::string_view pair = trim_ows(cookie_header.substr(0, end));
    cookie_header = end == std::string_view::npos ? std::string_view() : cookie_header.substr(end + 1);
    const std::size_t equals = pair.find('=');
    if (equals == std::string_view::npos || trim_ows(pair.substr(0, equals)) != name) continue;
    std::string_view value = trim_ows(pair.substr(equals + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    return value;
  }
  return std::nullopt;
}

}  // namespace apigw::http
