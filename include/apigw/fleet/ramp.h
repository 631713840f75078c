// Guarded ramps: a route's split raised step by step by the fleet itself while the split side is as healthy as the
// route's own, and taken back to 0 % at once when it is not. The plan, its progress, the per-side figures of a
// window and the judgement on them; pure data, JSON and arithmetic, no I/O.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace apigw::fleet {

// The latency buckets every worker keeps (core::kDefaultLatencyBuckets), plus +Inf.
inline constexpr std::size_t kLatencyBuckets = 15;

// One side's figures over a window: requests, the 5xx the upstream answered, the 502/503/504 apigw answered itself
// (it could not get an answer), and the latency histogram (counts per bucket, not cumulative).
struct SideFigures {
  std::uint64_t requests = 0;
  std::uint64_t upstream_errors = 0;
  std::uint64_t gateway_errors = 0;
  std::array<std::uint64_t, kLatencyBuckets> latency{};
  std::uint64_t errors() const { return upstream_errors + gateway_errors; }
  double error_rate() const;  // errors / requests; 0 without requests
  // The upper bound of the bucket that holds the 99th percentile, in seconds (the last finite bound for +Inf);
  // 0 without requests.
  double p99_seconds() const;
  SideFigures& operator+=(const SideFigures& other);
  bool operator==(const SideFigures&) const = default;
};

// The audit's records of a route over a window (its shadow compared with the route's answers): how many were
// compared (both sides answered) and how many of those matched.
struct AuditFigures {
  std::uint64_t compared = 0;
  std::uint64_t matched = 0;
  // matched / compared once at least `minimum` were compared; nullopt before.
  std::optional<double> match_rate(std::uint64_t minimum) const;
  bool operator==(const AuditFigures&) const = default;
};

struct RampPlan {
  std::string route;
  std::vector<std::string> steps;  // percents, increasing, as the YAML writes them
  std::int64_t hold_ms = 600'000;
  std::uint64_t min_requests = 500;      // each side, over a hold, before it is judged
  double max_error_ratio = 1.5;          // split side's error rate / route side's
  double max_p99_ratio = 1.3;            // split side's p99 / route side's
  double max_error_rate = 0.01;          // split side's error rate, absolute
  std::optional<double> min_audit_match; // the audit's match rate on the route, when it is shadowed
  bool operator==(const RampPlan&) const = default;
};

enum class RampPhase { kRunning, kPaused, kDone, kRolledBack, kAborted };
std::string_view phase_name(RampPhase phase);  // "running", "paused", "done", "rolled_back", "aborted"

struct RampState {
  std::uint64_t revision = 0;         // +1 at every write (compare-and-set between the judge and `apigw ctl`)
  RampPlan plan;
  RampPhase phase = RampPhase::kRunning;
  std::size_t step = 0;               // index into plan.steps of the step in force (or being written)
  std::int64_t step_since_ms = 0;     // when that step took effect (its change's effective_at)
  std::int64_t paused_ms = 0;         // hold time already spent when paused (resume continues from it)
  std::string reason;                 // the last judgement, for people
  std::string author;                 // who started it (user@host)
  std::string why;
  std::int64_t updated_at_ms = 0;
  std::int64_t checked_at_ms = 0;     // the judge's last check: a gap longer than a few checks is not held
  SideFigures route_side;             // the figures of that check, since the step began
  SideFigures split_side;
  bool operator==(const RampState&) const = default;
};

std::string encode(const RampState& state);
std::optional<RampState> decode_ramp(std::string_view json, std::string& why);

// What the judge does with a running ramp at `now_ms`, given the figures of both sides since the step began.
struct Verdict {
  enum class Action { kWait, kAdvance, kRollBack, kFinish };
  Action action = Action::kWait;
  std::string reason;  // "step 3 of 6, errors 0.12 % vs 0.10 %, p99 41 ms vs 38 ms"
};
Verdict judge(const RampState& state, const SideFigures& route_side, const SideFigures& split_side,
              std::optional<double> audit_match, std::int64_t now_ms);

// Checks a plan as `apigw ctl ramp` takes it; empty when valid.
std::string check_plan(const RampPlan& plan);

}  // namespace apigw::fleet
