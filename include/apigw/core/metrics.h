// Counters, gauges and latency histograms, kept per writer thread ("shard") and summed across shards into the
// Prometheus text format when scraped. An update is a relaxed load and store by the metric's one writer: never a
// lock, never a read-modify-write.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace apigw::core {

// Label names and values, rendered in the order given. The same pairs in another order name the same series.
using Labels = std::vector<std::pair<std::string, std::string>>;

// Upper bounds, in seconds, of the default latency histogram; +Inf is always added.
inline constexpr std::array<double, 14> kDefaultLatencyBuckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                                0.1,    0.25,  0.5,    1,     2.5,  5,     10};

// Every metric below has one writer thread (its registry's owner); any thread may read it at any time.

class Counter {
 public:
  void add(std::uint64_t n = 1) { value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class Gauge {
 public:
  void set(std::int64_t value) { value_.store(value, std::memory_order_relaxed); }
  void add(std::int64_t n) { set(value() + n); }
  void sub(std::int64_t n) { set(value() - n); }
  std::int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> value_{0};
};

// Durations counted in buckets with fixed upper bounds plus +Inf. A duration equal to a bound falls in that bound's
// bucket (Prometheus's `le`); a negative one counts as zero.
class Histogram {
 public:
  // `bounds` in seconds: strictly increasing, from 0 to 9.2e9, distinct at nanosecond resolution; a trailing +Inf
  // is ignored. Throws std::invalid_argument otherwise.
  explicit Histogram(std::span<const double> bounds);

  template <class Rep, class Period>
  void observe(std::chrono::duration<Rep, Period> d) {
    record(std::chrono::duration_cast<std::chrono::nanoseconds>(d));
  }

  std::span<const std::chrono::nanoseconds> bounds() const { return bounds_; }
  // Observations in bucket `i` alone (not cumulative); `i == bounds().size()` is the +Inf bucket.
  std::uint64_t bucket(std::size_t i) const { return buckets_[i].load(std::memory_order_relaxed); }
  // The sum of the buckets, so that it always equals the +Inf bucket when rendered.
  std::uint64_t count() const;
  // Wraps after 584 years of observed time per shard.
  std::uint64_t sum_nanoseconds() const { return sum_ns_.load(std::memory_order_relaxed); }

 private:
  void record(std::chrono::nanoseconds d);

  std::vector<std::chrono::nanoseconds> bounds_;
  std::vector<std::atomic<std::uint64_t>> buckets_;  // bounds_.size() + 1, never resized
  std::atomic<std::uint64_t> sum_ns_{0};
};

// One writer thread's metrics: a worker's shard, or the process-wide set written by the control thread. Creating or
// finding a series takes a lock, so it belongs at start-up and config reload, never on the request path; the
// reference returned lives as long as the registry.
class MetricsRegistry {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // The series `name` + `labels`, created on first use. A name has one type and, for a histogram, one set of bounds:
  // anything else throws std::logic_error, as does an invalid metric or label name. The first `help` given is kept.
  Counter& counter(std::string_view name, std::string_view help, Labels labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, Labels labels = {});
  Histogram& histogram(std::string_view name, std::string_view help, Labels labels = {},
                       std::span<const double> bounds = kDefaultLatencyBuckets);

  // The series `name` + `labels` if it exists (any thread; nothing is created): for readers of another thread's
  // registry. Null when absent or of another type.
  const Counter* find_counter(std::string_view name, Labels labels) const;
  const Histogram* find_histogram(std::string_view name, Labels labels) const;

 private:
  friend std::string render_prometheus(std::span<const MetricsRegistry* const> shards);

  using Metric = std::variant<Counter, Gauge, Histogram>;  // the index is the family's type
  struct Series {
    template <class T, class... Args>
    Series(Labels given, std::in_place_type_t<T> type, Args&&... args)
        : labels(std::move(given)), metric(type, std::forward<Args>(args)...) {}
    Labels labels;  // as first given
    Metric metric;
  };
  struct Family {
    std::size_t type = 0;
    std::string help;
    std::map<Labels, Series> series;  // keyed by the labels sorted by name; map nodes never move
  };

  template <class T, class... Args>
  T& find_or_create(std::string_view name, std::string_view help, Labels labels, Args&&... args);
  template <class T>
  const T* find(std::string_view name, Labels labels) const;

  mutable std::mutex mutex_;  // guards families_ (not the metric values)
  std::map<std::string, Family, std::less<>> families_;
};

// Text exposition format 0.0.4 of every series in `shards`, summing series with the same name and labels. Families
// are sorted by name and series by labels, so equal values give equal text. Safe while the shards' writers run.
// Throws std::logic_error when shards disagree on a name's type or histogram bounds.
std::string render_prometheus(std::span<const MetricsRegistry* const> shards);

}  // namespace apigw::core
