// Request ids, JSON local replies, IP addresses and trusted-proxy matching.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "apigw/http/client_address.h"
#include "apigw/http/local_reply.h"
#include "apigw/http/request_id.h"

namespace apigw::http {
namespace {

TEST(RequestId, SaneIdsAreKept) {
  EXPECT_TRUE(is_sane_request_id("abc-123_x.y:z"));
  EXPECT_TRUE(is_sane_request_id(std::string(128, 'a')));
  EXPECT_FALSE(is_sane_request_id(std::string(129, 'a')));
  EXPECT_FALSE(is_sane_request_id(""));
  EXPECT_FALSE(is_sane_request_id("a b"));
  EXPECT_FALSE(is_sane_request_id("a\"b"));
  EXPECT_FALSE(is_sane_request_id("a\r\nX-Evil: 1"));
}

TEST(RequestId, AnIncomingIdReplacesTheGeneratedOneOnlyWhenSane) {
  RequestId id = RequestId::generate();
  const std::string generated(id.view());
  EXPECT_FALSE(id.assign_if_sane("a\r\nX-Evil: 1"));
  EXPECT_FALSE(id.assign_if_sane(std::string(129, 'a')));
  EXPECT_EQ(id.view(), generated);
  EXPECT_TRUE(id.assign_if_sane(std::string(128, 'b')));
  EXPECT_EQ(id.view(), std::string(128, 'b'));
  EXPECT_TRUE(id.assign_if_sane("edge-7"));
  EXPECT_EQ(id.view(), "edge-7");
}

TEST(RequestId, GeneratedIdsAreUuidV4AndUnique) {
  std::set<std::string> seen;
  std::set<char> digits;
  for (int i = 0; i < 10000; ++i) {
    const std::string id(RequestId::generate().view());
    ASSERT_EQ(id.size(), 36u);
    EXPECT_EQ(id[8], '-');
    EXPECT_EQ(id[13], '-');
    EXPECT_EQ(id[14], '4');
    EXPECT_EQ(id[18], '-');
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos);
    EXPECT_EQ(id[23], '-');
    EXPECT_TRUE(is_sane_request_id(id));
    for (std::size_t at : {0, 9, 14, 19, 24, 35}) digits.insert(id[at]);
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 10000u);
  // Every lower-case hex digit turns up, and nothing else.
  EXPECT_EQ(std::string(digits.begin(), digits.end()), "0123456789abcdef");
}

TEST(LocalReply, WritesJsonWithIdAndHeaders) {
  std::string out;
  LocalReply reply;
  reply.status = 405;
  reply.message = "no \"DELETE\"\n";
  reply.request_id = "rid-1";
  reply.allow = "GET, HEAD";
  reply.route = "users";
  reply.close = true;
  write_local_reply(out, reply);
  EXPECT_EQ(out.find("X-Cache"), std::string::npos);
  reply.cache_status = "MISS";
  out.clear();
  write_local_reply(out, reply);
  EXPECT_NE(out.find("\r\nX-Cache: MISS\r\n"), std::string::npos);
  EXPECT_EQ(out.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0), 0u);
  EXPECT_NE(out.find("\r\nAllow: GET, HEAD\r\n"), std::string::npos);
  EXPECT_NE(out.find("\r\nX-Request-Id: rid-1\r\n"), std::string::npos);
  EXPECT_NE(out.find("\r\nX-Apigw-Route: users\r\n"), std::string::npos);
  EXPECT_NE(out.find("\r\nConnection: close\r\n"), std::string::npos);
  const std::string body = R"({"error":"method_not_allowed","message":"no \"DELETE\"\n","request_id":"rid-1"})"
                           "\n";
  EXPECT_EQ(out.substr(out.find("\r\n\r\n") + 4), body);
  EXPECT_NE(out.find("Content-Length: " + std::to_string(body.size()) + "\r\n"), std::string::npos);
}

TEST(LocalReply, HeadGetsNoBody) {
  std::string out;
  LocalReply reply;
  reply.status = 404;
  reply.request_id = "r";
  reply.head = true;
  write_local_reply(out, reply);
  EXPECT_EQ(out.substr(out.size() - 4), "\r\n\r\n");
  EXPECT_NE(out.find("Content-Length: "), std::string::npos);
}

TEST(LocalReply, ErrorCodesByStatus) {
  EXPECT_EQ(error_code(400), "bad_request");
  EXPECT_EQ(error_code(408), "request_timeout");
  EXPECT_EQ(error_code(413), "payload_too_large");
  EXPECT_EQ(error_code(414), "uri_too_long");
  EXPECT_EQ(error_code(431), "header_fields_too_large");
  EXPECT_EQ(error_code(502), "bad_gateway");
  EXPECT_EQ(error_code(503), "service_unavailable");
  EXPECT_EQ(error_code(504), "gateway_timeout");
}

TEST(LocalReply, JsonEscapesControlCharacters) {
  std::string out;
  append_json_escaped(out, std::string_view("a\x01\\", 3));
  EXPECT_EQ(out, "a\\u0001\\\\");
}

TEST(LocalReply, JsonEscapingKeepsUtf8AndReplacesInvalidBytes) {
  // A request target may carry any byte from 0x80 up; JSON text must be UTF-8 (RFC 8259 §8.1).
  std::string out;
  append_json_escaped(out, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  EXPECT_EQ(out, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  for (const auto& [in, escaped] : std::vector<std::pair<std::string, std::string>>{
           {"/\xff", "/\\ufffd"},
           {"/\xc3", "/\\ufffd"},                      // truncated sequence
           {"\xc3(", "\\ufffd("},                      // a continuation byte missing
           {"\x80", "\\ufffd"},                        // a lone continuation byte
           {"\xc0\xaf", "\\ufffd\\ufffd"},             // overlong '/'
           {"\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd"},  // a UTF-16 surrogate
           {"\xf4\x90\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd"},  // past U+10FFFF
           {"\xe2\x82", "\\ufffd\\ufffd"}}) {
    out.clear();
    append_json_escaped(out, in);
    EXPECT_EQ(out, escaped);
  }
  LocalReply reply;
  reply.status = 404;
  reply.message = "no route matches GET /catalog/\xff\xfe";
  reply.request_id = "r";
  out.clear();
  write_local_reply(out, reply);
  EXPECT_NE(out.find(R"("message":"no route matches GET /catalog/\ufffd\ufffd")"), std::string::npos) << out;
}

TEST(ParseIp, OneFamilyAtATime) {
  const IpBytes v4 = parse_ipv4("10.0.0.1");
  EXPECT_EQ(v4.size, 4);
  EXPECT_EQ(std::vector<std::uint8_t>(v4.bytes.begin(), v4.bytes.begin() + 4),
            (std::vector<std::uint8_t>{10, 0, 0, 1}));
  EXPECT_EQ(parse_ipv6("::1").size, 16);
  EXPECT_EQ(parse_ipv6("::1").bytes[15], 1);
  EXPECT_EQ(parse_ipv4("::1").size, 0);
  EXPECT_EQ(parse_ipv6("10.0.0.1").size, 0);
  EXPECT_EQ(parse_ipv6("[::1]").size, 0) << "no brackets";
  const IpBytes mapped = parse_ipv6("::ffff:10.0.0.1");
  EXPECT_EQ(mapped.size, 16) << "not folded";
  EXPECT_EQ(mapped.bytes[10], 0xff);
  EXPECT_EQ(mapped.bytes[12], 10);
  for (const std::string_view bad : {"", " ", "1.2.3", "256.0.0.1", "1.2.3.4 ", " 1.2.3.4", "1.2.3.4/32"}) {
    EXPECT_EQ(parse_ipv4(bad).size, 0) << bad;
  }
  for (const std::string_view bad : {"", ":", ":::", "1::2::3", "fe80::1%eth0", "::1 ", "12345::"}) {
    EXPECT_EQ(parse_ipv6(bad).size, 0) << bad;
  }
  const std::string longest = "0000:0000:0000:0000:0000:ffff:255.255.255.255";
  ASSERT_EQ(longest.size(), 45u);
  EXPECT_EQ(parse_ipv6(longest).size, 16);
  EXPECT_EQ(parse_ipv6("0" + longest).size, 0);
  EXPECT_EQ(parse_ipv6(std::string(200, ':')).size, 0);
}

TEST(ParseIp, BracketsAndIpv4MappedFolding) {
  EXPECT_EQ(parse_ip("[::1]").size, 16);
  EXPECT_EQ(parse_ip("::1").size, 16);
  EXPECT_EQ(parse_ip("[10.0.0.1]").size, 4);
  const IpBytes mapped = parse_ip("[::ffff:10.1.2.3]");
  EXPECT_EQ(mapped.size, 4);
  EXPECT_EQ(std::vector<std::uint8_t>(mapped.bytes.begin(), mapped.bytes.begin() + 4),
            (std::vector<std::uint8_t>{10, 1, 2, 3}));
  EXPECT_EQ(parse_ip("::ffff:0:10.1.2.3").size, 16) << "IPv4-translated is not IPv4-mapped";
  for (const std::string_view bad : {"", "[]", "[", "[::1", "::1]", "[[::1]]", "not-an-ip"}) {
    EXPECT_EQ(parse_ip(bad).size, 0) << bad;
  }
}

Cidr cidr(std::string_view address, int prefix) {
  const IpBytes ip = parse_ip(address);
  return Cidr{std::string(address), std::vector<std::uint8_t>(ip.bytes.begin(), ip.bytes.begin() + ip.size),
              prefix};
}

TEST(TrustedProxies, MatchesByPrefix) {
  const TrustedProxies trusted({cidr("10.0.0.0", 8), cidr("192.168.1.128", 25), cidr("::1", 128)});
  EXPECT_TRUE(trusted.contains(parse_ip("10.200.3.4")));
  EXPECT_FALSE(trusted.contains(parse_ip("11.0.0.1")));
  EXPECT_TRUE(trusted.contains(parse_ip("192.168.1.200")));
  EXPECT_FALSE(trusted.contains(parse_ip("192.168.1.100")));
  EXPECT_TRUE(trusted.contains(parse_ip("::1")));
  EXPECT_TRUE(trusted.contains(parse_ip("::ffff:10.1.1.1")));  // IPv4-mapped folds to IPv4
  EXPECT_FALSE(trusted.contains(parse_ip("::2")));
  EXPECT_FALSE(trusted.contains(parse_ip("not-an-ip")));
}

TEST(TrustedProxies, EmptyTrustsNobody) {
  const TrustedProxies trusted;
  EXPECT_FALSE(trusted.contains(parse_ip("127.0.0.1")));
}

TEST(ForwardedClient, RealIpElseTheLastForwardedFor) {
  boost::beast::http::fields headers;
  EXPECT_EQ(forwarded_client(headers), "");
  headers.insert("X-Forwarded-For", "198.51.100.1, 203.0.113.7");
  EXPECT_EQ(forwarded_client(headers), "203.0.113.7");
  headers.insert("X-Forwarded-For", " 2001:db8::1 ");
  EXPECT_EQ(forwarded_client(headers), "2001:db8::1") << "the last line's last address";
  headers.insert("X-Real-IP", "192.0.2.9");
  EXPECT_EQ(forwarded_client(headers), "192.0.2.9");
  headers.set("X-Real-IP", "not an address");
  EXPECT_EQ(forwarded_client(headers), "2001:db8::1");
  headers.set("X-Forwarded-For", "198.51.100.1, unknown");
  EXPECT_EQ(forwarded_client(headers), "");
}

}  // namespace
}  // namespace apigw::http
