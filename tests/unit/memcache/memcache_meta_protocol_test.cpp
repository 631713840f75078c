// The meta protocol's keys, requests and replies, byte for byte; replies split anywhere or packed together.
#include <gtest/gtest.h>

#include "apigw/memcache/meta_protocol.h"

namespace apigw::memcache {
namespace {

TEST(MemcacheMetaProtocol, Keys) {
  EXPECT_TRUE(valid_key("k"));
  EXPECT_TRUE(valid_key(std::string(250, 'k')));
  EXPECT_TRUE(valid_key("GET:/api/v1/items?id=7&x={y}"));
  EXPECT_TRUE(valid_key("caf\xc3\xa9"));
  EXPECT_FALSE(valid_key(""));
  EXPECT_FALSE(valid_key(std::string(251, 'k')));
  EXPECT_FALSE(valid_key("a b"));
  EXPECT_FALSE(valid_key("a\tb"));
  EXPECT_FALSE(valid_key("a\r\nmg b"));
  EXPECT_FALSE(valid_key(std::string("a\0b", 3)));
  EXPECT_FALSE(valid_key("a\x01"));
  EXPECT_FALSE(valid_key("a\x7f"));
}

TEST(MemcacheMetaProtocol, Requests) {
  std::string out;
  encode_get(out, "page:/a", 7);
  EXPECT_EQ(out, "mg page:/a v f t O7\r\n");
  out.clear();
  encode_set(out, "k", std::string("a\0\r\n", 4), 4294967295u, 300, 4294967295u);
  EXPECT_EQ(out, std::string("ms k 4 F4294967295 T300 O4294967295\r\na\0\r\n\r\n", 43));
  out.clear();
  encode_set(out, "empty", "", 0, 0, 1);
  EXPECT_EQ(out, "ms empty 0 F0 T0 O1\r\n\r\n");
  encode_delete(out, "k", 2);  // appends
  EXPECT_EQ(out, "ms empty 0 F0 T0 O1\r\n\r\nmd k O2\r\n");
  out.clear();
  encode_set(out, "k", "v", 5, 60, 3, true);
  EXPECT_EQ(out, "ms k 1 F5 T60 O3 ME\r\nv\r\n") << "add: mode E";
  out.clear();
  encode_set(out, "k", "v", 5, 60, 3, false);
  EXPECT_EQ(out, "ms k 1 F5 T60 O3\r\nv\r\n");
}

TEST(MemcacheMetaProtocol, StampedeControlRequests) {
  std::string out;
  encode_get(out, "k", 1, GetOptions{30, 0, false});
  EXPECT_EQ(out, "mg k v f t N30 O1\r\n");
  out.clear();
  encode_get(out, "k", 2, GetOptions{30, 600, true});
  EXPECT_EQ(out, "mg k v f t N30 R600 c O2\r\n");
  out.clear();
  encode_delete(out, "k", 3, DeleteOptions{true, 30, 0});
  EXPECT_EQ(out, "md k I T30 O3\r\n");
  out.clear();
  encode_delete(out, "k", 4, DeleteOptions{false, 30, 18446744073709551615ull});
  EXPECT_EQ(out, "md k C18446744073709551615 O4\r\n") << "T only with I";
}

TEST(MemcacheMetaProtocol, StampedeControlReplyFlags) {
  Reply reply;
  std::size_t consumed = 0;
  ASSERT_EQ(parse_reply("VA 0 c42 O1 W\r\n\r\n", reply, consumed), ParseStatus::kDone);
  EXPECT_TRUE(reply.won);
  EXPECT_FALSE(reply.fill_elsewhere);
  EXPECT_EQ(reply.cas, 42u);
  ASSERT_EQ(parse_reply("VA 2 t30 O2 Z X\r\nhi\r\n", reply, consumed), ParseStatus::kDone);
  EXPECT_FALSE(reply.won);
  EXPECT_TRUE(reply.fill_elsewhere);
  EXPECT_TRUE(reply.stale);
  ASSERT_EQ(parse_reply("HD O3 W\r\n", reply, consumed), ParseStatus::kDone);
  EXPECT_TRUE(reply.won);
  EXPECT_EQ(parse_reply("VA 0 cx O1\r\n\r\n", reply, consumed), ParseStatus::kMalformed);
}

TEST(MemcacheMetaProtocol, ValueReply) {
  Reply reply;
  std::size_t consumed = 0;
  const std::string wire = std::string("VA 5 f42 t-1 O9\r\na\r\n\0b\r\n", 24);
  ASSERT_EQ(parse_reply(wire, reply, consumed), ParseStatus::kDone);
  EXPECT_EQ(consumed, wire.size());
  EXPECT_EQ(reply.code, Reply::Code::kValue);
  EXPECT_EQ(reply.value, std::string("a\r\n\0b", 5));
  EXPECT_EQ(reply.flags, 42u);
  EXPECT_EQ(reply.ttl, -1);
  EXPECT_EQ(reply.opaque, 9u);

  ASSERT_EQ(parse_reply("VA 0 t17 O1\r\n\r\n", reply, consumed), ParseStatus::kDone);
  EXPECT_EQ(reply.value, "");
  EXPECT_EQ(reply.ttl, 17);
  EXPECT_EQ(reply.flags, 0u);
}

TEST(MemcacheMetaProtocol, EveryPrefixIsIncomplete) {
  const std::string wire = "VA 12 f1 t30 O123\r\nhello\r\nworld\r\n";
  Reply reply;
  std::size_t consumed = 0;
  for (std::size_t length = 0; length < wire.size(); ++length) {
    EXPECT_EQ(parse_reply(std::string_view(wire).substr(0, length), reply, consumed), ParseStatus::kIncomplete)
        << length;
  }
  EXPECT_EQ(parse_reply(wire, reply, consumed), ParseStatus::kDone);
  EXPECT_EQ(reply.value, "hello\r\nworld");
}

TEST(MemcacheMetaProtocol, SeveralRepliesInOneRead) {
  const std::string wire =
      "HD O1\r\nEN O2\r\nVA 2 f0 t-1 O3\r\nhi\r\nNS O4\r\nNF O5\r\nEX O6\r\nSERVER_ERROR object too large for cache\r\n"
      "CLIENT_ERROR bad command line format\r\nERROR\r\nHD";
  const std::vector<Reply::Code> expected{Reply::Code::kHeader,    Reply::Code::kMiss,        Reply::Code::kValue,
                                          Reply::Code::kNotStored, Reply::Code::kNotFound,    Reply::Code::kExists,
                                          Reply::Code::kServerError, Reply::Code::kClientError, Reply::Code::kError};
  std::string_view rest = wire;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    Reply reply;
    std::size_t consumed = 0;
    ASSERT_EQ(parse_reply(rest, reply, consumed), ParseStatus::kDone) << i;
    EXPECT_EQ(reply.code, expected[i]) << i;
    EXPECT_EQ(reply.opaque, i < 6 ? std::optional<std::uint32_t>(i + 1) : std::nullopt) << i;
    const char* message = i == 6 ? "object too large for cache" : i == 7 ? "bad command line format" : "";
    EXPECT_EQ(reply.message, message) << i;
    rest.remove_prefix(consumed);
  }
  Reply reply;
  std::size_t consumed = 0;
  EXPECT_EQ(parse_reply(rest, reply, consumed), ParseStatus::kIncomplete);
}

TEST(MemcacheMetaProtocol, MalformedReplies) {
  Reply reply;
  std::size_t consumed = 0;
  for (const char* wire : {"XX O1\r\n", "VA x O1\r\nabc\r\n", "VA 3 O1\r\nabcd\r\n", "VA -1 O1\r\n\r\n",
                           "VA 2000000000 O1\r\n", "HD Oabc\r\n", "VA 1 fz\r\na\r\n", "\r\n", "VALUE k 0 1\r\n"}) {
    EXPECT_EQ(parse_reply(wire, reply, consumed), ParseStatus::kMalformed) << wire;
  }
  // A first line that never ends.
  EXPECT_EQ(parse_reply(std::string(kMaxReplyLine - 1, 'H'), reply, consumed), ParseStatus::kIncomplete);
  EXPECT_EQ(parse_reply(std::string(kMaxReplyLine, 'H'), reply, consumed), ParseStatus::kMalformed);
}

}  // namespace
}  // namespace apigw::memcache
