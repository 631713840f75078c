// Hop-by-hop header rules: what never crosses the gateway in either direction.
#include "apigw/proxy/header_rules.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include <boost/beast/http/fields.hpp>


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

}  // namespace
}  // namespace apigw::proxy
