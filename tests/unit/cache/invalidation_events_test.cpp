// The invalidation stream's replies (XREADGROUP, XAUTOCLAIM) as the consumer reads them, and what an event's
// fields invalidate.
#include "apigw/cache/invalidation_events.h"

#include <gtest/gtest.h>

namespace apigw::cache {
namespace {

using redis::Reply;

Reply text(std::string value) { return Reply{Reply::Type::kString, std::move(value), 0, {}}; }
Reply array(std::vector<Reply> elements) { return Reply{Reply::Type::kArray, {}, 0, std::move(elements)}; }
Reply nil() { return Reply{}; }

Reply entry(std::string id, std::vector<std::string> fields) {
  std::vector<Reply> words;
  for (std::string& field : fields) words.push_back(text(std::move(field)));
  return array({text(std::move(id)), array(std::move(words))});
}

TEST(InvalidationEvents, ReadGroupReplies) {
  const Reply events = array({entry("1-0", {"tags", "product:7 user:42"}), entry("2-0", {"keys", "k"})});
  const Reply reply = array({array({text("apigw:cache-events"), events})});
  const auto entries = read_group_entries(reply);
  ASSERT_TRUE(entries);
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].id, "1-0");
  EXPECT_EQ((*entries)[0].fields, (std::vector<std::pair<std::string, std::string>>{{"tags", "product:7 user:42"}}));
  EXPECT_EQ((*entries)[1].fields.front().first, "keys");
  EXPECT_EQ(read_group_entries(nil())->size(), 0u) << "nothing new";
  EXPECT_FALSE(read_group_entries(text("OK")));
  EXPECT_FALSE(read_group_entries(array({array({text("s")})})));
  EXPECT_FALSE(read_group_entries(array({array({text("s"), array({entry("1-0", {"odd"})})})})));
}

TEST(InvalidationEvents, AutoclaimReplies) {
  std::string next;
  // A trimmed entry comes back with nil fields.
  const Reply reply = array({text("5-0"), array({entry("3-0", {"tags", "a"}), array({text("4-0"), nil()})}),
                             array({})});
  const auto entries = autoclaim_entries(reply, next);
  ASSERT_TRUE(entries);
  EXPECT_EQ(next, "5-0");
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_TRUE((*entries)[1].fields.empty());
  EXPECT_FALSE(autoclaim_entries(array({text("0-0")}), next));
  EXPECT_FALSE(autoclaim_entries(nil(), next));
}

TEST(InvalidationEvents, FieldsNameTagsAndKeys) {
  std::string why;
  const std::vector<std::pair<std::string, std::string>> fields{
      {"source", "orders-db"}, {"tags", " product:7  user:42 product:7"}, {"keys", "apigw:v2:a:1"}};
  const auto invalidation = invalidation_from_fields(fields, why);
  ASSERT_TRUE(invalidation) << why;
  EXPECT_EQ(invalidation->tags, (std::vector<std::string>{"product:7", "user:42"}));
  EXPECT_EQ(invalidation->keys, (std::vector<std::string>{"apigw:v2:a:1"}));

  const std::vector<std::pair<std::string, std::string>> nothing{{"source", "x"}, {"tags", "  "}};
  EXPECT_FALSE(invalidation_from_fields(nothing, why));
  EXPECT_NE(why.find("no tags or keys"), std::string::npos) << why;
  const std::vector<std::pair<std::string, std::string>> bad_key{{"keys", std::string(251, 'k')}};
  EXPECT_FALSE(invalidation_from_fields(bad_key, why));
  EXPECT_NE(why.find("bad key"), std::string::npos) << why;
  const std::vector<std::pair<std::string, std::string>> bad_tag{{"tags", std::string("a\x01", 2)}};
  EXPECT_FALSE(invalidation_from_fields(bad_tag, why));
  std::string many;
  for (int i = 0; i <= 1000; ++i) many += "t" + std::to_string(i) + " ";
  const std::vector<std::pair<std::string, std::string>> too_many{{"tags", many}};
  EXPECT_FALSE(invalidation_from_fields(too_many, why));
  EXPECT_NE(why.find("more than 1000"), std::string::npos) << why;
}

}  // namespace
}  // namespace apigw::cache
