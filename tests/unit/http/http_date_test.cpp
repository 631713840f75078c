// HTTP-date: the three formats a recipient accepts (IMF-fixdate, rfc850-date, asctime), what is refused, the
// two-digit year of rfc850-date, and the IMF-fixdate written back.
#include "apigw/http/http_date.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace apigw::http {
namespace {

constexpr std::int64_t kNov1994 = 784111777;    // Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's example
constexpr std::int64_t kJune2024 = 1717200000;  // Sat, 01 Jun 2024 00:00:00 GMT: "now" unless a test says

std::optional<std::int64_t> parse(std::string_view text, std::int64_t now = kJune2024) {
  return parse_http_date(text, now);
}

TEST(HttpDate, ReadsTheThreeFormats) {
  EXPECT_EQ(parse("Sun, 06 Nov 1994 08:49:37 GMT"), kNov1994);
  EXPECT_EQ(parse("Sunday, 06-Nov-94 08:49:37 GMT"), kNov1994);
  EXPECT_EQ(parse("Sun Nov  6 08:49:37 1994"), kNov1994);
  EXPECT_EQ(parse("Sun Nov 06 08:49:37 1994"), kNov1994) << "asctime's day as two digits";
  EXPECT_EQ(parse("Thu Nov 16 08:49:37 1994"), kNov1994 + 10 * 86400);
  EXPECT_EQ(parse("Wednesday, 16-Nov-94 08:49:37 GMT"), kNov1994 + 10 * 86400);
  EXPECT_EQ(parse("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
  EXPECT_EQ(parse("Fri, 31 Dec 9999 23:59:59 GMT"), 253402300799);
  EXPECT_EQ(parse("Mon, 01 Jan 1900 00:00:00 GMT"), -2208988800) << "before 1970 is negative";
}

TEST(HttpDate, EveryMonthAndDayName) {
  const char* const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::int64_t first = 1704067200;  // Mon, 01 Jan 2024 00:00:00 GMT
  const int days_in[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  for (int m = 0; m < 12; ++m) {
    const std::string text = std::string("Mon, 01 ") + months[m] + " 2024 00:00:00 GMT";
    EXPECT_EQ(parse(text), first) << text;
    first += days_in[m] * 86400;
  }
  const char* const short_days[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  const char* const long_days[] = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
  for (int d = 0; d < 7; ++d) {
    EXPECT_EQ(parse(std::string(short_days[d]) + ", 06 Nov 1994 08:49:37 GMT"), kNov1994) << short_days[d];
    EXPECT_EQ(parse(std::string(long_days[d]) + ", 06-Nov-94 08:49:37 GMT"), kNov1994) << long_days[d];
    EXPECT_EQ(parse(std::string(short_days[d]) + " Nov  6 08:49:37 1994"), kNov1994) << short_days[d];
  }
}

TEST(HttpDate, TheDayOfTheWeekIsNotCheckedAgainstTheDate) {
  // 6 Nov 1994 was a Sunday.
  EXPECT_EQ(parse("Mon, 06 Nov 1994 08:49:37 GMT"), kNov1994);
  EXPECT_EQ(parse("Friday, 06-Nov-94 08:49:37 GMT"), kNov1994);
  EXPECT_EQ(parse("Tue Nov  6 08:49:37 1994"), kNov1994);
}

TEST(HttpDate, SurroundingWhitespaceIsIgnored) {
  EXPECT_EQ(parse("  Sun, 06 Nov 1994 08:49:37 GMT"), kNov1994);
  EXPECT_EQ(parse("Sun, 06 Nov 1994 08:49:37 GMT \t"), kNov1994);
  EXPECT_EQ(parse("\tSun Nov  6 08:49:37 1994 "), kNov1994);
  EXPECT_EQ(parse(" Sunday, 06-Nov-94 08:49:37 GMT "), kNov1994);
}

TEST(HttpDate, NamesAreMatchedCaseSensitively) {
  EXPECT_EQ(parse("sun, 06 Nov 1994 08:49:37 GMT"), std::nullopt);
  EXPECT_EQ(parse("SUN, 06 Nov 1994 08:49:37 GMT"), std::nullopt);
  EXPECT_EQ(parse("Sun, 06 nov 1994 08:49:37 GMT"), std::nullopt);
  EXPECT_EQ(parse("Sun, 06 NOV 1994 08:49:37 GMT"), std::nullopt);
  EXPECT_EQ(parse("Sun, 06 Nov 1994 08:49:37 gmt"), std::nullopt);
  EXPECT_EQ(parse("sunday, 06-Nov-94 08:49:37 GMT"), std::nullopt);
  EXPECT_EQ(parse("Sun nov  6 08:49:37 1994"), std::nullopt);
}

TEST(HttpDate, RefusesWhatIsNoneOfTheFormats) {
  for (const std::string_view text : {
           "", "0", "-1", "1700000000", "now", "   ",
           "Xyz, 06 Nov 1994 08:49:37 GMT",       // no such day
           "Sun, 06 Xyz 1994 08:49:37 GMT",       // no such month
           "Sun, 6 Nov 1994 08:49:37 GMT",        // IMF-fixdate's day has two digits
           "Sun, 06 Nov 94 08:49:37 GMT",         // and its year four
           "Sun, 06 Nov 1994 8:49:37 GMT",        // and its hour two
           "Sun, 06 Nov 1994 08:49:37 UTC",       // GMT only
           "Sun, 06 Nov 1994 08:49:37 +0000",     // no numeric zone
           "Sun, 06 Nov 1994 08:49:37",           // no zone at all
           "Sun, 06 Nov 1994 08:49:37 GMTX",      // trailing bytes
           "Sun, 06 Nov 1994 08:49:37 GMT x",     //
           "Sun,  06 Nov 1994 08:49:37 GMT",      // two spaces
           "Sun 06 Nov 1994 08:49:37 GMT",        // no comma
           "Sun, 06-Nov-1994 08:49:37 GMT",       // IMF-fixdate with dashes
           "Sun, 06-Nov-94 08:49:37 GMT",         // rfc850-date with a short day name
           "Sunday, 06 Nov 1994 08:49:37 GMT",    // IMF-fixdate with a long day name
           "Sunday, 06-Nov-1994 08:49:37 GMT",    // rfc850-date with four digits
           "Sunday, 06-Nov-94 08:49:37",          // no zone
           "Sun Nov 6 08:49:37 1994",             // asctime's one-digit day needs its extra space
           "Sun Nov  6 08:49:37 94",              // asctime's year has four digits
           "Sun Nov  6 08:49:37 1994 GMT",        // and nothing after it
           "Sun Nov  6 08:49 1994",               //
           "Sun, 06 Nov 1994 08:49:3a GMT",       // not a digit
           "Sun, 06 Nov 1994 08-49-37 GMT",       //
           "1994-11-06T08:49:37Z",                // ISO 8601 is not an HTTP-date
           "Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT",
       }) {
    EXPECT_EQ(parse(text), std::nullopt) << '"' << text << '"';
  }
}

TEST(HttpDate, RefusesDatesAndTimesThatDoNotExist) {
  EXPECT_EQ(parse("Fri, 30 Feb 2024 00:00:00 GMT"), std::nullopt);
  EXPECT_EQ(parse("Sat, 31 Apr 2024 00:00:00 GMT"), std::nullopt);
  EXPECT_EQ(parse("Sat, 32 Jan 2024 00:00:00 GMT"), std::nullopt);
  EXPECT_EQ(parse("Sat, 00 Jan 2024 00:00:00 GMT"), std::nullopt);
  EXPECT_EQ(parse("Sat, 01 Jan 2024 24:00:00 GMT"), std::nullopt);
  EXPECT_EQ(parse("Sat, 01 Jan 2024 23:60:00 GMT"), std::nullopt);
  EXPECT_EQ(parse("Sat, 31 Dec 2016 23:59:60 GMT"), std::nullopt) << "no leap second";
  EXPECT_EQ(parse("Sat, 01 Jan 2024 99:99:99 GMT"), std::nullopt);
  EXPECT_EQ(parse("Sat, 31 Dec 1899 23:59:59 GMT"), std::nullopt) << "before 1900";
  EXPECT_EQ(parse("Sat, 01 Jan 0000 00:00:00 GMT"), std::nullopt);
  EXPECT_EQ(parse("Sat Jan 32 00:00:00 2024"), std::nullopt);
  EXPECT_EQ(parse("Sat Jan  0 00:00:00 2024"), std::nullopt);
  EXPECT_EQ(parse("Saturday, 30-Feb-24 00:00:00 GMT"), std::nullopt);
  EXPECT_EQ(parse("Saturday, 01-Jan-24 00:00:60 GMT"), std::nullopt);
  EXPECT_EQ(parse("Sat, 01 Jan 2024 23:59:59 GMT"), 1704153599) << "the largest values are fine";
}

TEST(HttpDate, LeapYears) {
  EXPECT_EQ(parse("Thu, 29 Feb 1996 00:00:00 GMT"), 825552000);
  EXPECT_EQ(parse("Tue, 29 Feb 2000 12:00:00 GMT"), 951825600) << "divisible by 400";
  EXPECT_EQ(parse("Thu, 29 Feb 2024 23:59:59 GMT"), 1709251199);
  EXPECT_EQ(parse("Thu Feb 29 23:59:59 2024"), 1709251199);
  EXPECT_EQ(parse("Thursday, 29-Feb-24 23:59:59 GMT"), 1709251199);
  EXPECT_EQ(parse("Thu, 29 Feb 1900 00:00:00 GMT"), std::nullopt) << "divisible by 100, not by 400";
  EXPECT_EQ(parse("Tue, 29 Feb 2100 00:00:00 GMT"), std::nullopt);
  EXPECT_EQ(parse("Wed, 29 Feb 2023 00:00:00 GMT"), std::nullopt);
  EXPECT_EQ(parse("Fri, 01 Mar 2024 00:00:00 GMT"), 1709251200) << "the day after 29 Feb";
  EXPECT_EQ(parse("Sun, 31 Dec 2023 23:59:59 GMT"), 1704067199);
}

TEST(HttpDate, ATwoDigitYearMoreThanFiftyYearsAheadIsInThePast) {
  // In 2024: 74 is 2074 (50 years ahead), 75 would be 51 years ahead and is 1975.
  EXPECT_EQ(parse("Monday, 01-Jan-74 00:00:00 GMT"), 3281990400);
  EXPECT_EQ(parse("Wednesday, 01-Jan-75 00:00:00 GMT"), 157766400);
  EXPECT_EQ(parse("Saturday, 01-Jun-24 00:00:00 GMT"), kJune2024);
  EXPECT_EQ(parse("Saturday, 01-Jan-00 00:00:00 GMT"), 946684800);
  EXPECT_EQ(parse("Sunday, 06-Nov-94 08:49:37 GMT"), kNov1994);
  EXPECT_EQ(parse("Friday, 31-Dec-99 23:59:59 GMT"), 946684799);
  // The same text read in 2030 (now placing the window at 1981-2080), and in 1994.
  constexpr std::int64_t kJan2030 = 1893456000;
  EXPECT_EQ(parse("Friday, 01-Mar-80 00:00:00 GMT", kJan2030), 3476476800);
  EXPECT_EQ(parse("Sunday, 01-Mar-81 00:00:00 GMT", kJan2030), 352252800);
  EXPECT_EQ(parse("Wednesday, 01-Jan-75 00:00:00 GMT", kNov1994), 157766400);
  EXPECT_EQ(parse("Sunday, 06-Nov-94 08:49:37 GMT", kNov1994), kNov1994);
  // Near a century's end the window reaches into the next one: in June 1999, "00" is 2000 and "49" is 2049.
  constexpr std::int64_t kJune1999 = 928195200;
  EXPECT_EQ(parse("Saturday, 01-Jan-00 00:00:00 GMT", kJune1999), 946684800);
  EXPECT_EQ(parse("Friday, 01-Jan-49 00:00:00 GMT", kJune1999), 2493072000);
  EXPECT_EQ(parse("Saturday, 01-Jan-50 00:00:00 GMT", kJune1999), -631152000);
  // A four-digit year in the other formats is never moved.
  EXPECT_EQ(parse("Wed, 01 Jan 2099 00:00:00 GMT"), 4070908800);
  EXPECT_EQ(parse("Thu Jan  1 00:00:00 2099"), 4070908800);
}

TEST(HttpDate, WritesImfFixdate) {
  EXPECT_EQ(format_http_date(kNov1994), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(format_http_date(-1), "Wed, 31 Dec 1969 23:59:59 GMT");
  EXPECT_EQ(format_http_date(-86400), "Wed, 31 Dec 1969 00:00:00 GMT");
  EXPECT_EQ(format_http_date(-2208988800), "Mon, 01 Jan 1900 00:00:00 GMT");
  EXPECT_EQ(format_http_date(951825600), "Tue, 29 Feb 2000 12:00:00 GMT");
  EXPECT_EQ(format_http_date(kJune2024), "Sat, 01 Jun 2024 00:00:00 GMT");
  EXPECT_EQ(format_http_date(253402300799), "Fri, 31 Dec 9999 23:59:59 GMT");
  EXPECT_EQ(format_http_date(1704067199), "Sun, 31 Dec 2023 23:59:59 GMT");
  EXPECT_EQ(format_http_date(1704067200), "Mon, 01 Jan 2024 00:00:00 GMT");
}

TEST(HttpDate, WhatIsWrittenReadsBackAsTheSameSecond) {
  std::mt19937_64 random(20240601);
  std::uniform_int_distribution<std::int64_t> any_time(-2208988800, 253402300799);
  std::vector<std::int64_t> times{0, -1, 1, 86399, 86400, -86399, -86401, kNov1994, kJune2024, 951868799,
                                  -2208988800, 253402300799};
  for (int i = 0; i < 5000; ++i) times.push_back(any_time(random));
  for (const std::int64_t time : times) {
    const std::string text = format_http_date(time);
    ASSERT_EQ(text.size(), 29u) << time;
    EXPECT_EQ(parse_http_date(text, time), time) << text;
  }
}

}  // namespace
}  // namespace apigw::http
