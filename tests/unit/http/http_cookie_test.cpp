// Cookie header values: one cookie's value by name.
#include "apigw/http/cookie.h"

#include <gtest/gtest.h>

namespace apigw::http {
namespace {

// Moved with cookie_value from auth (token_test.cpp), unchanged.
TEST(CookieValue, Cookies) {
  EXPECT_EQ(cookie_value("session_token=xyz", "session_token"), "xyz");
  EXPECT_EQ(cookie_value("a=1; session_token=xyz; b=2", "session_token"), "xyz");
  EXPECT_EQ(cookie_value("a=1;session_token=\"xyz\"", "session_token"), "xyz");
  EXPECT_EQ(cookie_value("session_token=", "session_token"), "");
  EXPECT_FALSE(cookie_value("xsession_token=xyz; session_tokenx=1", "session_token"));
  EXPECT_FALSE(cookie_value("", "session_token"));
}

TEST(CookieValue, EdgeCases) {
  EXPECT_FALSE(cookie_value(" \t ", "a")) << "all OWS";
  EXPECT_FALSE(cookie_value(";;", "a"));
  EXPECT_EQ(cookie_value("a=1;b=2;c=3", "c"), "3") << "';' without a space";
  EXPECT_EQ(cookie_value("a=1 ;\tb = 2 ", "b"), "2") << "OWS around names and values";
  EXPECT_EQ(cookie_value("a=1; a=2", "a"), "1") << "the first of repeated names";
  EXPECT_EQ(cookie_value("a; a=2", "a"), "2") << "a pair without '=' is skipped";
  EXPECT_FALSE(cookie_value("A=1", "a")) << "names are case-sensitive";
  EXPECT_EQ(cookie_value("a=x=y", "a"), "x=y") << "only the first '=' splits";
  EXPECT_EQ(cookie_value("a=\"\"", "a"), "");
  EXPECT_EQ(cookie_value("a=\"", "a"), "\"") << "a lone quote is not a quoted value";
  EXPECT_EQ(cookie_value("a=\"x", "a"), "\"x");
  EXPECT_EQ(cookie_value("a=\"\"x\"\"", "a"), "\"x\"") << "one pair of quotes is removed";
  EXPECT_EQ(cookie_value("a= \"x y\" ", "a"), "x y");
  EXPECT_EQ(cookie_value("=1; a=2", ""), "1") << "an empty name matches an empty name";
}

TEST(CookieValue, PointsIntoTheHeader) {
  const std::string_view header = "a=1; b=xyz";
  const auto value = cookie_value(header, "b");
  ASSERT_TRUE(value);
  EXPECT_EQ(value->data(), header.data() + 7);
}

}  // namespace
}  // namespace apigw::http
