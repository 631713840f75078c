// Query strings (the part of a request target after '?') read as '&'-separated `name[=value]` parameters, still
// percent-encoded unless a function says otherwise: lookup, and redaction for logs. Pure.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace apigw::http {

// One parameter split at its first '=': "a=1" is {a, 1, true}, "a=" {a, "", true}, "a" {a, "", false}.
struct QueryParameter {
  std::string_view name;   // as written (not decoded)
  std::string_view value;  // as written; empty without '='
  bool has_value = false;  // whether the parameter has an '='
};

QueryParameter split_query_parameter(std::string_view parameter);

// Calls `visit(parameter)` for each '&'-separated parameter of `query`, in order and as written, empty ones
// included: "" holds one empty parameter, "a&&b" three, "a&" two.
template <typename Visit>
void for_each_query_parameter(std::string_view query, Visit&& visit) {
  for (;;) {
    const std::size_t amp = query.find('&');
    visit(query.substr(0, amp));
    if (amp == std::string_view::npos) return;
    query.remove_prefix(amp + 1);
  }
}

// The first parameter called `name` (non-empty; compared as written, so "%61" is not "a"), or nullopt.
std::optional<QueryParameter> find_query_parameter(std::string_view query, std::string_view name);

// The value of the first parameter called `name`, percent-decoded with '+' as a space ("" for a bare "name");
// nullopt when it is absent or its percent-encoding is malformed.
std::optional<std::string> query_value(std::string_view query, std::string_view name);

// `target` (a request target) with the value of every query parameter `name` that has an '=' replaced by
// "REDACTED", for logs; every other byte as it was, so a target without such a parameter comes back unchanged.
std::string redact_query_parameter(std::string_view target, std::string_view name);

}  // namespace apigw::http
