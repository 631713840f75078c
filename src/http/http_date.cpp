// HTTP-date (see http_date.h). A small hand-written reader: strptime depends on the locale and accepts more than
// the grammar, and the three formats are fixed strings.
#include "apigw/http/http_date.h"

#include <array>
#include <chrono>
#include <cstdio>

#include "apigw/http/text.h"

namespace apigw::http {
namespace {

constexpr std::array<std::string_view, 7> kShortDays{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
constexpr std::array<std::string_view, 7> kLongDays{"Monday", "Tuesday",  "Wednesday", "Thursday",
                                                     "Friday", "Saturday", "Sunday"};
constexpr std::array<std::string_view, 12> kMonths{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// Reads the date's pieces left to right; any mismatch leaves it failed.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) {}

  bool literal(std::string_view expected) {
    if (!text_.starts_with(expected)) return false;
    text_.remove_prefix(expected.size());
    return true;
  }
  // Exactly `digits` digits (asctime's day: one space then one digit is allowed by the caller).
  std::optional<int> number(std::size_t digits) {
    if (text_.size() < digits) return std::nullopt;
    int value = 0;
    for (std::size_t i = 0; i < digits; ++i) {
      const char c = text_[i];
      if (c < '0' || c > '9') return std::nullopt;
      value = value * 10 + (c - '0');
    }
    text_.remove_prefix(digits);
    return value;
  }
  template <std::size_t N>
  std::optional<int> name(const std::array<std::string_view, N>& names) {
    for (std::size_t i = 0; i < N; ++i) {
      if (literal(names[i])) return static_cast<int>(i);
    }
    return std::nullopt;
  }
  bool done() const { return text_.empty(); }
  bool at(char c) const { return !text_.empty() && text_.front() == c; }

 private:
  std::string_view text_;
};

struct Parts {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
};

// "HH:MM:SS"
bool time_of_day(Scanner& scan, Parts& parts) {
  const auto hour = scan.number(2);
  if (!hour || !scan.literal(":")) return false;
  const auto minute = scan.number(2);
  if (!minute || !scan.literal(":")) return false;
  const auto second = scan.number(2);
  if (!second) return false;
  parts.hour = *hour;
  parts.minute = *minute;
  parts.second = *second;
  return true;
}

std::optional<std::int64_t> to_unix(const Parts& parts) {
  using namespace std::chrono;
  if (parts.year < 1900 || parts.hour > 23 || parts.minute > 59 || parts.second > 59) return std::nullopt;
  const year_month_day date{year{parts.year}, month{static_cast<unsigned>(parts.month + 1)},
                            day{static_cast<unsigned>(parts.day)}};
  if (!date.ok()) return std::nullopt;
  const std::int64_t days = sys_days{date}.time_since_epoch().count();
  return days * 86400 + parts.hour * 3600 + parts.minute * 60 + parts.second;
}

std::optional<std::int64_t> imf_fixdate(std::string_view text) {
  Scanner scan(text);
  Parts parts;
  if (!scan.name(kShortDays) || !scan.literal(", ")) return std::nullopt;
  const auto day = scan.number(2);
  if (!day || !scan.literal(" ")) return std::nullopt;
  const auto month = scan.name(kMonths);
  if (!month || !scan.literal(" ")) return std::nullopt;
  const auto year = scan.number(4);
  if (!year || !scan.literal(" ") || !time_of_day(scan, parts) || !scan.literal(" GMT") || !scan.done()) {
    return std::nullopt;
  }
  parts.day = *day;
  parts.month = *month;
  parts.year = *year;
  return to_unix(parts);
}

std::optional<std::int64_t> rfc850_date(std::string_view text, std::int64_t now) {
  Scanner scan(text);
  Parts parts;
  if (!scan.name(kLongDays) || !scan.literal(", ")) return std::nullopt;
  const auto day = scan.number(2);
  if (!day || !scan.literal("-")) return std::nullopt;
  const auto month = scan.name(kMonths);
  if (!month || !scan.literal("-")) return std::nullopt;
  const auto year = scan.number(2);
  if (!year || !scan.literal(" ") || !time_of_day(scan, parts) || !scan.literal(" GMT") || !scan.done()) {
    return std::nullopt;
  }
  // RFC 9110 §5.6.7: a two-digit year that appears to be more than 50 years in the future is in the past.
  const int this_year = static_cast<int>(
      std::chrono::year_month_day{std::chrono::sys_days{std::chrono::days{now / 86400}}}.year());
  int full_year = this_year - this_year % 100 + *year;
  if (full_year > this_year + 50) full_year -= 100;
  if (full_year <= this_year - 50) full_year += 100;  // near a century's end: "00" read in 1999 is 2000
  parts.day = *day;
  parts.month = *month;
  parts.year = full_year;
  return to_unix(parts);
}

std::optional<std::int64_t> asctime_date(std::string_view text) {
  Scanner scan(text);
  Parts parts;
  if (!scan.name(kShortDays) || !scan.literal(" ")) return std::nullopt;
  const auto month = scan.name(kMonths);
  if (!month || !scan.literal(" ")) return std::nullopt;
  std::optional<int> day;
  if (scan.at(' ')) {
    scan.literal(" ");
    day = scan.number(1);
  } else {
    day = scan.number(2);
  }
  if (!day || !scan.literal(" ") || !time_of_day(scan, parts) || !scan.literal(" ")) return std::nullopt;
  const auto year = scan.number(4);
  if (!year || !scan.done()) return std::nullopt;
  parts.day = *day;
  parts.month = *month;
  parts.year = *year;
  return to_unix(parts);
}

}  // namespace

std::optional<std::int64_t> parse_http_date(std::string_view text, std::int64_t now) {
  text = trim_ows(text);
  if (text.size() < 24 || text.size() > 40) return std::nullopt;
  if (text[3] == ',') return imf_fixdate(text);
  if (text[3] == ' ') return asctime_date(text);
  return rfc850_date(text, now);
}

std::string format_http_date(std::int64_t unix_time) {
  using namespace std::chrono;
  const sys_days days{std::chrono::days{unix_time >= 0 ? unix_time / 86400 : (unix_time - 86399) / 86400}};
  const std::int64_t second_of_day = unix_time - days.time_since_epoch().count() * std::int64_t{86400};
  const year_month_day date{days};
  const weekday week_day{days};
  // weekday: Sunday is 0; kShortDays starts on Monday.
  const std::string_view day_name = kShortDays[(week_day.c_encoding() + 6) % 7];
  char out[40];
  const int length = std::snprintf(out, sizeof out, "%.*s, %02u %.*s %04d %02d:%02d:%02d GMT",
                                   static_cast<int>(day_name.size()), day_name.data(),
                                   static_cast<unsigned>(date.day()),
                                   3, kMonths[static_cast<unsigned>(date.month()) - 1].data(),
                                   static_cast<int>(date.year()), static_cast<int>(second_of_day / 3600),
                                   static_cast<int>(second_of_day / 60 % 60), static_cast<int>(second_of_day % 60));
  return std::string(out, length > 0 ? static_cast<std::size_t>(length) : 0);
}

}  // namespace apigw::http
