// Tests for laying the fleet's overrides over a snapshot of the YAML, and for the checks `apigw ctl` shares with it.
#include <gtest/gtest.h>

#include "apigw/config/loader.h"
#include "apigw/config/snapshot.h"
#include "apigw/fleet/overlay.h"

namespace apigw::fleet {
namespace {

constexpr std::string_view kYaml = R"(migration:
  buckets: 10000
  beta_users: [b1, b2]
  shadow_ignore: ["POST /payments/**"]
  split: { upstream: cloud, percent: 1 }
upstreams:
  dc: { endpoints: [127.0.0.1:9001] }
  cloud: { endpoints: [127.0.0.1:9002] }
  mirror: { endpoints: [127.0.0.1:9003] }
routes:
  - { name: users, match: { path: /users/:id }, upstream: dc, shadow: { upstream: mirror, percent: 5 } }
  - { name: orders, match: { path: /orders }, upstream: dc, split: off }
)";

config::SnapshotPtr baseline() {
  config::LoadResult loaded = config::load_string(kYaml, "gw.yaml");
  EXPECT_TRUE(loaded.errors.empty()) << (loaded.errors.empty() ? "" : loaded.errors[0].text());
  config::SnapshotResult built = config::build_snapshot(*loaded.config, 3);
  EXPECT_TRUE(built.errors.empty());
  return built.snapshot;
}

std::uint32_t upstream_index(const config::Snapshot& snapshot, std::string_view name) {
  for (std::uint32_t i = 0; i < snapshot.upstreams.size(); ++i) {
    if (snapshot.upstreams[i].config.name == name) return i;
  }
  return UINT32_MAX;
}

TEST(FleetOverlay, NoOverridesServeTheYaml) {
  const auto yaml = baseline();
  const Overlay result = overlay(*yaml, {}, 4);
  EXPECT_TRUE(result.dropped.empty());
  EXPECT_EQ(result.snapshot->generation, 4u);
  EXPECT_EQ(result.snapshot->routes[0].split, yaml->routes[0].split);
  EXPECT_EQ(result.snapshot->beta_users, yaml->beta_users);
  EXPECT_EQ(result.snapshot->trie, yaml->trie);  // shared, not rebuilt
}

TEST(FleetOverlay, APercentKeepsTheYamlsUpstream) {
  const auto yaml = baseline();
  Overrides overrides;
  overrides.routes["users"] = {std::string("25"), std::string("0.01")};
  const Overlay result = overlay(*yaml, overrides, 4);
  ASSERT_TRUE(result.dropped.empty()) << result.dropped[0];
  const config::Route& users = result.snapshot->routes[0];
  ASSERT_TRUE(users.split && users.shadow);
  EXPECT_EQ(users.split->upstream, upstream_index(*yaml, "cloud"));  // the migration.split default's
  EXPECT_EQ(users.split->threshold, 2500u);
  EXPECT_EQ(users.shadow->upstream, upstream_index(*yaml, "mirror"));
  EXPECT_EQ(users.shadow->threshold, 1u);
  // The config view says the same, as the route's own target.
  EXPECT_EQ(result.snapshot->config.routes[0].split->percent, "25");
  EXPECT_EQ(result.snapshot->config.routes[0].split->upstream, "cloud");
  // The baseline is not touched.
  EXPECT_EQ(yaml->routes[0].split->threshold, 100u);
}

TEST(FleetOverlay, OffRemovesTheTarget) {
  const auto yaml = baseline();
  Overrides overrides;
  overrides.routes["users"] = {std::string("off"), std::string("off")};
  const Overlay result = overlay(*yaml, overrides, 4);
  EXPECT_TRUE(result.dropped.empty());
  EXPECT_FALSE(result.snapshot->routes[0].split);
  EXPECT_FALSE(result.snapshot->routes[0].shadow);
}

TEST(FleetOverlay, WhatDoesNotApplyIsDroppedWithTheLoadersWords) {
  const auto yaml = baseline();
  Overrides overrides;
  overrides.routes["gone"] = {std::string("5"), std::nullopt};
  overrides.routes["orders"] = {std::string("5"), std::nullopt};  // split: off in the YAML: no upstream
  overrides.routes["users"] = {std::string("101"), std::string("0.001")};
  overrides.beta_add = {""};
  overrides.ignore_add = {"payments"};
  const Overlay result = overlay(*yaml, overrides, 4);
  ASSERT_EQ(result.dropped.size(), 6u);
  EXPECT_EQ(result.dropped[0],
            "route 'gone' is not in gw.yaml: the split override is dropped");
  EXPECT_EQ(result.dropped[1].find("route 'orders' has no split upstream"), 0u) << result.dropped[1];
  EXPECT_EQ(result.dropped[2],
            "route 'users' split.percent: must be from 0 to 100, got 101: the split override is dropped");
  EXPECT_EQ(result.dropped[3],
            "route 'users' shadow.percent: 0.001 is finer than buckets 10000 allows (steps of 0.01): the shadow "
            "override is dropped");
  EXPECT_EQ(result.dropped[4], "beta add: migration.beta_users: a user id cannot be empty");
  EXPECT_EQ(result.dropped[5],
            "ignore add: migration.shadow_ignore: bad pattern 'payments': the path must start with '/'");
  // The rest of the snapshot is the YAML's.
  EXPECT_EQ(result.snapshot->routes[0].split, yaml->routes[0].split);
}

TEST(FleetOverlay, BetaUsersAndPatternsAreAddedAndRemoved) {
  const auto yaml = baseline();
  Overrides overrides;
  overrides.beta_add = {"b9"};
  overrides.beta_remove = {"b1"};
  overrides.ignore_add = {"POST /notifications/*"};
  overrides.ignore_remove = {"POST /payments/**"};
  const Overlay result = overlay(*yaml, overrides, 4);
  EXPECT_TRUE(result.dropped.empty());
  EXPECT_EQ(result.snapshot->config.migration.beta_users, (std::vector<std::string>{"b2", "b9"}));
  EXPECT_TRUE(result.snapshot->beta_users.contains("b9"));
  EXPECT_FALSE(result.snapshot->beta_users.contains("b1"));
  EXPECT_EQ(result.snapshot->config.migration.shadow_ignore, (std::vector<std::string>{"POST /notifications/*"}));
  ASSERT_EQ(result.snapshot->shadow_ignore.size(), 1u);
}

TEST(FleetOverlay, AbortSendsNothingToTheOtherSide) {
  const auto yaml = baseline();
  Overrides overrides;
  overrides.routes["users"] = {std::string("50"), std::nullopt};
  overrides.abort = true;
  const Overlay result = overlay(*yaml, overrides, 4);
  for (const config::Route& route : result.snapshot->routes) {
    EXPECT_FALSE(route.split) << route.name;
    EXPECT_FALSE(route.shadow) << route.name;
  }
  EXPECT_TRUE(result.snapshot->config.routes[0].split->upstream.empty());  // shown as off
}

TEST(FleetOverlay, ChecksForTheCommandLine) {
  const auto yaml = baseline();
  const config::Config& config = yaml->config;
  EXPECT_EQ(check_route_target(config, "users", Side::kSplit, "0.01"), "");
  EXPECT_EQ(check_route_target(config, "users", Side::kSplit, "off"), "");
  EXPECT_EQ(check_route_target(config, "users", Side::kSplit, "12.5%"),
            "route 'users' split.percent: write the number without '%', got '12.5%'");
  EXPECT_EQ(check_route_target(config, "", Side::kSplit, "1"), "route '' is not in gw.yaml");
  EXPECT_EQ(check_beta_user("u1"), "");
  EXPECT_EQ(check_ignore_pattern("GET /a/*"), "");
  EXPECT_NE(check_ignore_pattern("no-slash"), "");
}

}  // namespace
}  // namespace apigw::fleet
