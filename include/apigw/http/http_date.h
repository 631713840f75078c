// HTTP-date (RFC 9110 §5.6.7): reading the three formats a recipient must accept, and writing the one a sender
// must use. Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace apigw::http {

// The Unix time of an HTTP-date, or nullopt when `text` is none of:
//   IMF-fixdate  "Sun, 06 Nov 1994 08:49:37 GMT"
//   rfc850-date  "Sunday, 06-Nov-94 08:49:37 GMT"   (a two-digit year more than 50 years ahead is in the past)
//   asctime      "Sun Nov  6 08:49:37 1994"
// Surrounding whitespace is ignored; names are matched case-sensitively, as the grammar writes them; the day of
// the week is read but not checked against the date; a date that does not exist (Feb 30), a second of 60 or more
// and a year before 1900 are refused. `now` (Unix seconds) places rfc850's two-digit year.
std::optional<std::int64_t> parse_http_date(std::string_view text, std::int64_t now);

// `unix_time` as an IMF-fixdate.
std::string format_http_date(std::int64_t unix_time);

}  // namespace apigw::http
