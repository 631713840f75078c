// Tests for the fleet state's JSON form and the description of a change.
#include <gtest/gtest.h>

#include "apigw/fleet/state.h"

namespace apigw::fleet {
namespace {

State sample() {
  State state;
  state.version = 7;
  state.written_at_ms = 1'764'859'200'123;
  state.effective_at_ms = 1'764'859'202'123;
  state.author = "alice@ops-1";
  state.why = "ramp to 25 %";
  state.change = "users.split: 1 -> 25";
  state.overrides.routes["users"] = {std::string("25"), std::string("off")};
  state.overrides.routes["orders"] = {std::nullopt, std::string("0.01")};
  state.overrides.beta_add = {"u1", "u2"};
  state.overrides.beta_remove = {"u9"};
  state.overrides.ignore_add = {"POST /payments/**"};
  state.overrides.abort = true;
  state.previous_version = 6;
  state.previous.routes["users"] = {std::string("1"), std::nullopt};
  return state;
}

TEST(FleetState, RoundTripsThroughJson) {
  const State state = sample();
  std::string why;
  const auto decoded = decode(encode(state), why);
  ASSERT_TRUE(decoded) << why;
  EXPECT_EQ(*decoded, state);
}

TEST(FleetState, AnEmptyStateRoundTrips) {
  std::string why;
  const auto decoded = decode(encode(State{}), why);
  ASSERT_TRUE(decoded) << why;
  EXPECT_EQ(*decoded, State{});
  EXPECT_TRUE(decoded->overrides.empty());
}

TEST(FleetState, UnreadableStatesSayWhy) {
  std::string why;
  EXPECT_FALSE(decode("not json", why));
  EXPECT_NE(why.find("not JSON"), std::string::npos) << why;
  EXPECT_FALSE(decode("[]", why));
  EXPECT_EQ(why, "the state is not an object");
  EXPECT_FALSE(decode(R"({"written_at_ms":1,"effective_at_ms":1,"overrides":{}})", why));
  EXPECT_EQ(why, "the state has no version");
  EXPECT_FALSE(decode(R"({"version":-1,"written_at_ms":1,"effective_at_ms":1,"overrides":{}})", why));
  EXPECT_EQ(why, "version is negative");
  EXPECT_FALSE(
      decode(R"({"version":1,"written_at_ms":1,"effective_at_ms":1,"overrides":{"routes":{"a":{"split":25}}}})", why));
  EXPECT_EQ(why, "overrides.routes.a.split is not a string");
  EXPECT_FALSE(
      decode(R"({"version":1,"written_at_ms":1,"effective_at_ms":1,"overrides":{"beta_users":{"add":"u1"}}})", why));
  EXPECT_EQ(why, "overrides.beta_users.add is not a list");
}

TEST(FleetState, DescribesEachChangedKey) {
  Overrides before;
  before.routes["users"] = {std::string("1"), std::nullopt};
  before.beta_add = {"u1"};
  Overrides after = before;
  after.routes["users"].split = "25";
  after.routes["orders"].shadow = "off";
  after.beta_add = {"u2"};
  after.beta_remove = {"u9"};
  after.ignore_add = {"POST /payments/**"};
  after.abort = true;
  EXPECT_EQ(describe_change(before, after),
            (std::vector<std::string>{"abort: on", "orders.shadow: yaml -> off", "users.split: 1 -> 25",
                                      "beta_users: +u2 -u9 yaml u1", "shadow_ignore: +POST /payments/**"}));
  EXPECT_TRUE(describe_change(after, after).empty());
  EXPECT_EQ(join_change(describe_change(after, before)),
            "abort: off; orders.shadow: off -> yaml; users.split: 25 -> 1; beta_users: +u1 yaml u2 yaml u9; "
            "shadow_ignore: yaml POST /payments/**");
}

TEST(FleetState, UtcTimeHasMilliseconds) {
  EXPECT_EQ(utc_time(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(utc_time(1'764'859'200'123), "2025-12-04T14:40:00.123Z");
}

}  // namespace
}  // namespace apigw::fleet
