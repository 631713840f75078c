// Metric series creation and lookup, histogram bucketing, and the Prometheus text rendering (see metrics.h).
#include "apigw/core/metrics.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <stdexcept>
#include <type_traits>

#include <fmt/format.h>

namespace apigw::core {
namespace {

constexpr std::uint64_t kNanosPerSecond = 1'000'000'000;
constexpr const char* kTypeNames[] = {"counter", "gauge", "histogram"};  // in MetricsRegistry::Metric's order

std::vector<std::chrono::nanoseconds> to_bounds(std::span<const double> seconds) {
  std::vector<std::chrono::nanoseconds> bounds;
  for (std::size_t i = 0; i < seconds.size(); ++i) {
    const double s = seconds[i];
    if (i + 1 == seconds.size() && std::isinf(s) && s > 0) break;
    if (!(s >= 0 && s <= 9.2e9)) throw std::invalid_argument(fmt::format("histogram bound {} out of range", s));
    const std::chrono::nanoseconds bound(std::llround(s * 1e9));
    if (!bounds.empty() && bound <= bounds.back()) {
      throw std::invalid_argument(fmt::format("histogram bound {} does not increase", s));
    }
    bounds.push_back(bound);
  }
  return bounds;
}

bool valid_name(std::string_view name, bool allow_colon) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::ranges::all_of(name, [&](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           (allow_colon && c == ':');
  });
}

// `sorted` is the series' labels sorted by name, so a repeated name sits next to itself.
void check_names(std::string_view name, const Labels& sorted, bool histogram) {
  if (!valid_name(name, true)) throw std::invalid_argument(fmt::format("invalid metric name \"{}\"", name));
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    const std::string& label = sorted[i].first;
    if (!valid_name(label, false) || label.starts_with("__") || (histogram && label == "le") ||
        (i > 0 && label == sorted[i - 1].first)) {
      throw std::invalid_argument(fmt::format("metric {}: invalid or repeated label name \"{}\"", name, label));
    }
  }
}

// One series summed over the shards.
struct SeriesSum {
  Labels labels;
  std::uint64_t value = 0;  // counters; gauges in two's complement, so negative values add correctly
  std::vector<std::uint64_t> buckets{};
  std::uint64_t sum_seconds = 0;  // seconds and nanoseconds apart, so shards' sums cannot overflow together
  std::uint64_t sum_nanos = 0;
};

struct FamilySum {
  std::size_t type = 0;
  std::string help;
  std::vector<std::chrono::nanoseconds> bounds;
  std::map<Labels, SeriesSum> series;
};

using Out = std::back_insert_iterator<std::string>;

// Seconds as a decimal without trailing zeros: "0.0005", "1", "2.5".
void write_seconds(Out out, std::uint64_t seconds, std::uint64_t nanos) {
  if (nanos == 0) {
    fmt::format_to(out, "{}", seconds);
    return;
  }
  int digits = 9;
  for (; nanos % 10 == 0; nanos /= 10) --digits;
  fmt::format_to(out, "{}.{:0{}}", seconds, nanos, digits);
}

void write_escaped(Out out, std::string_view text, bool quote) {
  for (const char c : text) {
    if (c == '\\') {
      fmt::format_to(out, "\\\\");
    } else if (c == '\n') {
      fmt::format_to(out, "\\n");
    } else if (c == '"' && quote) {
      fmt::format_to(out, "\\\"");
    } else {
      *out++ = c;
    }
  }
}

// `{a="1",b="2"}`, with `le` last when given; nothing at all when there are no labels.
void write_series(Out out, std::string_view name, std::string_view suffix, const Labels& labels,
                  const std::string* le = nullptr) {
  fmt::format_to(out, "{}{}", name, suffix);
  if (labels.empty() && le == nullptr) return;
  char separator = '{';
  for (const auto& [label, value] : labels) {
    fmt::format_to(out, "{}{}=\"", separator, label);
    write_escaped(out, value, true);
    *out++ = '"';
    separator = ',';
  }
  if (le != nullptr) fmt::format_to(out, "{}le=\"{}\"", separator, *le);
  *out++ = '}';
}

void write_histogram(Out out, std::string_view name, const FamilySum& family, const SeriesSum& series) {
  std::uint64_t cumulative = 0;
  std::string le;
  for (std::size_t i = 0; i < series.buckets.size(); ++i) {
    cumulative += series.buckets[i];
    le.clear();
    if (i < family.bounds.size()) {
      const auto ns = static_cast<std::uint64_t>(family.bounds[i].count());
      write_seconds(std::back_inserter(le), ns / kNanosPerSecond, ns % kNanosPerSecond);
    } else {
      le = "+Inf";
    }
    write_series(out, name, "_bucket", series.labels, &le);
    fmt::format_to(out, " {}\n", cumulative);
  }
  write_series(out, name, "_sum", series.labels);
  *out++ = ' ';
  write_seconds(out, series.sum_seconds, series.sum_nanos);
  *out++ = '\n';
  write_series(out, name, "_count", series.labels);
  fmt::format_to(out, " {}\n", cumulative);
}

}  // namespace

Histogram::Histogram(std::span<const double> bounds) : bounds_(to_bounds(bounds)), buckets_(bounds_.size() + 1) {}

std::uint64_t Histogram::count() const {
  std::uint64_t count = 0;
  for (const auto& bucket : buckets_) count += bucket.load(std::memory_order_relaxed);
  return count;
}

void Histogram::record(std::chrono::nanoseconds d) {
  d = std::max(d, std::chrono::nanoseconds::zero());
  auto& bucket = buckets_[static_cast<std::size_t>(std::ranges::lower_bound(bounds_, d) - bounds_.begin())];
  bucket.store(bucket.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  sum_ns_.store(sum_ns_.load(std::memory_order_relaxed) + static_cast<std::uint64_t>(d.count()),
                std::memory_order_relaxed);
}

template <class T, class... Args>
T& MetricsRegistry::find_or_create(std::string_view name, std::string_view help, Labels labels, Args&&... args) {
  constexpr std::size_t type = std::is_same_v<T, Counter> ? 0 : std::is_same_v<T, Gauge> ? 1 : 2;
  static_assert(std::is_same_v<std::variant_alternative_t<type, Metric>, T>);
  // Everything that can throw runs before the maps change, so a refused call leaves no empty family behind.
  Labels key = labels;
  std::ranges::sort(key);
  check_names(name, key, type == 2);
  std::vector<std::chrono::nanoseconds> bounds;
  if constexpr (type == 2) bounds = to_bounds(args...);

  std::lock_guard lock(mutex_);
  auto family = families_.find(name);
  if (family == families_.end()) {
    family = families_.emplace(std::string(name), Family{type, std::string(help), {}}).first;
  } else if (family->second.type != type) {
    throw std::logic_error(
        fmt::format("metric {} is a {}, not a {}", name, kTypeNames[family->second.type], kTypeNames[type]));
  }
  auto& series = family->second.series;
  if constexpr (type == 2) {
    if (!series.empty() && !std::ranges::equal(std::get<Histogram>(series.begin()->second.metric).bounds(), bounds)) {
      throw std::logic_error(fmt::format("histogram {} already has other bounds", name));
    }
  }
  auto found = series.find(key);
  if (found == series.end()) {
    found = series.try_emplace(std::move(key), std::move(labels), std::in_place_type<T>, args...).first;
  }
  return std::get<T>(found->second.metric);
}

Counter& MetricsRegistry::counter(std::string_view name, std::string_view help, Labels labels) {
  return find_or_create<Counter>(name, help, std::move(labels));
}

Gauge& MetricsRegistry::gauge(std::string_view name, std::string_view help, Labels labels) {
  return find_or_create<Gauge>(name, help, std::move(labels));
}

Histogram& MetricsRegistry::histogram(std::string_view name, std::string_view help, Labels labels,
                                      std::span<const double> bounds) {
  return find_or_create<Histogram>(name, help, std::move(labels), bounds);
}

template <class T>
const T* MetricsRegistry::find(std::string_view name, Labels labels) const {
  std::ranges::sort(labels);
  std::lock_guard lock(mutex_);
  const auto family = families_.find(name);
  if (family == families_.end()) return nullptr;
  const auto found = family->second.series.find(labels);
  if (found == family->second.series.end()) return nullptr;
  return std::get_if<T>(&found->second.metric);
}

const Counter* MetricsRegistry::find_counter(std::string_view name, Labels labels) const {
  return find<Counter>(name, std::move(labels));
}

const Histogram* MetricsRegistry::find_histogram(std::string_view name, Labels labels) const {
  return find<Histogram>(name, std::move(labels));
}

std::string render_prometheus(std::span<const MetricsRegistry* const> shards) {
  std::map<std::string, FamilySum, std::less<>> families;
  for (const MetricsRegistry* shard : shards) {
    std::lock_guard lock(shard->mutex_);
    for (const auto& [name, family] : shard->families_) {
      auto [sum, added] = families.try_emplace(name, FamilySum{family.type, family.help, {}, {}});
      if (sum->second.type != family.type) {
        throw std::logic_error(fmt::format("metric {} is a {} in one shard and a {} in another", name,
                                           kTypeNames[sum->second.type], kTypeNames[family.type]));
      }
      if (added && family.type == 2) {  // a family always has a series
        const auto bounds = std::get<Histogram>(family.series.begin()->second.metric).bounds();
        sum->second.bounds.assign(bounds.begin(), bounds.end());
      }
      for (const auto& [key, series] : family.series) {
        const auto total = sum->second.series.try_emplace(key, SeriesSum{series.labels}).first;
        if (const auto* counter = std::get_if<Counter>(&series.metric)) {
          total->second.value += counter->value();
        } else if (const auto* gauge = std::get_if<Gauge>(&series.metric)) {
          total->second.value += static_cast<std::uint64_t>(gauge->value());
        } else {
          const auto& histogram = std::get<Histogram>(series.metric);
          if (!std::ranges::equal(sum->second.bounds, histogram.bounds())) {
            throw std::logic_error(fmt::format("histogram {} has other bounds in another shard", name));
          }
          total->second.buckets.resize(histogram.bounds().size() + 1);
          for (std::size_t i = 0; i < total->second.buckets.size(); ++i) {
            total->second.buckets[i] += histogram.bucket(i);
          }
          const std::uint64_t ns = histogram.sum_nanoseconds();
          total->second.sum_nanos += ns % kNanosPerSecond;
          total->second.sum_seconds += ns / kNanosPerSecond + total->second.sum_nanos / kNanosPerSecond;
          total->second.sum_nanos %= kNanosPerSecond;
        }
      }
    }
  }

  std::string text;
  auto out = std::back_inserter(text);
  for (const auto& [name, family] : families) {
    fmt::format_to(out, "# HELP {} ", name);
    write_escaped(out, family.help, false);
    fmt::format_to(out, "\n# TYPE {} {}\n", name, kTypeNames[family.type]);
    for (const auto& [key, series] : family.series) {
      if (family.type == 2) {
        write_histogram(out, name, family, series);
        continue;
      }
      write_series(out, name, "", series.labels);
      if (family.type == 0) {
        fmt::format_to(out, " {}\n", series.value);
      } else {
        fmt::format_to(out, " {}\n", static_cast<std::int64_t>(series.value));
      }
    }
  }
  return text;
}

}  // namespace apigw::core
