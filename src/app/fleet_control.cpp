// The instance's side of fleet control (see fleet_control.h).
#include "fleet_control.h"

#include <unistd.h>

#include <algorithm>
#include <array>

#include <boost/json.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "apigw/core/text_file.h"
#include "apigw/fleet/overlay.h"

namespace apigw::app {
namespace asio = boost::asio;
namespace json = boost::json;

namespace {

constexpr std::int64_t kLogEveryMs = 60'000;
constexpr std::array<double, 11> kDelayBuckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
constexpr std::string_view kErrorsHelp =
    "Fleet control failures by reason: redis (unreachable, timed out, refused), state (a state apigw cannot "
    "read), dropped (an override that does not apply to this YAML), state_file (not written or not readable)";

std::string host_name() {
  std::array<char, 256> name{};
  if (::gethostname(name.data(), name.size() - 1) != 0) return "unknown";
  return name.data();
}

// The state as it was before `state` replaced it.
fleet::State previous_of(const fleet::State& state) {
  fleet::State previous;
  previous.version = state.previous_version;
  previous.overrides = state.previous;
  return previous;
}

json::value time_value(std::int64_t ms) { return ms == 0 ? json::value(nullptr) : json::value(fleet::utc_time(ms)); }

json::value overrides_value(const fleet::Overrides& overrides) {
  // The state's own JSON form, less the envelope.
  fleet::State holder;
  holder.overrides = overrides;
  return json::parse(fleet::encode(holder)).as_object()["overrides"];
}

}  // namespace

FleetControl::FleetControl(asio::io_context& loop, std::function<void()> request_switch, CountFigures count)
    : loop_(loop),
      request_switch_(std::move(request_switch)),
      timer_(loop),
      version_gauge_(metrics_.gauge("apigw_control_version",
                                    "Version of the fleet's state this instance serves (0: the YAML alone)")),
      apply_delay_(metrics_.histogram("apigw_control_apply_delay_seconds",
                                      "From a change's effective_at to the instant every worker served it", {},
                                      kDelayBuckets)),
      ramps_(loop, metrics_, std::move(count)) {
  for (const char* reason : {"redis", "state", "dropped", "state_file"}) {
    metrics_.counter("apigw_control_errors_total", kErrorsHelp, {{"reason", reason}});
  }
}

FleetControl::~FleetControl() = default;

config::SnapshotPtr FleetControl::start(const config::SnapshotPtr& baseline) {
  baseline_ = baseline;
  generation_ = baseline->generation;
  const config::ControlConfig& control = baseline->config.control;
  if (!control.enabled) return baseline;
  const fleet::ReadResult read = fleet::read_once(control, baseline->control_redis_nodes);
  if (!read.failure) {
    if (read.state) {
      // A change not yet in effect: the fleet still serves the one before it (the watcher schedules this one).
      const bool due = fleet::unix_ms() >= read.state->effective_at_ms;
      applied_ = due ? *read.state : previous_of(*read.state);
      source_ = applied_.version == 0 ? "yaml" : "redis";
    }
    spdlog::info("control: fleet '{}' is at version {} in Redis; serving version {}", control.fleet,
                 read.state ? read.state->version : 0, applied_.version);
  } else {
    // Counted and shown in /control like any failure; said once, below.
    count(read.failure.reason);
    failing_ = true;
    last_error_ = read.failure.message;
    last_error_at_ms_ = last_logged_ms_ = fleet::unix_ms();
    fleet::State saved;
    if (!control.state_file.empty() && load_state_file(saved)) {
      applied_ = std::move(saved);
      source_ = "state_file";
      spdlog::warn("control: Redis is unreachable at start ({}); serving version {} from {}", read.failure.message,
                   applied_.version, control.state_file);
    } else {
      spdlog::warn("control: Redis is unreachable at start ({}) and there is no state file to read; serving the "
                   "YAML alone until Redis answers",
                   read.failure.message);
    }
  }
  version_gauge_.set(static_cast<std::int64_t>(applied_.version));
  if (source_ == "redis") save_state_file();
  if (applied_.overrides.empty()) return baseline;
  return overlay(*baseline, applied_.overrides, baseline->generation);
}

void FleetControl::run() {
  if (!baseline_->config.control.enabled) return;
  start_watcher(*baseline_);
  ramps_.start(*baseline_, instance().id);
}

void FleetControl::stop() {
  timer_.cancel();
  pending_.clear();
  wanted_.reset();
  if (watcher_) watcher_->stop();
  watcher_.reset();
  ramps_.stop();
}

void FleetControl::start_watcher(const config::Snapshot& snapshot) {
  fleet::WatcherOptions options;
  options.control = snapshot.config.control;
  options.nodes = snapshot.control_redis_nodes;
  options.self = instance();
  fleet::WatcherCallbacks callbacks;
  callbacks.on_state = [this](const std::optional<fleet::State>& state) { on_state(state); };
  callbacks.on_failure = [this](const fleet::Failure& failure) { on_failure(failure); };
  watcher_ = std::make_unique<fleet::Watcher>(loop_.get_executor(), std::move(options), std::move(callbacks));
  watcher_->start();
}

fleet::Instance FleetControl::instance() const {
  fleet::Instance self;
  self.host = host_name();
  self.pid = ::getpid();
  self.id = fmt::format("{}:{}", self.host, self.pid);
  self.version = applied_.version;
  self.effective_at_ms = applied_.effective_at_ms;
  self.applied_at_ms = applied_at_ms_;
  self.source = source_;
  self.generation = generation_;
  self.error = failing_ ? last_error_ : std::string();
  return self;
}

void FleetControl::on_state(const std::optional<fleet::State>& state) {
  if (failing_) {
    failing_ = false;
    spdlog::info("control: Redis answers again");
    if (watcher_) watcher_->report(instance());
  }
  if (!state) {
    if (applied_.version != 0 && !warned_missing_) {
      warned_missing_ = true;
      spdlog::warn("control: Redis holds no state for fleet '{}'; keeping version {} until a change is written",
                   baseline_->config.control.fleet, applied_.version);
    }
    return;
  }
  warned_missing_ = false;
  const std::uint64_t version = state->version;
  const std::uint64_t serving = building_ ? building_->version : wanted_ ? wanted_->version : applied_.version;
  const auto scheduled = [&](std::uint64_t v) {
    return std::any_of(pending_.begin(), pending_.end(), [&](const fleet::State& p) { return p.version == v; });
  };
  if (scheduled(version) || (pending_.empty() && serving == version)) return;
  if (fleet::unix_ms() >= state->effective_at_ms) {
    // Heard of after its effective_at (or just at it): at once.
    pending_.clear();
    timer_.cancel();
    want(*state);
    return;
  }
  // Until effective_at the fleet serves the state before this one: an instance behind it (that missed it) catches
  // up now, unless that one is itself waiting for its effective_at. One ahead of it (Redis lost its data and the
  // versions went on from the instances') keeps what it serves until then.
  if (!scheduled(state->previous_version) && serving < state->previous_version) {
    pending_.clear();
    want(previous_of(*state));
  }
  std::erase_if(pending_, [&](const fleet::State& p) { return p.version >= version; });
  pending_.push_back(*state);
  schedule();
}

void FleetControl::schedule() {
  timer_.cancel();
  if (pending_.empty()) return;
  const std::int64_t wait_ms = std::max<std::int64_t>(0, pending_.front().effective_at_ms - fleet::unix_ms());
  timer_.expires_after(std::chrono::milliseconds(wait_ms));
  timer_.async_wait([this](const boost::system::error_code& error) {
    if (error || pending_.empty()) return;
    // The system clock decides, not the steady one the timer ran on: wait again if it is still early.
    if (fleet::unix_ms() < pending_.front().effective_at_ms) return schedule();
    fleet::State due = std::move(pending_.front());
    pending_.erase(pending_.begin());
    want(std::move(due));
    schedule();
  });
}

void FleetControl::want(fleet::State state) {
  wanted_ = std::move(state);
  request_switch_();
}

config::SnapshotPtr FleetControl::build(std::uint64_t generation) {
  if (!wanted_) return nullptr;
  building_ = std::move(*wanted_);
  wanted_.reset();
  return overlay(*baseline_, building_->overrides, generation);
}

void FleetControl::switched(std::int64_t at_ms, std::uint64_t generation) {
  if (!building_) return;
  applied_ = std::move(*building_);
  building_.reset();
  applied_at_ms_ = at_ms;
  generation_ = generation;
  source_ = applied_.version == 0 ? "yaml" : "redis";
  version_gauge_.set(static_cast<std::int64_t>(applied_.version));
  std::string late;
  if (applied_.effective_at_ms != 0) {
    const std::int64_t delay_ms = std::max<std::int64_t>(0, at_ms - applied_.effective_at_ms);
    apply_delay_.observe(std::chrono::milliseconds(delay_ms));
    late = fmt::format(", {} ms after its effective_at", delay_ms);
  }
  spdlog::info("control: serving version {} of fleet '{}'{} (config generation {}){}{}", applied_.version,
               baseline_->config.control.fleet, late, generation,
               applied_.change.empty() ? "" : ": ", applied_.change);
  save_state_file();
  if (watcher_) watcher_->report(instance());
}

config::SnapshotPtr FleetControl::on_reload(const config::SnapshotPtr& baseline) {
  const config::ControlConfig& now = baseline_->config.control;
  const config::ControlConfig& then = baseline->config.control;
  if (!then.enabled) return baseline;
  // Another fleet's state is not this one's: the new fleet's comes from Redis once the watcher reads it.
  if (!now.enabled || now.fleet != then.fleet || applied_.overrides.empty()) return baseline;
  return overlay(*baseline, applied_.overrides, baseline->generation);
}

void FleetControl::reloaded(const config::SnapshotPtr& baseline, std::uint64_t generation) {
  const config::ControlConfig before = baseline_->config.control;
  const std::vector<config::ResolvedEndpoint> nodes_before = baseline_->control_redis_nodes;
  baseline_ = baseline;
  generation_ = generation;
  const config::ControlConfig& after = baseline->config.control;
  if (before == after && nodes_before == baseline->control_redis_nodes) {
    if (watcher_) watcher_->report(instance());
    return;
  }
  if (watcher_) watcher_->stop();
  watcher_.reset();
  if (!after.enabled || before.fleet != after.fleet) {
    timer_.cancel();
    pending_.clear();
    wanted_.reset();
    applied_ = {};
    applied_at_ms_ = 0;
    source_ = "yaml";
    version_gauge_.set(0);
    dropped_.clear();
  }
  if (after.enabled) {
    spdlog::info("control: watching fleet '{}' with the reloaded settings", after.fleet);
    start_watcher(*baseline);
    ramps_.start(*baseline, instance().id);
  } else if (before.enabled) {
    ramps_.stop();
    spdlog::info("control: the control section is gone; the YAML alone decides");
  }
}

config::SnapshotPtr FleetControl::overlay(const config::Snapshot& baseline, const fleet::Overrides& overrides,
                                          std::uint64_t generation) {
  fleet::Overlay result = fleet::overlay(baseline, overrides, generation);
  if (result.dropped != dropped_) {
    for (const std::string& why : result.dropped) {
      spdlog::warn("control: {}", why);
      count("dropped");
    }
  }
  dropped_ = std::move(result.dropped);
  return result.snapshot;
}

void FleetControl::on_failure(const fleet::Failure& failure) {
  count(failure.reason);
  last_error_at_ms_ = fleet::unix_ms();
  // Said when it starts, then once a minute while it lasts (each retry is counted, not logged).
  if (!failing_ || last_error_at_ms_ - last_logged_ms_ >= kLogEveryMs) {
    spdlog::warn("control: {}; serving version {} meanwhile, retrying", failure.message, applied_.version);
    last_logged_ms_ = last_error_at_ms_;
  }
  last_error_ = failure.message;
  failing_ = true;
}

void FleetControl::count(const std::string& reason) {
  metrics_.counter("apigw_control_errors_total", kErrorsHelp, {{"reason", reason}}).add();
}

void FleetControl::save_state_file() {
  const std::string& path = baseline_->config.control.state_file;
  if (path.empty()) return;
  // A new file renamed over the old one: a crash leaves one or the other, never half of one.
  std::string why;
  if (!core::write_file_atomically(path, fleet::encode(applied_) + "\n", why)) {
    count("state_file");
    spdlog::error("control: cannot write the state file {}: {}", path, why);
  }
}

bool FleetControl::load_state_file(fleet::State& state) {
  const std::string& path = baseline_->config.control.state_file;
  std::string text;
  std::string why;
  if (path.empty() || !core::read_text_file(path, text, why)) return false;
  auto decoded = fleet::decode(text, why);
  if (!decoded) {
    count("state_file");
    spdlog::error("control: the state file {} is not readable: {}", path, why);
    return false;
  }
  state = std::move(*decoded);
  return true;
}

std::string FleetControl::view() const {
  const config::ControlConfig& control = baseline_->config.control;
  json::object out;
  out["enabled"] = control.enabled;
  if (!control.enabled) {
    out["source"] = "yaml";
    return json::serialize(out) + "\n";
  }
  out["fleet"] = control.fleet;
  out["source"] = source_;
  out["version"] = applied_.version;
  out["effective_at"] = time_value(applied_.effective_at_ms);
  out["effective_at_ms"] = applied_.effective_at_ms;
  out["applied_at"] = time_value(applied_at_ms_);
  out["applied_at_ms"] = applied_at_ms_;
  out["author"] = applied_.author;
  out["why"] = applied_.why;
  out["change"] = applied_.change;
  out["overrides"] = overrides_value(applied_.overrides);
  json::array pending;
  for (const fleet::State& state : pending_) {
    pending.push_back(json::object{{"version", state.version},
                                   {"effective_at", fleet::utc_time(state.effective_at_ms)},
                                   {"effective_at_ms", state.effective_at_ms},
                                   {"change", state.change}});
  }
  out["pending"] = std::move(pending);
  json::array dropped;
  for (const std::string& why : dropped_) dropped.emplace_back(why);
  out["dropped"] = std::move(dropped);
  out["redis"] = failing_ ? "failing" : "ok";
  out["last_error"] = last_error_.empty() ? json::value(nullptr) : json::value(last_error_);
  out["last_error_at"] = time_value(last_error_at_ms_);
  json::array ramps;
  for (const fleet::RampState& ramp : ramps_.ramps()) ramps.push_back(json::parse(fleet::encode(ramp)));
  out["ramps"] = std::move(ramps);
  out["judging_ramps"] = ramps_.judging();
  return json::serialize(out) + "\n";
}

}  // namespace apigw::app
