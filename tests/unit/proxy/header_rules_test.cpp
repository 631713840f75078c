// Hop-by-hop header rules: what never crosses the gateway in either direction; and the upstream response parser's
// field views, which those rules and the forwarder read.
#include "apigw/proxy/header_rules.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/error.hpp>
#include <boost/beast/http/fields.hpp>

#include "apigw/proxy/response_parser.h"

namespace apigw::proxy {
namespace {
namespace http = boost::beast::http;

bool drops(const http::fields& fields, std::string_view name) {
  const HopByHopRules rules(fields);
  return rules.drop(http::string_to_field(name), name);
}

TEST(HopByHopRules, DropsTheFixedHopByHopHeaders) {
  const http::fields fields;
  for (std::string_view name : {"Connection", "Keep-Alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
                                "Content-Length", "Proxy-Connection", "Proxy-Authorization", "proxy-authenticate",
                                "Proxy-Anything"}) {
    EXPECT_TRUE(drops(fields, name)) << name;
  }
}

TEST(HopByHopRules, KeepsEndToEndHeaders) {
  const http::fields fields;
  for (std::string_view name : {"Host", "Accept", "Set-Cookie", "X-Custom", "Authorization", "Content-Type",
                                "Proxyish", "Cache-Control"}) {
    EXPECT_FALSE(drops(fields, name)) << name;
  }
}

TEST(HopByHopRules, DropsWhatConnectionNames) {
  http::fields fields;
  fields.insert(http::field::connection, "keep-alive, X-Secret");
  fields.insert(http::field::connection, "x-other");
  EXPECT_TRUE(drops(fields, "X-Secret"));
  EXPECT_TRUE(drops(fields, "x-secret"));
  EXPECT_TRUE(drops(fields, "X-Other"));
  EXPECT_FALSE(drops(fields, "X-Public"));
  EXPECT_FALSE(HopByHopRules(fields).close());
}

TEST(HopByHopRules, SeesClose) {
  http::fields fields;
  fields.insert(http::field::connection, "Close");
  EXPECT_TRUE(HopByHopRules(fields).close());
}

TEST(HopByHopRules, TooManyConnectionTokensDropUnknownHeaders) {
  http::fields fields;
  std::string tokens;
  for (int i = 0; i < 40; ++i) tokens += "x-h" + std::to_string(i) + ",";
  fields.insert(http::field::connection, tokens);
  EXPECT_TRUE(drops(fields, "X-H39"));
  EXPECT_TRUE(drops(fields, "X-Unrelated"));
  EXPECT_FALSE(drops(fields, "Accept"));
}

// Puts the whole of `head` into a fresh parser; the parse error, and in `fields` what it kept.
boost::system::error_code parse_head(std::string_view head, std::vector<ResponseParser::Field>& fields) {
  ResponseParser parser(fields);
  boost::system::error_code error;
  parser.put(boost::asio::buffer(head.data(), head.size()), error);
  return error;
}

TEST(ResponseParser, FieldsAreViewsIntoTheParsedBytes) {
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Type:  text/plain \r\nX-Empty:\r\nConnection: close\r\n\r\n";
  std::vector<ResponseParser::Field> fields;
  ASSERT_FALSE(parse_head(head, fields));
  ASSERT_EQ(fields.size(), 3u);
  EXPECT_EQ(fields[0].value, "text/plain");
  EXPECT_EQ(fields[0].value.data(), head.data() + head.find("text/plain"));
  EXPECT_EQ(fields[1].value, "");
  EXPECT_EQ(fields[2].name, http::field::connection);
}

TEST(ResponseParser, RefusesFoldedFieldValues) {
  // Beast unfolds an obs-fold value into a stack buffer of its own: a view of it dangles once the parse step
  // returns, and the forwarder would copy whatever the stack then holds into the client's response head.
  for (const std::string_view head : {"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n X-Secret\r\n\r\n",
                                      "HTTP/1.1 200 OK\r\nX-A: one\r\n\ttwo\r\nContent-Length: 0\r\n\r\n",
                                      "HTTP/1.1 200 OK\r\nX-A:\r\n two\r\n\r\n"}) {
    std::vector<ResponseParser::Field> fields;
    EXPECT_EQ(parse_head(head, fields), http::error::bad_value) << head;
  }
}

}  // namespace
}  // namespace apigw::proxy
