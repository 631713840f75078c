// The upstream response parser's field views, which the hop-by-hop rules and the forwarder read.
#include "apigw/http/response_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/error.hpp>

namespace apigw::http {
namespace {
namespace bhttp = boost::beast::http;

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
  EXPECT_EQ(fields[2].name, bhttp::field::connection);
}

TEST(ResponseParser, RefusesFoldedFieldValues) {
  // Beast unfolds an obs-fold value into a stack buffer of its own: a view of it dangles once the parse step
  // returns, and the forwarder would copy whatever the stack then holds into the client's response head.
  for (const std::string_view head : {"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n X-Secret\r\n\r\n",
                                      "HTTP/1.1 200 OK\r\nX-A: one\r\n\ttwo\r\nContent-Length: 0\r\n\r\n",
                                      "HTTP/1.1 200 OK\r\nX-A:\r\n two\r\n\r\n"}) {
    std::vector<ResponseParser::Field> fields;
    EXPECT_EQ(parse_head(head, fields), bhttp::error::bad_value) << head;
  }
}

}  // namespace
}  // namespace apigw::http
