// Cookie request headers (RFC 6265 §4.2.1): one cookie's value by name. Pure.
#pragma once

#include <optional>
#include <string_view>

namespace apigw::http {

// The value of the first cookie called `name` in one Cookie header value ("a=1; session_token=xyz"), or nullopt.
// Pairs are separated by ';' with or without spaces; names compare exactly (case-sensitive); OWS around a name
// and its value is dropped, then one pair of surrounding double quotes; a pair without '=' is skipped. The view
// points into `cookie_header`.
std::optional<std::string_view> cookie_value(std::string_view cookie_header, std::string_view name);

}  // namespace apigw::http
