// Guarded ramps on one instance (see ramp_runner.h).
#include "ramp_runner.h"

#include <set>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "apigw/fleet/watcher.h"
#include "apigw/net/no_throw.h"
#include "apigw/redis/client_options.h"

namespace apigw::app {
namespace asio = boost::asio;

namespace {
using net::kNoThrow;
// The lease outlives a few missed renewals; a check more than two intervals after the last one follows a gap (Redis
// or the judge away), which is not held.
constexpr int kLeaseChecks = 3;
constexpr int kGapChecks = 2;
constexpr int kWriteAttempts = 3;
// The audit's match rate guards a ramp once this many records compared both sides in the window.
constexpr std::uint64_t kMinAuditRecords = 20;
constexpr std::array<fleet::RampPhase, 5> kPhases{fleet::RampPhase::kRunning, fleet::RampPhase::kPaused,
                                                  fleet::RampPhase::kDone, fleet::RampPhase::kRolledBack,
                                                  fleet::RampPhase::kAborted};

std::int64_t interval_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(kRampCheckInterval).count();
}

fleet::SideFigures minus(const fleet::SideFigures& now, const fleet::SideFigures& before) {
  fleet::SideFigures delta;
  delta.requests = now.requests - before.requests;
  delta.upstream_errors = now.upstream_errors - before.upstream_errors;
  delta.gateway_errors = now.gateway_errors - before.gateway_errors;
  for (std::size_t i = 0; i < delta.latency.size(); ++i) delta.latency[i] = now.latency[i] - before.latency[i];
  return delta;
}

bool counted_less(const fleet::SideFigures& now, const fleet::SideFigures& before) {
  // Counters never go down; a smaller one means the worker's series were made anew: start again from them.
  return now.requests < before.requests || now.upstream_errors < before.upstream_errors ||
         now.gateway_errors < before.gateway_errors;
}
}  // namespace

asio::awaitable<SplitChange> write_split(fleet::Store& store, std::string route, std::string percent,
                                        std::chrono::milliseconds delay, std::string author, std::string why) {
  SplitChange out;
  for (int attempt = 0; attempt < kWriteAttempts; ++attempt) {
    const fleet::ReadResult read = co_await store.read();
    if ((out.failure = read.failure)) co_return out;
    const fleet::State current = read.state.value_or(fleet::State{});
    fleet::Overrides next = current.overrides;
    next.routes[route].split = percent;
    const std::vector<std::string> items = fleet::describe_change(current.overrides, next);
    if (items.empty()) {
      out.state = current;
      co_return out;
    }
    const fleet::TimeResult clock = co_await store.now();
    if ((out.failure = clock.failure)) co_return out;
    fleet::State state;
    state.version = current.version + 1;
    state.written_at_ms = clock.now_ms;
    state.effective_at_ms = clock.now_ms + delay.count();
    state.author = author;
    state.why = why;
    state.change = fleet::join_change(items);
    state.overrides = std::move(next);
    state.previous_version = current.version;
    state.previous = current.overrides;
    const fleet::WriteResult written = co_await store.write(state, current.version);
    if ((out.failure = written.failure)) co_return out;
    if (written.written) {
      out.state = std::move(state);
      co_return out;
    }
    // Another change landed first: laid over it instead.
  }
  out.failure = {"redis", fmt::format("the split of route '{}' could not be written: other changes kept landing "
                                      "first",
                                      route)};
  co_return out;
}

struct RampRunner::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& loop_in, core::MetricsRegistry& metrics_in, CountFigures count_in)
      : loop(loop_in), metrics(metrics_in), count(std::move(count_in)) {}

  asio::awaitable<void> run() {
    while (!stopped) {
      co_await round();
      if (stopped) break;
      timer.expires_after(kRampCheckInterval);
      co_await timer.async_wait(kNoThrow);
    }
  }

  asio::awaitable<void> round() {
    const fleet::RampsResult read = co_await store->ramps();
    if (stopped) co_return;
    if (read.failure) {
      failure(read.failure);
      judging = false;
      co_return;
    }
    ramps = read.ramps;
    const std::int64_t now = fleet::unix_ms();
    std::set<std::string> active;
    for (const fleet::RampState& ramp : ramps) {
      if (ramp.phase == fleet::RampPhase::kRunning || ramp.phase == fleet::RampPhase::kPaused) {
        active.insert(ramp.plan.route);
        co_await publish(ramp.plan.route, now);
      }
    }
    // A route's next ramp starts counting afresh, not from where its last one stopped.
    std::erase_if(published, [&](const auto& entry) { return !active.contains(entry.first); });
    const fleet::LeaseResult lease =
        co_await store->lease(id, std::chrono::milliseconds(interval_ms() * kLeaseChecks));
    if (stopped) co_return;
    if (lease.failure) failure(lease.failure);
    if (lease.held && !judging) spdlog::info("control: this instance judges the fleet's ramps");
    judging = lease.held;
    if (judging) {
      for (fleet::RampState& ramp : ramps) {
        if (ramp.phase == fleet::RampPhase::kRunning) co_await judge(ramp, now);
        if (stopped) co_return;
      }
    }
    show();
  }

  // This instance's counts since its last publication, added to the current bucket.
  asio::awaitable<void> publish(const std::string& route, std::int64_t now) {
    Counted counted;
    count(route, counted.route_side, counted.split_side, counted.audit);
    auto [last, first] = published.try_emplace(route, counted);
    // What was counted before the ramp was seen belongs to no window of it.
    if (first) co_return;
    Counted& before = last->second;
    if (counted_less(counted.route_side, before.route_side) || counted_less(counted.split_side, before.split_side) ||
        counted.audit.compared < before.audit.compared) {
      before = counted;
      co_return;
    }
    const fleet::SideFigures route_delta = minus(counted.route_side, before.route_side);
    const fleet::SideFigures split_delta = minus(counted.split_side, before.split_side);
    const fleet::AuditFigures audit_delta{counted.audit.compared - before.audit.compared,
                                          counted.audit.matched - before.audit.matched};
    if (route_delta.requests == 0 && split_delta.requests == 0 && audit_delta.compared == 0) co_return;
    const fleet::Failure failed = co_await store->add_figures(route, now, route_delta, split_delta, audit_delta);
    if (failed) {
      failure(failed);  // kept for the next try
      co_return;
    }
    before = counted;
  }

  asio::awaitable<void> judge(fleet::RampState ramp, std::int64_t now) {
    if (ramp.step_since_ms > now) co_return;  // the step is not in effect yet
    const std::uint64_t revision = ramp.revision;
    // A gap in the checks (Redis or the judge away) is not held: the hold goes on from where it was.
    const std::int64_t last = std::max(ramp.checked_at_ms, ramp.step_since_ms);
    if (now - last > interval_ms() * kGapChecks) {
      ramp.paused_ms += std::max<std::int64_t>(0, ramp.checked_at_ms - ramp.step_since_ms);
      ramp.step_since_ms = now;
      spdlog::info("control: ramp of route '{}' goes on after {} ms without checks (not held)", ramp.plan.route,
                   now - last);
    }
    const fleet::FiguresResult figures = co_await store->figures(ramp.plan.route, ramp.step_since_ms, now);
    if (figures.failure) co_return failure(figures.failure);
    const fleet::Verdict verdict = fleet::judge(ramp, figures.route_side, figures.split_side,
                                                figures.audit.match_rate(kMinAuditRecords), now);
    ramp.checked_at_ms = now;
    ramp.updated_at_ms = now;
    ramp.route_side = figures.route_side;
    ramp.split_side = figures.split_side;
    ramp.reason = verdict.reason;
    const std::string author = "ramp@" + id;
    const auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(control.delay);
    using Action = fleet::Verdict::Action;
    if (verdict.action == Action::kAdvance) {
      const std::string& next = ramp.plan.steps[ramp.step + 1];
      const SplitChange change =
          co_await write_split(*store, ramp.plan.route, next, delay, author, "ramp: " + verdict.reason);
      if (change.failure) co_return failure(change.failure);
      ramp.step += 1;
      ramp.step_since_ms = change.state.effective_at_ms;
      ramp.paused_ms = 0;
      spdlog::info("control: ramp of route '{}': {}", ramp.plan.route, verdict.reason);
    } else if (verdict.action == Action::kRollBack) {
      const SplitChange change =
          co_await write_split(*store, ramp.plan.route, "0", delay, author, "ramp rolled back: " + verdict.reason);
      if (change.failure) co_return failure(change.failure);
      ramp.phase = fleet::RampPhase::kRolledBack;
      spdlog::error("control: ramp of route '{}' rolled back to 0 %: {}", ramp.plan.route, verdict.reason);
    } else if (verdict.action == Action::kFinish) {
      ramp.phase = fleet::RampPhase::kDone;
      spdlog::info("control: ramp of route '{}' is done: {}", ramp.plan.route, verdict.reason);
    }
    const fleet::WriteResult written = co_await store->write_ramp(ramp, revision);
    if (written.failure) co_return failure(written.failure);
    // Refused: `apigw ctl` changed the ramp meanwhile (paused, aborted); its word stands, the next check sees it.
  }

  void show() {
    for (const fleet::RampState& ramp : ramps) {
      const std::string& route = ramp.plan.route;
      metrics.gauge("apigw_ramp_step", "The step a route's guarded ramp is at (1 for the first)", {{"route", route}})
          .set(static_cast<std::int64_t>(ramp.step + 1));
      for (const fleet::RampPhase phase : kPhases) {
        metrics.gauge("apigw_ramp_state", "1 for the phase each route's guarded ramp is in",
                      {{"route", route}, {"state", std::string(fleet::phase_name(phase))}})
            .set(ramp.phase == phase ? 1 : 0);
      }
      constexpr std::string_view kRateHelp =
          "The error rate of each side of a ramped route at the judge's last check, since the step began, in parts "
          "per million";
      metrics.gauge("apigw_ramp_error_rate_ppm", kRateHelp, {{"route", route}, {"side", "route"}})
          .set(static_cast<std::int64_t>(ramp.route_side.error_rate() * 1e6));
      metrics.gauge("apigw_ramp_error_rate_ppm", kRateHelp, {{"route", route}, {"side", "split"}})
          .set(static_cast<std::int64_t>(ramp.split_side.error_rate() * 1e6));
    }
  }

  void failure(const fleet::Failure& failure) {
    metrics.counter("apigw_control_errors_total", "", {{"reason", failure.reason}}).add();
    const std::int64_t now = fleet::unix_ms();
    if (now - last_logged_ms >= 60'000) {
      spdlog::warn("control: ramps: {}; retrying at the next check", failure.message);
      last_logged_ms = now;
    }
  }

  asio::io_context& loop;
  core::MetricsRegistry& metrics;
  CountFigures count;
  config::ControlConfig control;
  std::string id;
  std::unique_ptr<redis::Client> client;
  std::unique_ptr<fleet::Store> store;
  asio::steady_timer timer{loop};
  std::vector<fleet::RampState> ramps;
  struct Counted {
    fleet::SideFigures route_side;
    fleet::SideFigures split_side;
    fleet::AuditFigures audit;
  };
  std::map<std::string, Counted> published;  // by route: what this instance had counted at its last publication
  bool judging = false;
  bool stopped = false;
  std::int64_t last_logged_ms = 0;
};

RampRunner::RampRunner(asio::io_context& loop, core::MetricsRegistry& metrics, CountFigures count)
    : impl_(std::make_shared<Impl>(loop, metrics, std::move(count))) {}

RampRunner::~RampRunner() { stop(); }

void RampRunner::start(const config::Snapshot& snapshot, std::string instance_id) {
  stop();
  const config::ControlConfig& control = snapshot.config.control;
  if (!control.enabled) return;
  // A fresh state for each start: the previous one's coroutine ends on its own (stopped).
  auto next = std::make_shared<Impl>(impl_->loop, impl_->metrics, impl_->count);
  next->control = control;
  next->id = std::move(instance_id);
  redis::ClientOptions options = redis::client_options(control.redis, snapshot.control_redis_nodes);
  options.connections = 1;
  next->client = std::make_unique<redis::Client>(next->loop.get_executor(), std::move(options));
  next->store = std::make_unique<fleet::Store>(*next->client, control.fleet);
  impl_ = next;
  asio::co_spawn(next->loop, [self = next]() { return self->run(); }, [](const std::exception_ptr& failure) {
    if (!failure) return;
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& error) {
      spdlog::error("control: the ramps' loop ended on an error: {}", error.what());
    }
  });
}

void RampRunner::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->timer.cancel();
  if (impl_->client) impl_->client->close();
}

const std::vector<fleet::RampState>& RampRunner::ramps() const { return impl_->ramps; }

bool RampRunner::judging() const { return impl_->judging; }

}  // namespace apigw::app
