// Tests for the `control` section: values, defaults, and each error with its line.
#include <gtest/gtest.h>

#include <string>

#include "apigw/config/loader.h"
#include "config_test_support.h"

namespace apigw::config {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::string_view kControlRoutes = R"(
upstreams:
  u: { endpoints: [127.0.0.1:9001] }
routes:
  - { name: r, match: { path: /r }, upstream: u }
)";

TEST(ControlConfig, NoSectionMeansTheYamlAlone) {
  const LoadResult result = load(kControlRoutes);
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  EXPECT_FALSE(result.config->control.enabled);
}

TEST(ControlConfig, DefaultsWithAFleetName) {
  const LoadResult result = load(std::string("control: { fleet: api-gateway }") + std::string(kControlRoutes));
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  const ControlConfig& control = result.config->control;
  EXPECT_TRUE(control.enabled);
  EXPECT_EQ(control.fleet, "api-gateway");
  ASSERT_EQ(control.redis.nodes.size(), 1u);
  EXPECT_EQ(control.redis.nodes[0].text(), "127.0.0.1:6379");
  EXPECT_EQ(control.redis.timeout, milliseconds(200));
  EXPECT_EQ(control.delay, seconds(2));
  EXPECT_EQ(control.poll, seconds(5));
  EXPECT_EQ(control.state_file, "");
}

TEST(ControlConfig, EveryKeyAsInTheContract) {
  ::setenv("APIGW_TEST_CONTROL_PASSWORD", "s3cret", 1);
  const LoadResult result = load(std::string(R"(
control:
  redis:
    nodes: [127.0.0.1:7000, 127.0.0.1:7001]
    cluster: true
    password: ${APIGW_TEST_CONTROL_PASSWORD:-}
    timeout: 300ms
  fleet: edge_1.eu-west
  delay: 500ms
  poll: 1s
  state_file: /tmp/control-state.json
)") + std::string(kControlRoutes));
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  const ControlConfig& control = result.config->control;
  EXPECT_EQ(control.redis.nodes.size(), 2u);
  EXPECT_TRUE(control.redis.cluster);
  EXPECT_EQ(control.redis.password, "s3cret");
  EXPECT_EQ(control.redis.timeout, milliseconds(300));
  EXPECT_EQ(control.fleet, "edge_1.eu-west");
  EXPECT_EQ(control.delay, milliseconds(500));
  EXPECT_EQ(control.poll, seconds(1));
  EXPECT_EQ(control.state_file, "/tmp/control-state.json");
  ::unsetenv("APIGW_TEST_CONTROL_PASSWORD");
}

TEST(ControlConfig, ADelayOfZeroSwitchesAsSoonAsHeard) {
  const LoadResult result = load(std::string("control: { fleet: f, delay: 0s }") + std::string(kControlRoutes));
  ASSERT_TRUE(result.errors.empty()) << all_errors(result);
  EXPECT_EQ(result.config->control.delay, milliseconds(0));
}

struct ControlError {
  std::string yaml;
  int line;
  std::string fragment;
};

class ControlConfigErrors : public ::testing::TestWithParam<ControlError> {};

TEST_P(ControlConfigErrors, ReportedWithLineAndColumn) {
  const ControlError& param = GetParam();
  const LoadResult result = load(param.yaml + std::string(kControlRoutes));
  EXPECT_TRUE(only_error(result, param.line, param.fragment));
}

INSTANTIATE_TEST_SUITE_P(
    Values, ControlConfigErrors,
    ::testing::Values(
        ControlError{"control: { delay: 1s }", 1, "control: needs a fleet name"},
        ControlError{"control:\n  fleet: 'a b'", 2, "control.fleet: bad fleet name 'a b': letters, digits"},
        ControlError{"control:\n  fleet: '{x}'", 2, "bad fleet name '{x}'"},
        ControlError{"control:\n  fleet: f\n  delay: 11m", 3, "control.delay: at most 10m, got 11m"},
        ControlError{"control:\n  fleet: f\n  delay: soon", 3, "control.delay: bad duration 'soon'"},
        ControlError{"control:\n  fleet: f\n  poll: 10ms", 3, "control.poll: must be from 100ms to 10m, got 10ms"},
        ControlError{"control:\n  fleet: f\n  state_file: /nonexistent-dir/state.json", 3,
                     "control.state_file: directory /nonexistent-dir does not exist"},
        ControlError{"control:\n  fleet: f\n  state_file: /tmp/", 3, "names a directory"},
        ControlError{"control:\n  fleet: f\n  redis: { nodes: [] }", 3, "control.redis.nodes: needs at least one node"},
        ControlError{"control:\n  fleet: f\n  redis: { cluster: true, db: 2 }", 3,
                     "control.redis.db: a Redis Cluster has only database 0"},
        ControlError{"control:\n  fleet: f\n  interval: 1s", 3, "unknown key 'interval'"}));

}  // namespace
}  // namespace apigw::config
