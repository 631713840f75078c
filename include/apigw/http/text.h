// HTTP's text vocabulary (RFC 9110 §5.6): ASCII case, optional whitespace, token characters, hex digits and
// comma-separated lists. Pure; works on bytes, never on the locale, and never allocates except lower_case.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace apigw::http {

// `c` in lower case when it is an ASCII capital letter, else `c` unchanged (other bytes, UTF-8 included).
constexpr char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// `text` with its ASCII capital letters in lower case, every other byte unchanged.
std::string lower_case(std::string_view text);

// Whether `a` and `b` have the same length and differ at most in the case of ASCII letters ("Vary", "vary").
constexpr bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

// OWS (RFC 9110 §5.6.3): a space or a horizontal tab; CR, LF and other whitespace are not.
constexpr bool is_ows(char c) { return c == ' ' || c == '\t'; }

// `text` without its leading and trailing OWS; all-OWS or empty text gives an empty view.
constexpr std::string_view trim_ows(std::string_view text) {
  while (!text.empty() && is_ows(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_ows(text.back())) text.remove_suffix(1);
  return text;
}

// tchar (RFC 9110 §5.6.2): an ASCII letter or digit, or one of !#$%&'*+-.^_`|~ (never NUL).
constexpr bool is_tchar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// A token (RFC 9110 §5.6.2): one or more tchars, as methods and header names are.
constexpr bool is_token(std::string_view text) {
  if (text.empty()) return false;
  for (const char c : text) {
    if (!is_tchar(c)) return false;
  }
  return true;
}

// The value of a hexadecimal digit in either case (as in a percent-encoding), or -1 for any other byte.
constexpr int hex_digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Calls `visit(element)` for each element of a comma-separated list (RFC 9110 §5.6.1, as in Vary, Pragma or
// Connection), in order, each without its OWS. Empty elements (", a,, b,") are skipped, as recipients must.
// Quoted strings are not understood: a comma splits wherever it stands.
template <typename Visit>
void for_each_list_element(std::string_view list, Visit&& visit) {
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    const std::string_view element = trim_ows(list.substr(0, comma));
    if (!element.empty()) visit(element);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

}  // namespace apigw::http
