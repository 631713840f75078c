// Tests for core/metrics: series identity and type clashes, histogram bucketing, summing across shards, and the
// exact Prometheus text, including while a writer keeps updating and adding series.
#include "apigw/core/metrics.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace apigw::core {
namespace {

using namespace std::chrono_literals;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string render(std::initializer_list<const MetricsRegistry*> shards) {
  return render_prometheus(std::span<const MetricsRegistry* const>(shards.begin(), shards.size()));
}

TEST(MetricsRegistry, SameNameAndLabelsGiveTheSameSeries) {
  MetricsRegistry registry;
  Counter& a = registry.counter("requests_total", "Requests.", {{"route", "a"}, {"status", "200"}});
  EXPECT_EQ(&registry.counter("requests_total", "Requests.", {{"route", "a"}, {"status", "200"}}), &a);
  EXPECT_EQ(&registry.counter("requests_total", "Requests.", {{"status", "200"}, {"route", "a"}}), &a);
  EXPECT_NE(&registry.counter("requests_total", "Requests.", {{"route", "b"}, {"status", "200"}}), &a);
  EXPECT_NE(&registry.counter("requests_total", "Requests."), &a);
  Histogram& h = registry.histogram("latency_seconds", "Latency.");
  EXPECT_EQ(&registry.histogram("latency_seconds", "Latency."), &h);
}

TEST(MetricsRegistry, ReferencesStayValidAsSeriesAreAdded) {
  MetricsRegistry registry;
  Counter& first = registry.counter("c", "", {{"i", "0"}});
  first.add(5);
  for (int i = 1; i < 1000; ++i) registry.counter("c", "", {{"i", std::to_string(i)}}).add();
  for (int i = 0; i < 100; ++i) registry.gauge("g" + std::to_string(i), "").set(i);
  EXPECT_EQ(&registry.counter("c", "", {{"i", "0"}}), &first);
  EXPECT_EQ(first.value(), 5u);
}

TEST(MetricsRegistry, NameWithTwoTypesThrows) {
  MetricsRegistry registry;
  registry.counter("x", "");
  EXPECT_THROW(registry.gauge("x", ""), std::logic_error);
  EXPECT_THROW(registry.histogram("x", ""), std::logic_error);
  EXPECT_THROW(registry.gauge("x", "", {{"a", "b"}}), std::logic_error);
  registry.histogram("h", "", {}, std::array{0.1, 1.0});
  EXPECT_THROW(registry.histogram("h", "", {{"a", "b"}}), std::logic_error);  // other bounds
  EXPECT_NO_THROW(registry.histogram("h", "", {{"a", "b"}}, std::array{0.1, 1.0}));
}

TEST(MetricsRegistry, RefusesInvalidNamesAndBounds) {
  MetricsRegistry registry;
  EXPECT_THROW(registry.counter("", ""), std::logic_error);
  EXPECT_THROW(registry.counter("1x", ""), std::logic_error);
  EXPECT_THROW(registry.counter("a-b", ""), std::logic_error);
  EXPECT_THROW(registry.counter("x", "", {{"a:b", "1"}}), std::logic_error);
  EXPECT_THROW(registry.counter("x", "", {{"__name", "1"}}), std::logic_error);
  EXPECT_THROW(registry.counter("x", "", {{"a", "1"}, {"a", "2"}}), std::logic_error);
  EXPECT_THROW(registry.histogram("h", "", {{"le", "1"}}), std::logic_error);
  EXPECT_THROW(registry.histogram("h", "", {}, std::array{0.5, 0.1}), std::logic_error);
  EXPECT_THROW(registry.histogram("h", "", {}, std::array{0.1, 0.1}), std::logic_error);
  EXPECT_THROW(registry.histogram("h", "", {}, std::array{-1.0}), std::logic_error);
  EXPECT_THROW(registry.histogram("h", "", {}, std::array{kNaN}), std::logic_error);
  EXPECT_THROW(registry.histogram("h", "", {}, std::array{kInf, 1.0}), std::logic_error);
  EXPECT_EQ(render({&registry}), "");  // nothing refused was registered
  EXPECT_EQ(registry.histogram("h", "", {}, std::array{1.0, kInf}).bounds().size(), 1u);
  registry.counter("ns:sub_total", "", {{"_a", "1"}});
}

TEST(MetricsHistogram, ValueOnABoundFallsInThatBucket) {
  Histogram h(std::array{0.001, 0.005, 1.0});
  h.observe(0ns);
  h.observe(1ms);           // bucket 0: le 0.001
  h.observe(1ms + 1ns);     // bucket 1
  h.observe(5ms);           // bucket 1: le 0.005
  h.observe(1s);            // bucket 2
  h.observe(1s + 1ns);      // +Inf
  h.observe(-3ms);          // counts as zero
  const std::array<std::uint64_t, 4> expected{3, 2, 1, 1};
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(h.bucket(i), expected[i]) << i;
  EXPECT_EQ(h.count(), 7u);
  EXPECT_EQ(h.sum_nanoseconds(), 2'007'000'002u);
}

TEST(MetricsHistogram, AcceptsAnyDuration) {
  Histogram h(kDefaultLatencyBuckets);
  h.observe(std::chrono::microseconds(500));                  // le 0.0005
  h.observe(std::chrono::duration<double>(0.0025));           // le 0.0025
  h.observe(std::chrono::seconds(60));                        // +Inf
  EXPECT_EQ(h.bucket(0), 1u);
  EXPECT_EQ(h.bucket(2), 1u);
  EXPECT_EQ(h.bucket(kDefaultLatencyBuckets.size()), 1u);
  EXPECT_EQ(h.sum_nanoseconds(), 60'003'000'000u);
}

TEST(MetricsRender, ExactTextOfASmallRegistry) {
  MetricsRegistry registry;
  registry.counter("apigw_requests_total", "Requests received.", {{"route", "users"}, {"status", "200"}}).add(3);
  registry.counter("apigw_requests_total", "Requests received.", {{"route", "orders"}, {"status", "200"}}).add();
  registry.gauge("apigw_connections", "Open client connections.").set(7);
  Histogram& h = registry.histogram("apigw_upstream_seconds", "Upstream latency.", {{"route", "users"}},
                                    std::array{0.005, 0.1});
  h.observe(2ms);
  h.observe(100ms);
  h.observe(3s);
  EXPECT_EQ(render({&registry}),
            "# HELP apigw_connections Open client connections.\n"
            "# TYPE apigw_connections gauge\n"
            "apigw_connections 7\n"
            "# HELP apigw_requests_total Requests received.\n"
            "# TYPE apigw_requests_total counter\n"
            "apigw_requests_total{route=\"orders\",status=\"200\"} 1\n"
            "apigw_requests_total{route=\"users\",status=\"200\"} 3\n"
            "# HELP apigw_upstream_seconds Upstream latency.\n"
            "# TYPE apigw_upstream_seconds histogram\n"
            "apigw_upstream_seconds_bucket{route=\"users\",le=\"0.005\"} 1\n"
            "apigw_upstream_seconds_bucket{route=\"users\",le=\"0.1\"} 2\n"
            "apigw_upstream_seconds_bucket{route=\"users\",le=\"+Inf\"} 3\n"
            "apigw_upstream_seconds_sum{route=\"users\"} 3.102\n"
            "apigw_upstream_seconds_count{route=\"users\"} 3\n");
}

TEST(MetricsRender, CountersAndGaugesSumAcrossShards) {
  MetricsRegistry a;
  MetricsRegistry b;
  a.counter("hits_total", "Hits.", {{"route", "x"}}).add(2);
  b.counter("hits_total", "Hits.", {{"route", "x"}}).add(40);
  b.counter("hits_total", "Hits.", {{"route", "y"}}).add(1);
  a.gauge("inflight", "In flight.").set(5);
  b.gauge("inflight", "In flight.").set(-2);
  Gauge& g = a.gauge("open", "Open.");
  g.add(10);
  g.sub(4);
  EXPECT_EQ(g.value(), 6);
  EXPECT_EQ(render({&a, &b}),
            "# HELP hits_total Hits.\n"
            "# TYPE hits_total counter\n"
            "hits_total{route=\"x\"} 42\n"
            "hits_total{route=\"y\"} 1\n"
            "# HELP inflight In flight.\n"
            "# TYPE inflight gauge\n"
            "inflight 3\n"
            "# HELP open Open.\n"
            "# TYPE open gauge\n"
            "open 6\n");
  b.gauge("inflight", "In flight.").sub(10);
  EXPECT_NE(render({&a, &b}).find("\ninflight -7\n"), std::string::npos);
}

TEST(MetricsRender, HistogramsSumCumulativelyAcrossShards) {
  MetricsRegistry a;
  MetricsRegistry b;
  const std::array bounds{0.0005, 0.25, 2.5};
  a.histogram("t_seconds", "T.", {}, bounds).observe(500us);
  a.histogram("t_seconds", "T.", {}, bounds).observe(200ms);
  b.histogram("t_seconds", "T.", {}, bounds).observe(999'999'999ns);
  b.histogram("t_seconds", "T.", {}, bounds).observe(20s);
  EXPECT_EQ(render({&a, &b}),
            "# HELP t_seconds T.\n"
            "# TYPE t_seconds histogram\n"
            "t_seconds_bucket{le=\"0.0005\"} 1\n"
            "t_seconds_bucket{le=\"0.25\"} 2\n"
            "t_seconds_bucket{le=\"2.5\"} 3\n"
            "t_seconds_bucket{le=\"+Inf\"} 4\n"
            "t_seconds_sum 21.200499999\n"
            "t_seconds_count 4\n");
}

TEST(MetricsRender, ShardsThatDisagreeThrow) {
  MetricsRegistry a;
  MetricsRegistry b;
  a.counter("x", "");
  b.gauge("x", "");
  EXPECT_THROW(render({&a, &b}), std::logic_error);
  MetricsRegistry c;
  MetricsRegistry d;
  c.histogram("h", "", {}, std::array{1.0});
  d.histogram("h", "", {}, std::array{2.0});
  EXPECT_THROW(render({&c, &d}), std::logic_error);
}

TEST(MetricsRender, EscapesLabelValuesAndHelp) {
  MetricsRegistry registry;
  registry.counter("c", "A \\ help\nwith \"quotes\".", {{"path", "/a\"b\\c\nd"}}).add();
  EXPECT_EQ(render({&registry}),
            "# HELP c A \\\\ help\\nwith \"quotes\".\n"
            "# TYPE c counter\n"
            "c{path=\"/a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(MetricsRender, NothingRegisteredRendersNothing) {
  MetricsRegistry registry;
  EXPECT_EQ(render({}), "");
  EXPECT_EQ(render({&registry}), "");
}

// The admin thread renders while the worker owning the shard updates a counter and adds series.
TEST(MetricsRender, WhileTheWriterRunsValuesOnlyGrow) {
  MetricsRegistry shard;
  Counter& hits = shard.counter("hits_total", "Hits.");
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    Histogram& latency = shard.histogram("latency_seconds", "Latency.");
    for (std::uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
      hits.add();
      latency.observe(std::chrono::microseconds(i % 20'000));
      if (i % 64 == 0 && i / 64 < 500) shard.gauge("series", "Series.", {{"i", std::to_string(i / 64)}}).set(1);
    }
  });
  const std::string prefix = "\nhits_total ";
  std::uint64_t last = 0;
  // Until the writer has added all its series, so that rendering overlaps both kinds of writes.
  for (int round = 0; round < 50 || last < 64 * 500; ++round) {
    const std::string text = render({&shard});
    const auto at = text.find(prefix);
    ASSERT_NE(at, std::string::npos);
    const std::uint64_t value = std::stoull(text.substr(at + prefix.size()));
    EXPECT_GE(value, last);
    last = value;
  }
  stop = true;
  writer.join();
  EXPECT_NE(render({&shard}).find(prefix + std::to_string(hits.value()) + "\n"), std::string::npos);
}

}  // namespace
}  // namespace apigw::core
