// Redis replies from a byte stream: incremental reading, nesting, and the bound on array lengths.
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "apigw/redis/reply_reader.h"

namespace apigw::redis {
namespace {

using Status = ReplyReader::Status;

TEST(ReplyReader, RepliesComeWholeWhicheverWayTheBytesArrive) {
  const std::string_view stream = "+OK\r\n*2\r\n$3\r\nabc\r\n:42\r\n-ERR no\r\n";
  ReplyReader reader;
  Reply reply;
  for (char c : stream.substr(0, 8)) ASSERT_TRUE(reader.feed(&c, 1));
  ASSERT_EQ(reader.next(reply), Status::kReply);
  EXPECT_EQ(reply.type, Reply::Type::kStatus);
  EXPECT_EQ(reply.text, "OK");
  EXPECT_EQ(reader.next(reply), Status::kNeedMore);  // "*2\r" so far

  ASSERT_TRUE(reader.feed(stream.data() + 8, stream.size() - 8));
  ASSERT_EQ(reader.next(reply), Status::kReply);
  ASSERT_EQ(reply.type, Reply::Type::kArray);
  ASSERT_EQ(reply.elements.size(), 2u);
  EXPECT_EQ(reply.elements[0].text, "abc");
  EXPECT_EQ(reply.elements[1].integer, 42);
  ASSERT_EQ(reader.next(reply), Status::kReply);
  EXPECT_EQ(reply.type, Reply::Type::kError);
  EXPECT_EQ(reply.text, "ERR no");
  EXPECT_EQ(reader.next(reply), Status::kNeedMore);
}

TEST(ReplyReader, AnArrayLongerThanTheBoundIsAProtocolErrorBeforeAnythingIsAllocated) {
  ReplyReader reader;
  const std::string huge = "*" + std::to_string(kMaxArrayElements + 1) + "\r\n";
  ASSERT_TRUE(reader.feed(huge.data(), huge.size()));
  Reply reply;
  EXPECT_EQ(reader.next(reply), Status::kProtocolError);
}

TEST(ReplyReader, BytesThatAreNotRespAreAProtocolErrorUntilReset) {
  ReplyReader reader;
  const std::string_view junk = "hello\r\n";
  reader.feed(junk.data(), junk.size());
  Reply reply;
  EXPECT_EQ(reader.next(reply), Status::kProtocolError);
  reader.reset();
  const std::string_view ok = ":1\r\n";
  ASSERT_TRUE(reader.feed(ok.data(), ok.size()));
  ASSERT_EQ(reader.next(reply), Status::kReply);
  EXPECT_EQ(reply.integer, 1);
}

}  // namespace
}  // namespace apigw::redis
