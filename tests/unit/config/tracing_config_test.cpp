// Tests for the `tracing` section: values, defaults, and each error with its line.
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "apigw/config/loader.h"
#include "config_test_support.h"

namespace apigw::config {
namespace {

constexpr std::string_view kTracingRoutes =
    "upstreams:\n  u: { endpoints: [127.0.0.1:1] }\nroutes:\n  - { name: a, match: { path: /a }, upstream: u }\n";

LoadResult load_tracing(std::string_view section) { return load(std::string(section) + std::string(kTracingRoutes)); }

TEST(TracingConfig, SectionValues) {
  const LoadResult result = load_tracing(
      "tracing: { sample: 0.5%, otlp: \"http://127.0.0.1:4318/\", service_name: edge-gw, queue: 100, timeout: 500ms }\n");
  ASSERT_TRUE(result.config) << all_errors(result);
  const TracingConfig& tracing = result.config->tracing;
  EXPECT_TRUE(tracing.enabled);
  EXPECT_EQ(tracing.sample, "0.5");
  EXPECT_DOUBLE_EQ(tracing.ratio, 0.005);
  EXPECT_EQ(tracing.otlp, "http://127.0.0.1:4318");
  EXPECT_EQ(tracing.export_url, "http://127.0.0.1:4318/v1/traces");
  EXPECT_FALSE(tracing.tls);
  EXPECT_EQ(tracing.service_name, "edge-gw");
  EXPECT_EQ(tracing.queue, 100u);
  EXPECT_EQ(tracing.timeout, std::chrono::milliseconds(500));
}

TEST(TracingConfig, DefaultsPropagateWithoutExporting) {
  const LoadResult result = load_tracing("tracing: {}\n");
  ASSERT_TRUE(result.config) << all_errors(result);
  const TracingConfig& tracing = result.config->tracing;
  EXPECT_TRUE(tracing.enabled);
  EXPECT_DOUBLE_EQ(tracing.ratio, 0.01);
  EXPECT_TRUE(tracing.otlp.empty());
  EXPECT_TRUE(tracing.export_url.empty());
  EXPECT_EQ(tracing.service_name, "apigw");
  EXPECT_EQ(tracing.queue, 2048u);
  EXPECT_EQ(tracing.timeout, std::chrono::seconds(2));
  EXPECT_FALSE(load_tracing("").config->tracing.enabled);
}

TEST(TracingConfig, AnHttpsCollectorIsVerifiedWithOrWithoutATlsBlock) {
  const LoadResult bare = load_tracing("tracing: { otlp: \"https://collector.internal:4318/otel\" }\n");
  ASSERT_TRUE(bare.config) << all_errors(bare);
  EXPECT_EQ(bare.config->tracing.export_url, "https://collector.internal:4318/otel/v1/traces");
  ASSERT_TRUE(bare.config->tracing.tls);
  EXPECT_TRUE(bare.config->tracing.tls->verify);
}

TEST(TracingConfig, Errors) {
  struct Case {
    std::string section;
    std::string fragment;
  };
  const std::vector<Case> cases{
      {"tracing: { sample: 1 }\n", "tracing.sample: expected a percent such as 1%, 0.5% or 100%, got '1'"},
      {"tracing: { sample: 101% }\n", "tracing.sample: expected a percent from 0% to 100%"},
      {"tracing: { sample: \"-1%\" }\n", "tracing.sample: expected a percent from 0% to 100%"},
      {"tracing: { otlp: \"grpc://127.0.0.1:4317\" }\n", "tracing.otlp: expected the collector's OTLP/HTTP base URL"},
      {"tracing: { otlp: \"http://127.0.0.1\" }\n", "tracing.otlp: bad collector URL 'http://127.0.0.1'"},
      {"tracing: { otlp: \"http://127.0.0.1:4318/a b\" }\n", "tracing.otlp: bad collector URL"},
      {"tracing: { service_name: \"a b\" }\n", "tracing.service_name: expected a name of 1 to 128 visible ASCII"},
      {"tracing: { queue: 0 }\n", "tracing.queue:"},
      {"tracing: { timeout: 2m }\n", "tracing.timeout: at most 1m"},
      {"tracing: { otlp: \"http://127.0.0.1:4318\", tls: { verify: false } }\n",
       "tracing.tls: applies to an https:// otlp collector only"},
      {"tracing: { rate: 1% }\n", "unknown key 'rate' in tracing"},
  };
  for (const Case& c : cases) {
    const LoadResult result = load_tracing(c.section);
    EXPECT_TRUE(has_error(result, 1, c.fragment)) << c.section << all_errors(result);
    EXPECT_EQ(result.errors.size(), 1u) << c.section << all_errors(result);
  }
}

}  // namespace
}  // namespace apigw::config
