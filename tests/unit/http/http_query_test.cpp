// Query strings: parameters, lookup with percent-decoding, and redaction for logs.
#include "apigw/http/query.h"

#include <gtest/gtest.h>

#include <string>

namespace apigw::http {
namespace {

// Each parameter for_each_query_parameter visits, in brackets, so that empty ones show: "a&" is "[a][]".
std::string visited(std::string_view query) {
  std::string out;
  for_each_query_parameter(query, [&](std::string_view parameter) { out.append("[").append(parameter).append("]"); });
  return out;
}

TEST(QueryParameters, SplitOnEveryAmpersandKeepingEmptyOnes) {
  EXPECT_EQ(visited("a=1&b"), "[a=1][b]");
  EXPECT_EQ(visited(""), "[]");
  EXPECT_EQ(visited("a&&b"), "[a][][b]");
  EXPECT_EQ(visited("a&"), "[a][]");
  EXPECT_EQ(visited("&"), "[][]");
  EXPECT_EQ(visited("a=%26"), "[a=%26]") << "no decoding";
}

TEST(QueryParameters, SplitAtTheFirstEquals) {
  QueryParameter p = split_query_parameter("a=1=2");
  EXPECT_EQ(p.name, "a");
  EXPECT_EQ(p.value, "1=2");
  EXPECT_TRUE(p.has_value);
  p = split_query_parameter("a=");
  EXPECT_EQ(p.name, "a");
  EXPECT_EQ(p.value, "");
  EXPECT_TRUE(p.has_value);
  p = split_query_parameter("a");
  EXPECT_EQ(p.name, "a");
  EXPECT_FALSE(p.has_value);
  p = split_query_parameter("=x");
  EXPECT_EQ(p.name, "");
  EXPECT_EQ(p.value, "x");
  p = split_query_parameter("");
  EXPECT_EQ(p.name, "");
  EXPECT_FALSE(p.has_value);
}

TEST(QueryParameters, FindTheFirstByNameAsWritten) {
  auto found = find_query_parameter("b=1&a=2&a=3", "a");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->value, "2");
  found = find_query_parameter("a&a=3", "a");
  ASSERT_TRUE(found);
  EXPECT_FALSE(found->has_value);
  EXPECT_FALSE(find_query_parameter("", "a"));
  EXPECT_FALSE(find_query_parameter("&&", "a"));
  EXPECT_FALSE(find_query_parameter("A=1", "a")) << "case-sensitive";
  EXPECT_FALSE(find_query_parameter("%61=1", "a")) << "names are not percent-decoded";
  EXPECT_FALSE(find_query_parameter("ab=1&b=2", "a"));
}

// Moved with query_value from auth (token_test.cpp), unchanged.
TEST(QueryValue, QueryParameters) {
  EXPECT_EQ(query_value("access_token=xyz", "access_token"), "xyz");
  EXPECT_EQ(query_value("a=1&access_token=x%2Fy%3D&b=2", "access_token"), "x/y=");
  EXPECT_EQ(query_value("access_token", "access_token"), "");
  EXPECT_EQ(query_value("access_token=a+b", "access_token"), "a b");
  EXPECT_FALSE(query_value("access_token=%zz", "access_token"));
  EXPECT_FALSE(query_value("access_token=%2", "access_token"));
  EXPECT_FALSE(query_value("xaccess_token=1", "access_token"));
}

TEST(QueryValue, EdgeCases) {
  EXPECT_FALSE(query_value("", "t"));
  EXPECT_EQ(query_value("t=1&t=2", "t"), "1") << "the first of repeated names";
  EXPECT_EQ(query_value("t=%41%2b", "t"), "A+") << "an encoded '+' stays a plus";
  EXPECT_EQ(query_value("&&t=x&", "t"), "x");
  EXPECT_FALSE(query_value("t=%zz&t=ok", "t")) << "only the first is read, even when malformed";
  EXPECT_FALSE(query_value("%74=1", "t")) << "names are not percent-decoded";
}

// Moved with redact_query_parameter from auth (request_token_test.cpp), unchanged.
TEST(RedactQueryParameter, RedactsQueryTokens) {
  EXPECT_EQ(redact_query_parameter("/a?access_token=secret&b=2", "access_token"), "/a?access_token=REDACTED&b=2");
  EXPECT_EQ(redact_query_parameter("/a?b=2&access_token=s&access_token=t", "access_token"),
            "/a?b=2&access_token=REDACTED&access_token=REDACTED");
  EXPECT_EQ(redact_query_parameter("/a?my_access_token=x", "access_token"), "/a?my_access_token=x");
  EXPECT_EQ(redact_query_parameter("/a", "access_token"), "/a");
  EXPECT_EQ(redact_query_parameter("/a?", "access_token"), "/a?");
  EXPECT_EQ(redact_query_parameter("/a?x&&y", "access_token"), "/a?x&&y");
}

TEST(RedactQueryParameter, KeepsEveryOtherByte) {
  EXPECT_EQ(redact_query_parameter("/a?t=s&", "t"), "/a?t=REDACTED&") << "a trailing '&' is kept";
  EXPECT_EQ(redact_query_parameter("/a?b=1&", "t"), "/a?b=1&") << "no such parameter: the target unchanged";
  EXPECT_EQ(redact_query_parameter("/a?&&", "t"), "/a?&&");
  EXPECT_EQ(redact_query_parameter("/a?t", "t"), "/a?t") << "no value to hide";
  EXPECT_EQ(redact_query_parameter("/a?t=", "t"), "/a?t=REDACTED");
  EXPECT_EQ(redact_query_parameter("/a?t=1=2&u=3", "t"), "/a?t=REDACTED&u=3");
  EXPECT_EQ(redact_query_parameter("/a?%74=s", "t"), "/a?%74=s") << "names are not percent-decoded";
  EXPECT_EQ(redact_query_parameter("/a?b=?&t=s", "t"), "/a?b=?&t=REDACTED") << "only the first '?' starts the query";
}

}  // namespace
}  // namespace apigw::http
