// HTTP's text vocabulary: ASCII case, OWS, token characters, hex digits and comma-separated lists.
#include "apigw/http/text.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace apigw::http {
namespace {

std::vector<std::string> list_elements(std::string_view list) {
  std::vector<std::string> out;
  for_each_list_element(list, [&](std::string_view element) { out.emplace_back(element); });
  return out;
}

TEST(HttpText, LowerCaseFoldsAsciiLettersOnly) {
  EXPECT_EQ(ascii_lower('A'), 'a');
  EXPECT_EQ(ascii_lower('Z'), 'z');
  EXPECT_EQ(ascii_lower('a'), 'a');
  EXPECT_EQ(ascii_lower('@'), '@');  // just below 'A'
  EXPECT_EQ(ascii_lower('['), '[');  // just above 'Z'
  EXPECT_EQ(lower_case("Accept-Language"), "accept-language");
  EXPECT_EQ(lower_case(""), "");
  EXPECT_EQ(lower_case("CAF\xc3\x89"), "caf\xc3\x89") << "UTF-8 bytes are left alone";
  EXPECT_EQ(lower_case(std::string_view("A\0B", 3)), std::string("a\0b", 3));
}

TEST(HttpText, IequalsIgnoresAsciiCaseOnly) {
  EXPECT_TRUE(iequals("Vary", "vARY"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_FALSE(iequals("vary", "var"));
  EXPECT_FALSE(iequals("var", "vary"));
  EXPECT_FALSE(iequals("", "a"));
  EXPECT_FALSE(iequals("@", "`")) << "'@' and '`' are 0x20 apart but not letters";
  EXPECT_FALSE(iequals("\xc3\x89", "\xc3\xa9")) << "no Unicode folding";
  static_assert(iequals("No-Store", "no-store"));
}

TEST(HttpText, TrimsSpacesAndTabsOnly) {
  EXPECT_EQ(trim_ows("  a b \t"), "a b");
  EXPECT_EQ(trim_ows("\ta"), "a");
  EXPECT_EQ(trim_ows(""), "");
  EXPECT_EQ(trim_ows(" \t \t"), "") << "all OWS";
  EXPECT_EQ(trim_ows("\r\na\r\n"), "\r\na\r\n") << "CR and LF are not OWS";
  EXPECT_EQ(trim_ows("\va\f"), "\va\f");
  EXPECT_TRUE(is_ows(' '));
  EXPECT_TRUE(is_ows('\t'));
  EXPECT_FALSE(is_ows('\n'));
}

TEST(HttpText, TokenCharacters) {
  for (const char c : std::string_view("!#$%&'*+-.^_`|~09azAZ")) EXPECT_TRUE(is_tchar(c)) << c;
  for (const char c : std::string_view("\"(),/:;<=>?@[\\]{} \t\x7f\x80")) EXPECT_FALSE(is_tchar(c)) << int(c);
  EXPECT_FALSE(is_tchar('\0')) << "NUL is not a tchar";
  EXPECT_TRUE(is_token("X-Request-Id"));
  EXPECT_TRUE(is_token("GET"));
  EXPECT_FALSE(is_token(""));
  EXPECT_FALSE(is_token("X Request"));
  EXPECT_FALSE(is_token(std::string_view("X-A\0", 4)));
}

TEST(HttpText, HexDigits) {
  EXPECT_EQ(hex_digit_value('0'), 0);
  EXPECT_EQ(hex_digit_value('9'), 9);
  EXPECT_EQ(hex_digit_value('a'), 10);
  EXPECT_EQ(hex_digit_value('F'), 15);
  EXPECT_EQ(hex_digit_value('g'), -1);
  EXPECT_EQ(hex_digit_value('G'), -1);
  EXPECT_EQ(hex_digit_value('/'), -1);
  EXPECT_EQ(hex_digit_value('\0'), -1);
}

TEST(HttpText, ListElementsAreTrimmedAndEmptyOnesSkipped) {
  using List = std::vector<std::string>;
  EXPECT_EQ(list_elements("Accept, Accept-Encoding"), (List{"Accept", "Accept-Encoding"}));
  EXPECT_EQ(list_elements("a,b"), (List{"a", "b"}));
  EXPECT_EQ(list_elements(" a ,\tb\t"), (List{"a", "b"}));
  EXPECT_EQ(list_elements(", a,, b,"), (List{"a", "b"}));
  EXPECT_EQ(list_elements(""), List{});
  EXPECT_EQ(list_elements(" \t "), List{}) << "all OWS";
  EXPECT_EQ(list_elements(",,"), List{});
  EXPECT_EQ(list_elements("*"), List{"*"});
  EXPECT_EQ(list_elements("a b, c"), (List{"a b", "c"})) << "inner spaces stay";
  EXPECT_EQ(list_elements("\"x,y\""), (List{"\"x", "y\""})) << "quotes are not understood";
}

}  // namespace
}  // namespace apigw::http
