// Cluster slot maps from CLUSTER SLOTS replies, and MOVED / ASK redirections.
#include <gtest/gtest.h>

#include "apigw/redis/cluster_map.h"

namespace apigw::redis {
namespace {

Reply integer(long long value) {
  Reply reply;
  reply.type = Reply::Type::kInteger;
  reply.integer = value;
  return reply;
}

Reply string(std::string text) {
  Reply reply;
  reply.type = Reply::Type::kString;
  reply.text = std::move(text);
  return reply;
}

Reply array(std::vector<Reply> elements) {
  Reply reply;
  reply.type = Reply::Type::kArray;
  reply.elements = std::move(elements);
  return reply;
}

Reply range(long long start, long long end, int port, int replica_port = 0) {
  std::vector<Reply> items{integer(start), integer(end), array({string("127.0.0.1"), integer(port), string("id")})};
  if (replica_port) items.push_back(array({string("127.0.0.1"), integer(replica_port), string("rid")}));
  return array(std::move(items));
}

TEST(ClusterMap, ThreeMastersCoverEverySlot) {
  std::string why;
  const auto map = ClusterMap::from_slots(
      array({range(0, 5460, 7001, 7004), range(5461, 10922, 7002, 7005), range(10923, 16383, 7003, 7006)}), why);
  ASSERT_TRUE(map) << why;
  EXPECT_EQ(map->masters().size(), 3u);
  EXPECT_EQ(map->master(0).port, 7001);
  EXPECT_EQ(map->master(5460).port, 7001);
  EXPECT_EQ(map->master(5461).port, 7002);
  EXPECT_EQ(map->master(16383).port, 7003);
  EXPECT_EQ(map->master(key_slot("foo")).port, 7003);  // slot 12182
  EXPECT_EQ(map->master(0).text(), "127.0.0.1:7001");
}

TEST(ClusterMap, MovedSlotsGoToTheirNewMaster) {
  std::string why;
  auto map = ClusterMap::from_slots(array({range(0, 8191, 7001), range(8192, 16383, 7002)}), why);
  ASSERT_TRUE(map) << why;
  map->move(100, NodeAddress{"127.0.0.1", 7003});
  EXPECT_EQ(map->master(100).port, 7003);
  EXPECT_EQ(map->master(101).port, 7001);
  map->move(101, NodeAddress{"127.0.0.1", 7002});
  EXPECT_EQ(map->master(101).port, 7002);
  EXPECT_EQ(map->masters().size(), 3u);
}

TEST(ClusterMap, RefusesPartialOrMisshapenMaps) {
  std::string why;
  EXPECT_FALSE(ClusterMap::from_slots(array({range(0, 100, 7001)}), why));
  EXPECT_NE(why.find("slot 101 has no master"), std::string::npos) << why;
  EXPECT_FALSE(ClusterMap::from_slots(array({}), why));
  EXPECT_FALSE(ClusterMap::from_slots(array({array({integer(0), integer(16383)})}), why));
  EXPECT_FALSE(ClusterMap::from_slots(array({range(0, 16384, 7001)}), why));
  Reply error;
  error.type = Reply::Type::kError;
  error.text = "ERR This instance has cluster support disabled";
  EXPECT_FALSE(ClusterMap::from_slots(error, why));
  EXPECT_NE(why.find("cluster support disabled"), std::string::npos);
}

TEST(ClusterRedirect, ParsesMovedAndAsk) {
  const auto moved = parse_redirect("MOVED 3999 127.0.0.1:6381");
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->kind, Redirect::Kind::kMoved);
  EXPECT_EQ(moved->slot, 3999);
  EXPECT_EQ(moved->node, (NodeAddress{"127.0.0.1", 6381}));
  const auto ask = parse_redirect("ASK 12182 ::1:7002");
  ASSERT_TRUE(ask);
  EXPECT_EQ(ask->kind, Redirect::Kind::kAsk);
  EXPECT_EQ(ask->node.host, "::1");
  EXPECT_EQ(ask->node.text(), "[::1]:7002");
  for (const char* other : {"ERR wrong number of arguments", "MOVED", "MOVED x 1.2.3.4:1", "MOVED 16384 a:1",
                            "ASK 1 nohost", "MOVED 1 host:0"}) {
    SCOPED_TRACE(other);
    EXPECT_FALSE(parse_redirect(other));
  }
}

}  // namespace
}  // namespace apigw::redis
