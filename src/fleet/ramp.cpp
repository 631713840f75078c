// Guarded ramps: the plan's JSON and the judgement (see ramp.h).
#include "apigw/fleet/ramp.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include <boost/json.hpp>
#include <fmt/format.h>

namespace apigw::fleet {
namespace json = boost::json;

namespace {

// The upper bounds of the latency buckets, in seconds (core::kDefaultLatencyBuckets; the last bucket is +Inf).
constexpr std::array<double, kLatencyBuckets - 1> kBounds{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                          0.1,    0.25,  0.5,    1,     2.5,  5,     10};
// Latencies below this count as this much in the p99 ratio, so that sub-millisecond noise is no regression.
constexpr double kLatencyFloorSeconds = 0.001;
// The error ratio needs this many errors on the split side: one failed request is not a trend.
constexpr std::uint64_t kMinErrorsForRatio = 5;

constexpr std::array<std::string_view, 5> kPhaseNames{"running", "paused", "done", "rolled_back", "aborted"};

std::string percent_text(double rate) { return fmt::format("{:.2f} %", rate * 100); }
std::string ms_text(double seconds) {
  return seconds < 0.01 ? fmt::format("{:.1f} ms", seconds * 1000) : fmt::format("{:.0f} ms", seconds * 1000);
}

std::string duration_text(std::int64_t ms) {
  if (ms % 60'000 == 0 && ms >= 60'000) return fmt::format("{}m", ms / 60'000);
  if (ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
  return fmt::format("{}ms", ms);
}

struct InvalidRamp {
  std::string why;
};

const json::value& member(const json::object& object, std::string_view key) {
  const json::value* value = object.if_contains(key);
  if (value == nullptr) throw InvalidRamp{"the ramp has no " + std::string(key)};
  return *value;
}

std::int64_t integer(const json::value& value, std::string_view what) {
  if (value.is_int64()) return value.get_int64();
  if (value.is_uint64() && value.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(value.get_uint64());
  }
  throw InvalidRamp{std::string(what) + " is not an integer"};
}

double number(const json::value& value, std::string_view what) {
  if (value.is_double()) return value.get_double();
  if (value.is_int64()) return static_cast<double>(value.get_int64());
  if (value.is_uint64()) return static_cast<double>(value.get_uint64());
  throw InvalidRamp{std::string(what) + " is not a number"};
}

std::string text(const json::value& value, std::string_view what) {
  if (!value.is_string()) throw InvalidRamp{std::string(what) + " is not a string"};
  return std::string(value.get_string());
}

json::object figures_value(const SideFigures& figures) {
  json::array latency;
  for (const std::uint64_t count : figures.latency) latency.emplace_back(count);
  return {{"requests", figures.requests},
          {"upstream_errors", figures.upstream_errors},
          {"gateway_errors", figures.gateway_errors},
          {"latency", std::move(latency)}};
}

std::uint64_t count(const json::value& value, std::string_view what) {
  const std::int64_t n = integer(value, what);
  if (n < 0) throw InvalidRamp{std::string(what) + " is negative"};
  return static_cast<std::uint64_t>(n);
}

SideFigures figures_of(const json::value& value, std::string_view what) {
  if (!value.is_object()) throw InvalidRamp{std::string(what) + " is not an object"};
  const json::object& object = value.get_object();
  SideFigures figures;
  figures.requests = count(member(object, "requests"), what);
  figures.upstream_errors = count(member(object, "upstream_errors"), what);
  figures.gateway_errors = count(member(object, "gateway_errors"), what);
  const json::value& latency = member(object, "latency");
  if (!latency.is_array() || latency.get_array().size() != kLatencyBuckets) {
    throw InvalidRamp{std::string(what) + ".latency is not a list of " + std::to_string(kLatencyBuckets) + " counts"};
  }
  for (std::size_t i = 0; i < kLatencyBuckets; ++i) figures.latency[i] = count(latency.get_array()[i], what);
  return figures;
}

}  // namespace

double SideFigures::error_rate() const {
  return requests == 0 ? 0.0 : static_cast<double>(errors()) / static_cast<double>(requests);
}

double SideFigures::p99_seconds() const {
  std::uint64_t total = 0;
  for (const std::uint64_t count : latency) total += count;
  if (total == 0) return 0.0;
  // As Prometheus's histogram_quantile: the bucket that holds the rank, linearly within it.
  const double rank = 0.99 * static_cast<double>(total);
  double below = 0;
  for (std::size_t i = 0; i < latency.size(); ++i) {
    const double in_bucket = static_cast<double>(latency[i]);
    if (below + in_bucket >= rank && in_bucket > 0) {
      if (i == kBounds.size()) return kBounds.back();  // +Inf: the last finite bound
      const double lower = i == 0 ? 0.0 : kBounds[i - 1];
      return lower + (kBounds[i] - lower) * ((rank - below) / in_bucket);
    }
    below += in_bucket;
  }
  return kBounds.back();
}

std::optional<double> AuditFigures::match_rate(std::uint64_t minimum) const {
  if (compared == 0 || compared < minimum) return std::nullopt;
  return static_cast<double>(matched) / static_cast<double>(compared);
}

SideFigures& SideFigures::operator+=(const SideFigures& other) {
  requests += other.requests;
  upstream_errors += other.upstream_errors;
  gateway_errors += other.gateway_errors;
  for (std::size_t i = 0; i < latency.size(); ++i) latency[i] += other.latency[i];
  return *this;
}

std::string_view phase_name(RampPhase phase) { return kPhaseNames[static_cast<std::size_t>(phase)]; }

std::string encode(const RampState& state) {
  const RampPlan& plan = state.plan;
  json::array steps;
  for (const std::string& step : plan.steps) steps.emplace_back(step);
  json::object plan_object{{"route", plan.route},
                           {"steps", std::move(steps)},
                           {"hold_ms", plan.hold_ms},
                           {"min_requests", plan.min_requests},
                           {"max_error_ratio", plan.max_error_ratio},
                           {"max_p99_ratio", plan.max_p99_ratio},
                           {"max_error_rate", plan.max_error_rate}};
  if (plan.min_audit_match) plan_object["min_audit_match"] = *plan.min_audit_match;
  return json::serialize(json::object{{"revision", state.revision},
                                      {"plan", std::move(plan_object)},
                                      {"phase", phase_name(state.phase)},
                                      {"step", state.step},
                                      {"step_since_ms", state.step_since_ms},
                                      {"paused_ms", state.paused_ms},
                                      {"reason", state.reason},
                                      {"author", state.author},
                                      {"why", state.why},
                                      {"updated_at_ms", state.updated_at_ms},
                                      {"checked_at_ms", state.checked_at_ms},
                                      {"route_side", figures_value(state.route_side)},
                                      {"split_side", figures_value(state.split_side)}});
}

std::optional<RampState> decode_ramp(std::string_view text_in, std::string& why) {
  boost::system::error_code error;
  const json::value value = json::parse(text_in, error);
  if (error || !value.is_object()) {
    why = error ? "not JSON: " + error.message() : "the ramp is not an object";
    return std::nullopt;
  }
  try {
    const json::object& object = value.get_object();
    const json::value& plan_value = member(object, "plan");
    if (!plan_value.is_object()) throw InvalidRamp{"plan is not an object"};
    const json::object& plan_object = plan_value.get_object();
    RampState state;
    state.revision = count(member(object, "revision"), "revision");
    RampPlan& plan = state.plan;
    plan.route = text(member(plan_object, "route"), "plan.route");
    const json::value& steps = member(plan_object, "steps");
    if (!steps.is_array()) throw InvalidRamp{"plan.steps is not a list"};
    for (const json::value& step : steps.get_array()) plan.steps.push_back(text(step, "plan.steps item"));
    plan.hold_ms = integer(member(plan_object, "hold_ms"), "plan.hold_ms");
    const std::int64_t min_requests = integer(member(plan_object, "min_requests"), "plan.min_requests");
    if (min_requests < 0) throw InvalidRamp{"plan.min_requests is negative"};
    plan.min_requests = static_cast<std::uint64_t>(min_requests);
    plan.max_error_ratio = number(member(plan_object, "max_error_ratio"), "plan.max_error_ratio");
    plan.max_p99_ratio = number(member(plan_object, "max_p99_ratio"), "plan.max_p99_ratio");
    plan.max_error_rate = number(member(plan_object, "max_error_rate"), "plan.max_error_rate");
    if (const json::value* match = plan_object.if_contains("min_audit_match")) {
      plan.min_audit_match = number(*match, "plan.min_audit_match");
    }
    const std::string phase = text(member(object, "phase"), "phase");
    const auto found = std::find(kPhaseNames.begin(), kPhaseNames.end(), phase);
    if (found == kPhaseNames.end()) throw InvalidRamp{"phase '" + phase + "' is not one apigw knows"};
    state.phase = static_cast<RampPhase>(found - kPhaseNames.begin());
    const std::int64_t step = integer(member(object, "step"), "step");
    if (step < 0 || static_cast<std::size_t>(step) >= std::max<std::size_t>(plan.steps.size(), 1)) {
      throw InvalidRamp{"step is outside the plan"};
    }
    state.step = static_cast<std::size_t>(step);
    state.step_since_ms = integer(member(object, "step_since_ms"), "step_since_ms");
    state.paused_ms = integer(member(object, "paused_ms"), "paused_ms");
    state.reason = text(member(object, "reason"), "reason");
    state.author = text(member(object, "author"), "author");
    state.why = text(member(object, "why"), "why");
    state.updated_at_ms = integer(member(object, "updated_at_ms"), "updated_at_ms");
    state.checked_at_ms = integer(member(object, "checked_at_ms"), "checked_at_ms");
    state.route_side = figures_of(member(object, "route_side"), "route_side");
    state.split_side = figures_of(member(object, "split_side"), "split_side");
    if (std::string problem = check_plan(plan); !problem.empty()) throw InvalidRamp{problem};
    return state;
  } catch (const InvalidRamp& invalid) {
    why = invalid.why;
    return std::nullopt;
  }
}

std::string check_plan(const RampPlan& plan) {
  if (plan.steps.empty()) return "a ramp needs at least one step";
  if (plan.hold_ms <= 0) return "the hold must be longer than zero";
  if (!(plan.max_error_ratio >= 1.0) || !std::isfinite(plan.max_error_ratio)) {
    return "--max-error-ratio must be a number of at least 1";
  }
  if (!(plan.max_p99_ratio >= 1.0) || !std::isfinite(plan.max_p99_ratio)) {
    return "--max-p99-ratio must be a number of at least 1";
  }
  if (!(plan.max_error_rate >= 0.0 && plan.max_error_rate <= 1.0)) return "--max-error-rate must be from 0 % to 100 %";
  if (plan.min_audit_match && !(*plan.min_audit_match >= 0.0 && *plan.min_audit_match <= 1.0)) {
    return "--min-audit-match must be from 0 % to 100 %";
  }
  return {};
}

Verdict judge(const RampState& state, const SideFigures& route_side, const SideFigures& split_side,
              std::optional<double> audit_match, std::int64_t now_ms) {
  const RampPlan& plan = state.plan;
  const std::size_t steps = plan.steps.size();
  const double route_rate = route_side.error_rate();
  const double split_rate = split_side.error_rate();
  const double route_p99 = route_side.p99_seconds();
  const double split_p99 = split_side.p99_seconds();
  const std::string figures =
      fmt::format("errors {} vs {}, p99 {} vs {} ({} and {} requests)", percent_text(split_rate),
                  percent_text(route_rate), ms_text(split_p99), ms_text(route_p99), split_side.requests,
                  route_side.requests);
  const std::string where = fmt::format("step {} of {} ({} %)", state.step + 1, steps, plan.steps[state.step]);
  const bool split_counts = split_side.requests >= plan.min_requests && split_side.requests > 0;
  const bool both_count = split_counts && route_side.requests >= plan.min_requests && route_side.requests > 0;
  // At 100 % the route side serves nobody: nothing to compare with, so the split side is held to the absolute
  // bound alone.
  const bool everyone = std::strtod(plan.steps[state.step].c_str(), nullptr) >= 100.0;
  const bool judged = everyone ? split_counts : both_count;

  // The guards hold at every check, not only at the end of a hold.
  if (split_counts && split_rate > plan.max_error_rate) {
    return {Verdict::Action::kRollBack, fmt::format("{}: error rate {} above {}; {}", where, percent_text(split_rate),
                                                    percent_text(plan.max_error_rate), figures)};
  }
  if (both_count && split_side.errors() >= kMinErrorsForRatio) {
    // A route side without errors counts as one, so that the ratio is finite.
    const double base = std::max(route_rate, 1.0 / static_cast<double>(route_side.requests));
    const double ratio = split_rate / base;
    if (ratio > plan.max_error_ratio) {
      return {Verdict::Action::kRollBack,
              fmt::format("{}: error ratio {:.2f} above {:.2f}; {}", where, ratio, plan.max_error_ratio, figures)};
    }
  }
  if (both_count) {
    const double ratio = std::max(split_p99, kLatencyFloorSeconds) / std::max(route_p99, kLatencyFloorSeconds);
    if (ratio > plan.max_p99_ratio) {
      return {Verdict::Action::kRollBack,
              fmt::format("{}: p99 ratio {:.2f} above {:.2f}; {}", where, ratio, plan.max_p99_ratio, figures)};
    }
  }
  if (plan.min_audit_match && audit_match && *audit_match < *plan.min_audit_match) {
    return {Verdict::Action::kRollBack,
            fmt::format("{}: audit match {} below {}; {}", where, percent_text(*audit_match),
                        percent_text(*plan.min_audit_match), figures)};
  }

  const std::int64_t held = state.paused_ms + std::max<std::int64_t>(0, now_ms - state.step_since_ms);
  if (held < plan.hold_ms) {
    return {Verdict::Action::kWait,
            fmt::format("{}: held {} of {}; {}", where, duration_text(held / 1000 * 1000),
                        duration_text(plan.hold_ms), figures)};
  }
  if (!judged) {
    return {Verdict::Action::kWait, fmt::format("{}: held, waiting for {} requests on {}; {}", where,
                                                plan.min_requests, everyone ? "the split side" : "each side",
                                                figures)};
  }
  if (state.step + 1 >= steps) return {Verdict::Action::kFinish, fmt::format("{} held: done; {}", where, figures)};
  return {Verdict::Action::kAdvance,
          fmt::format("{} held: on to {} %; {}", where, plan.steps[state.step + 1], figures)};
}

}  // namespace apigw::fleet
