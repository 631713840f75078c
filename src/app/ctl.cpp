// `apigw ctl` (see ctl.h): each change is checked as the YAML loader checks the same key, against the config
// file given, then written with compare-and-set on the version.
#include "ctl.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "apigw/core/units.h"
#include "apigw/config/migration_values.h"
#include "apigw/fleet/overlay.h"
#include "apigw/fleet/store.h"
#include "apigw/fleet/watcher.h"
#include "apigw/redis/client_options.h"
#include "control.h"
#include "ramp_runner.h"

namespace apigw::app {
namespace asio = boost::asio;
namespace json = boost::json;

namespace {

constexpr const char* kUsage =
    "Usage: apigw ctl -c FILE COMMAND [OPTIONS]\n"
    "\n"
    "Reads and changes the runtime state of the fleet named in FILE's control section: every instance of the\n"
    "fleet applies a change at the same instant, control.delay after it is written.\n"
    "\n"
    "Commands:\n"
    "  status                          the fleet's state, and every live instance with the version it serves\n"
    "  set ROUTE split|shadow PERCENT  a route's split or shadow percent, or off\n"
    "  beta add|remove USER...         beta users (always split and shadowed)\n"
    "  ignore add|remove PATTERN       a shadow_ignore pattern: \"[METHOD ]/path\", * one segment, ** any depth\n"
    "  abort                           send nothing to the other side: every split and shadow off, beta users too\n"
    "  resume                          lift an abort: the overrides kept meanwhile apply again\n"
    "  reset ROUTE | --all             drop a route's overrides, or every override and an abort (the YAML alone)\n"
    "  history [-n N]                  the last N changes and refused attempts, newest first (default 20)\n"
    "  rollback VERSION                write VERSION's state again, as a new change\n"
    "  ramp ROUTE --steps P,P,... --hold DURATION [guards]\n"
    "                                  let the fleet raise ROUTE's split step by step while the split side is as\n"
    "                                  healthy as the route's own, and put it back to 0 % at once when it is not\n"
    "  ramp status [ROUTE]             the ramps, their step, hold and the figures of the last check\n"
    "  ramp pause|resume|abort ROUTE   hold a ramp where it is, go on, or stop it and put the split back to 0 %\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE     the gateway's configuration (its control section and route names)\n"
    "  --why TEXT            why the change is made (kept in the history)\n"
    "  --expect-version N    write only if the fleet is still at version N\n"
    "  --wait                after a change, wait until every live instance serves it\n"
    "  --json                answer in JSON\n"
    "  --min-requests N      ramp: requests each side needs in a hold before it is judged (default 500)\n"
    "  --max-error-ratio X   ramp: the split side's error rate over the route side's, at most (default 1.5)\n"
    "  --max-p99-ratio X     ramp: the split side's p99 latency over the route side's, at most (default 1.3)\n"
    "  --max-error-rate P%   ramp: the split side's error rate, at most (default 1%)\n"
    "  --min-audit-match P%  ramp: the audit's match rate on the route, at least (a shadowed, audited route)\n"
    "\n"
    "Exit status: 0 done or nothing to change, 1 refused or failed (the reason on stderr), 2 usage.\n";

constexpr std::size_t kDefaultHistory = 20;

struct Options {
  std::string config_path;
  fleet::RampPlan ramp;  // ramp ROUTE's plan, from --steps, --hold and the guards
  bool has_steps = false;
  bool has_hold = false;
  std::vector<std::string> words;
  std::string why;
  bool json = false;
  bool wait = false;
  bool all = false;
  std::optional<std::uint64_t> expect_version;
  std::size_t count = kDefaultHistory;
};

std::optional<std::uint64_t> parse_number(const std::string& text) {
  if (text.empty() || text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  return std::stoull(text);
}

std::optional<double> parse_decimal(const std::string& text) {
  if (text.empty() || text.find_first_not_of("0123456789.") != std::string::npos ||
      std::count(text.begin(), text.end(), '.') > 1 || text == ".") {
    return std::nullopt;
  }
  return std::stod(text);
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "apigw ctl: %s\n\n%s", message.c_str(), kUsage);
  return 2;
}

// -1 to carry on, else the exit code.
int parse(int argc, char** argv, Options& options) {
  for (int i = 0; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if ((arg == "-c" || arg == "--config") && has_value) {
      options.config_path = argv[++i];
    } else if (arg == "--why" && has_value) {
      options.why = argv[++i];
    } else if (arg == "--json") {
      options.json = true;
    } else if (arg == "--wait") {
      options.wait = true;
    } else if (arg == "--all") {
      options.all = true;
    } else if (arg == "--expect-version" && has_value) {
      options.expect_version = parse_number(argv[++i]);
      if (!options.expect_version) return usage_error("--expect-version takes a version number");
    } else if (arg == "--steps" && has_value) {
      options.has_steps = true;
      std::string_view steps = argv[++i];
      while (!steps.empty()) {
        const std::size_t comma = steps.find(',');
        options.ramp.steps.emplace_back(steps.substr(0, comma));
        steps = comma == std::string_view::npos ? std::string_view() : steps.substr(comma + 1);
      }
    } else if (arg == "--hold" && has_value) {
      const auto hold = core::parse_duration(argv[++i]);
      if (!hold || *hold <= core::Duration::zero()) return usage_error("--hold takes a duration such as 10m or 30s");
      options.has_hold = true;
      options.ramp.hold_ms = std::chrono::duration_cast<std::chrono::milliseconds>(*hold).count();
    } else if (arg == "--min-requests" && has_value) {
      const auto count = parse_number(argv[++i]);
      if (!count) return usage_error("--min-requests takes a whole number");
      options.ramp.min_requests = *count;
    } else if ((arg == "--max-error-ratio" || arg == "--max-p99-ratio") && has_value) {
      const auto ratio = parse_decimal(argv[++i]);
      if (!ratio) return usage_error(arg + " takes a number such as 1.5");
      (arg == "--max-error-ratio" ? options.ramp.max_error_ratio : options.ramp.max_p99_ratio) = *ratio;
    } else if ((arg == "--max-error-rate" || arg == "--min-audit-match") && has_value) {
      std::string text = argv[++i];
      if (!text.empty() && text.back() == '%') text.pop_back();
      const auto percent = parse_decimal(text);
      if (!percent) return usage_error(arg + " takes a percent such as 1%");
      if (arg == "--max-error-rate") {
        options.ramp.max_error_rate = *percent / 100;
      } else {
        options.ramp.min_audit_match = *percent / 100;
      }
    } else if (arg == "-n" && has_value) {
      const auto count = parse_number(argv[++i]);
      if (!count || *count == 0 || *count > fleet::kHistoryLength) {
        return usage_error(fmt::format("-n takes a number from 1 to {}", fleet::kHistoryLength));
      }
      options.count = static_cast<std::size_t>(*count);
    } else if (arg.size() > 1 && arg[0] == '-' && arg != "-") {
      return usage_error(fmt::format("unknown or incomplete option '{}'", arg));
    } else {
      options.words.push_back(arg);
    }
  }
  if (options.config_path.empty()) return usage_error("no configuration file given (-c FILE)");
  if (options.words.empty()) return usage_error("no command given");
  return -1;
}

std::string author() {
  std::string user;
  if (const char* sudo = std::getenv("SUDO_USER"); sudo != nullptr && *sudo != '\0') user = sudo;
  if (user.empty()) {
    if (const passwd* entry = ::getpwuid(::getuid()); entry != nullptr) user = entry->pw_name;
  }
  if (user.empty()) user = std::to_string(::getuid());
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0) return user;
  return user + "@" + host.data();
}

std::string percent_text(const std::optional<std::string>& value) {
  if (!value) return "-";
  return *value == "off" ? "off" : *value + "%";
}

// A route's split or shadow as the YAML sets it, for `status`.
std::string yaml_target(const config::Config& config, const config::RouteConfig& route, fleet::Side side) {
  const auto& own = side == fleet::Side::kSplit ? route.split : route.shadow;
  const auto& fallback = side == fleet::Side::kSplit ? config.migration.split : config.migration.shadow_target;
  const config::MigrationTarget* target = config::effective_target(own, fallback);
  if (target == nullptr) return "off";
  return fmt::format("{}% to {}", target->percent, target->upstream);
}

json::value state_json(const fleet::State& state) {
  json::value value = json::parse(fleet::encode(state));
  value.as_object()["written_at"] = state.written_at_ms == 0 ? json::value(nullptr)
                                                             : json::value(fleet::utc_time(state.written_at_ms));
  value.as_object()["effective_at"] = state.effective_at_ms == 0 ? json::value(nullptr)
                                                                 : json::value(fleet::utc_time(state.effective_at_ms));
  return value;
}

json::value instance_json(const fleet::Instance& instance) {
  json::value value = json::parse(fleet::encode(instance));
  value.as_object()["applied_at"] = instance.applied_at_ms == 0 ? json::value(nullptr)
                                                                : json::value(fleet::utc_time(instance.applied_at_ms));
  return value;
}

class Ctl {
 public:
  Ctl(Options options, config::SnapshotPtr snapshot, asio::io_context& context)
      : options_(std::move(options)),
        snapshot_(std::move(snapshot)),
        config_(snapshot_->config),
        control_(config_.control),
        client_(context.get_executor(), redis::client_options(control_.redis, snapshot_->control_redis_nodes)),
        store_(client_, control_.fleet) {}

  asio::awaitable<int> run() {
    const int code = co_await dispatch();
    client_.close();
    co_return code;
  }

 private:
  using Mutation = std::function<std::string(fleet::Overrides&)>;  // returns an error, or "" when it applies

  asio::awaitable<int> dispatch() {
    const std::vector<std::string>& words = options_.words;
    const std::string& command = words[0];
    const auto arity = [&](std::size_t min, std::size_t max) { return words.size() >= min && words.size() <= max; };
    if (command == "status" && arity(1, 1)) co_return co_await status();
    if (command == "history" && arity(1, 1)) co_return co_await history();
    if (command == "set" && arity(4, 4)) {
      const std::string& route = words[1];
      const std::string& which = words[2];
      const std::string& value = words[3];
      if (which != "split" && which != "shadow") co_return usage_error("set ROUTE split|shadow PERCENT");
      const fleet::Side side = which == "split" ? fleet::Side::kSplit : fleet::Side::kShadow;
      co_return co_await change([&](fleet::Overrides& overrides) -> std::string {
        if (std::string why = fleet::check_route_target(config_, route, side, value); !why.empty()) return why;
        fleet::RouteOverride& entry = overrides.routes[route];
        (side == fleet::Side::kSplit ? entry.split : entry.shadow) = value;
        return {};
      });
    }
    const bool list_command = command == "beta" || command == "ignore";
    if (list_command && words.size() >= 3 && (words[1] == "add" || words[1] == "remove")) {
      co_return co_await change_list(command == "beta", words[1] == "add");
    }
    if ((command == "abort" || command == "resume") && arity(1, 1)) {
      const bool abort = command == "abort";
      co_return co_await change([abort](fleet::Overrides& overrides) -> std::string {
        overrides.abort = abort;
        return {};
      });
    }
    if (command == "reset" && (arity(2, 2) != options_.all) && arity(1, 2)) {
      if (options_.all) {
        co_return co_await change([](fleet::Overrides& overrides) -> std::string {
          overrides = {};
          return {};
        });
      }
      const std::string route = words[1];
      co_return co_await change([&](fleet::Overrides& overrides) -> std::string {
        if (!overrides.routes.contains(route) && !std::any_of(config_.routes.begin(), config_.routes.end(),
                                                             [&](const auto& r) { return r.name == route; })) {
          return fmt::format("route '{}' is not in {}", route, config_.source_file);
        }
        overrides.routes.erase(route);
        return {};
      });
    }
    if (command == "ramp") co_return co_await ramp();
    if (command == "rollback" && arity(2, 2)) {
      const auto version = parse_number(words[1]);
      if (!version || *version == 0) co_return usage_error("rollback takes a version number (see history)");
      co_return co_await rollback(*version);
    }
    co_return usage_error(fmt::format("unknown command or wrong arguments: '{}'", command));
  }

  // ramp ROUTE --steps ... --hold ...; ramp status [ROUTE]; ramp pause|resume|abort ROUTE.
  asio::awaitable<int> ramp() {
    const std::vector<std::string>& words = options_.words;
    const std::string verb = words.size() >= 2 ? words[1] : "";
    if (verb == "status" && words.size() <= 3) {
      std::string route;
      if (words.size() == 3) route = words[2];
      co_return co_await ramp_status(std::move(route));
    }
    if ((verb == "pause" || verb == "resume" || verb == "abort") && words.size() == 3) {
      co_return co_await ramp_control(verb, words[2]);
    }
    if (words.size() != 2 || verb.empty()) co_return usage_error("ramp ROUTE --steps P,P,... --hold DURATION");
    if (!options_.has_steps || !options_.has_hold) co_return usage_error("ramp ROUTE needs --steps and --hold");
    fleet::RampPlan plan = options_.ramp;
    plan.route = verb;
    if (std::string why = fleet::check_plan(plan); !why.empty()) co_return fail(why + "; nothing was written");
    std::uint32_t previous = 0;
    for (std::size_t i = 0; i < plan.steps.size(); ++i) {
      const std::string& step = plan.steps[i];
      if (std::string why = fleet::check_route_target(config_, plan.route, fleet::Side::kSplit, step);
          !why.empty()) {
        co_return fail(why + "; nothing was written");
      }
      if (step == "off") co_return fail("a ramp's steps are percents; nothing was written");
      std::string ignored;
      const std::uint32_t threshold = *config::migration_threshold(step, config_.migration.buckets, ignored);
      if (i > 0 && threshold <= previous) {
        co_return fail(fmt::format("the steps must rise: {} after {}; nothing was written", step, plan.steps[i - 1]));
      }
      previous = threshold;
    }
    const fleet::RampsResult ramps = co_await store_.ramps();
    if (ramps.failure && ramps.failure.reason == "redis") co_return fail(ramps.failure.message);
    std::uint64_t revision = 0;
    for (const fleet::RampState& existing : ramps.ramps) {
      if (existing.plan.route != plan.route) continue;
      if (existing.phase == fleet::RampPhase::kRunning || existing.phase == fleet::RampPhase::kPaused) {
        co_return fail(fmt::format("route '{}' has a {} ramp (step {} of {}); `apigw ctl ramp abort {}` ends it",
                                   plan.route, fleet::phase_name(existing.phase), existing.step + 1,
                                   existing.plan.steps.size(), plan.route));
      }
      revision = existing.revision;
    }
    fleet::RampState state;
    state.plan = plan;
    state.author = author();
    state.why = options_.why;
    const std::string first_why =
        fmt::format("ramp: step 1 of {} ({} %){}{}", plan.steps.size(), plan.steps[0],
                    options_.why.empty() ? "" : ": ", options_.why);
    const SplitChange change = co_await write_split(
        store_, plan.route, plan.steps[0], std::chrono::duration_cast<std::chrono::milliseconds>(control_.delay),
        state.author, first_why);
    if (change.failure) co_return fail(change.failure.message);
    state.step_since_ms = change.state.effective_at_ms;
    state.updated_at_ms = fleet::unix_ms();
    state.reason = fmt::format("started at step 1 of {} ({} %)", plan.steps.size(), plan.steps[0]);
    const fleet::WriteResult written = co_await store_.write_ramp(state, revision);
    if (written.failure) co_return fail(written.failure.message);
    if (!written.written) co_return fail("another ramp of route '" + plan.route + "' was written first");
    state.revision = revision + 1;
    say(fmt::format("ramp of route '{}' started: {} % from {} (version {}), then {} every {} s while the split side "
                    "is healthy",
                    plan.route, plan.steps[0], fleet::utc_time(change.state.effective_at_ms), change.state.version,
                    plan.steps.size() > 1 ? "the next step" : "nothing more", plan.hold_ms / 1000),
        json::object{{"ramp", json::parse(fleet::encode(state))}, {"version", change.state.version}});
    co_return 0;
  }

  asio::awaitable<int> ramp_status(std::string route) {
    const fleet::RampsResult ramps = co_await store_.ramps();
    if (ramps.failure) co_return fail(ramps.failure.message);
    std::vector<fleet::RampState> shown;
    for (const fleet::RampState& ramp : ramps.ramps) {
      if (route.empty() || ramp.plan.route == route) shown.push_back(ramp);
    }
    if (options_.json) {
      json::array items;
      for (const fleet::RampState& ramp : shown) items.push_back(json::parse(fleet::encode(ramp)));
      print_json(json::object{{"fleet", control_.fleet}, {"ramps", std::move(items)}});
      co_return 0;
    }
    if (shown.empty()) {
      std::printf("fleet %s: no ramp%s\n", control_.fleet.c_str(), route.empty() ? "" : (" of route " + route).c_str());
      co_return 0;
    }
    for (const fleet::RampState& ramp : shown) {
      const fleet::RampPlan& plan = ramp.plan;
      std::string steps;
      for (std::size_t i = 0; i < plan.steps.size(); ++i) {
        const bool current = i == ramp.step;
        steps += fmt::format("{}{}{}{}", i ? " " : "", current ? "[" : "", plan.steps[i], current ? "]" : "");
      }
      std::printf("%s\n", fmt::format("route {}: {}, step {} of {}: {}\n  hold {} s, at least {} requests a side; "
                                        "guards: error ratio {:.2f}, p99 ratio {:.2f}, error rate {:.2f} %\n  {}\n"
                                        "  started by {}{}{}",
                                        plan.route, fleet::phase_name(ramp.phase), ramp.step + 1, plan.steps.size(),
                                        steps, plan.hold_ms / 1000, plan.min_requests, plan.max_error_ratio,
                                        plan.max_p99_ratio, plan.max_error_rate * 100, ramp.reason, ramp.author,
                                        ramp.why.empty() ? "" : ": ", ramp.why)
                                .c_str());
    }
    co_return 0;
  }

  asio::awaitable<int> ramp_control(std::string verb, std::string route) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      const fleet::RampsResult ramps = co_await store_.ramps();
      if (ramps.failure) co_return fail(ramps.failure.message);
      const auto found = std::find_if(ramps.ramps.begin(), ramps.ramps.end(),
                                      [&](const fleet::RampState& ramp) { return ramp.plan.route == route; });
      if (found == ramps.ramps.end()) co_return fail(fmt::format("route '{}' has no ramp", route));
      fleet::RampState ramp = *found;
      const std::uint64_t revision = ramp.revision;
      const std::int64_t now = fleet::unix_ms();
      const bool active = ramp.phase == fleet::RampPhase::kRunning || ramp.phase == fleet::RampPhase::kPaused;
      if (!active) {
        co_return fail(fmt::format("the ramp of route '{}' is {}: nothing to {}", route, fleet::phase_name(ramp.phase),
                                   verb));
      }
      if (verb == "pause") {
        if (ramp.phase == fleet::RampPhase::kPaused) co_return fail("the ramp of route '" + route + "' is paused");
        ramp.phase = fleet::RampPhase::kPaused;
        ramp.paused_ms += std::max<std::int64_t>(0, now - ramp.step_since_ms);
        ramp.reason = fmt::format("paused by {} at step {}", author(), ramp.step + 1);
      } else if (verb == "resume") {
        if (ramp.phase == fleet::RampPhase::kRunning) co_return fail("the ramp of route '" + route + "' is running");
        ramp.phase = fleet::RampPhase::kRunning;
        ramp.step_since_ms = now;
        ramp.checked_at_ms = 0;
        ramp.reason = fmt::format("resumed by {} at step {}", author(), ramp.step + 1);
      } else {
        ramp.phase = fleet::RampPhase::kAborted;
        ramp.reason = fmt::format("aborted by {} at step {}{}{}", author(), ramp.step + 1,
                                  options_.why.empty() ? "" : ": ", options_.why);
      }
      ramp.updated_at_ms = now;
      const fleet::WriteResult written = co_await store_.write_ramp(ramp, revision);
      if (written.failure) co_return fail(written.failure.message);
      if (!written.written) continue;  // the judge wrote meanwhile: read it again
      if (verb == "abort") {
        // (A conditional expression inside co_await's operand trips g++ 12: built before it.)
        std::string why = "ramp aborted";
        if (!options_.why.empty()) why += ": " + options_.why;
        const auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(control_.delay);
        const SplitChange change = co_await write_split(store_, route, "0", delay, author(), std::move(why));
        if (change.failure) co_return fail(change.failure.message);
      }
      say(fmt::format("ramp of route '{}': {}", route, ramp.reason),
          json::object{{"ramp", json::parse(fleet::encode(ramp))}});
      co_return 0;
    }
    co_return fail("the ramp kept changing under this command; try again");
  }

  asio::awaitable<int> change_list(bool beta, bool add) {
    std::vector<std::string> items(options_.words.begin() + 2, options_.words.end());
    if (!beta) {
      // A pattern with its method is two words when not quoted: "POST /payments/**".
      std::string pattern;
      for (const std::string& word : items) pattern += (pattern.empty() ? "" : " ") + word;
      items = {pattern};
    }
    const std::vector<std::string>& yaml = beta ? config_.migration.beta_users : config_.migration.shadow_ignore;
    co_return co_await change([&](fleet::Overrides& overrides) -> std::string {
      std::set<std::string>& added = beta ? overrides.beta_add : overrides.ignore_add;
      std::set<std::string>& removed = beta ? overrides.beta_remove : overrides.ignore_remove;
      for (const std::string& item : items) {
        if (add) {
          const std::string why = beta ? fleet::check_beta_user(item) : fleet::check_ignore_pattern(item);
          if (!why.empty()) return why;
        }
        const bool in_yaml = std::find(yaml.begin(), yaml.end(), item) != yaml.end();
        if (add) {
          removed.erase(item);
          if (!in_yaml) added.insert(item);
        } else {
          added.erase(item);
          if (in_yaml) removed.insert(item);
        }
      }
      return {};
    });
  }

  // Reads the state, applies `mutate` and writes the result as the next version.
  asio::awaitable<int> change(const Mutation& mutate) {
    fleet::State current;
    const fleet::ReadResult read = co_await store_.read();
    if (read.failure && !(read.failure.reason == "state" && options_.words[0] == "reset" && options_.all)) {
      co_return fail(read.failure.message);
    }
    if (read.state) current = *read.state;
    fleet::Overrides next = current.overrides;
    if (std::string why = mutate(next); !why.empty()) co_return fail(why + "; nothing was written");
    co_return co_await write(current, !read.state, std::move(next), options_.why);
  }

  asio::awaitable<int> rollback(std::uint64_t version) {
    const fleet::HistoryResult history = co_await store_.history(fleet::kHistoryLength);
    if (history.failure) co_return fail(history.failure.message);
    const auto entry = std::find_if(history.entries.begin(), history.entries.end(), [&](const fleet::HistoryEntry& e) {
      return !e.refused && e.state.version == version;
    });
    if (entry == history.entries.end()) {
      co_return fail(fmt::format("version {} is not in the history of fleet '{}' (it keeps the last {} changes)",
                                 version, control_.fleet, fleet::kHistoryLength));
    }
    const fleet::ReadResult read = co_await store_.read();
    if (read.failure) co_return fail(read.failure.message);
    const fleet::State current = read.state.value_or(fleet::State{});
    const bool missing = !read.state;
    // What the state of `version` holds must still apply to this config.
    const fleet::Overlay check = fleet::overlay(*snapshot_, entry->state.overrides, 0);
    if (!check.dropped.empty()) {
      std::string reasons;
      for (const std::string& why : check.dropped) reasons += "\n  " + why;
      co_return fail(fmt::format("version {} does not apply to {}:{}\nnothing was written", version,
                                 config_.source_file, reasons));
    }
    const std::string why = fmt::format("rollback to version {}{}{}", version, options_.why.empty() ? "" : ": ",
                                        options_.why);
    co_return co_await write(current, missing, entry->state.overrides, why);
  }

  // `missing`: Redis holds no state (none was written, or Redis lost it).
  asio::awaitable<int> write(const fleet::State& current, bool missing, fleet::Overrides next,
                             const std::string& why) {
    const std::vector<std::string> items = fleet::describe_change(current.overrides, next);
    if (items.empty()) {
      say(fmt::format("nothing to change: fleet '{}' is at version {} with that already", control_.fleet,
                      current.version),
          json::object{{"written", false}, {"version", current.version}});
      co_return 0;
    }
    const fleet::TimeResult clock = co_await store_.now();
    if (clock.failure) co_return fail(clock.failure.message);
    const std::uint64_t expected = options_.expect_version.value_or(current.version);
    fleet::State state;
    state.version = expected + 1;
    if (missing) {
      // Instances that serve a version Redis no longer holds (it lost its data): the versions go on from theirs,
      // so that every instance takes this change as the newer one.
      const fleet::InstancesResult live = co_await store_.instances();
      if (live.failure) co_return fail(live.failure.message);
      for (const fleet::Instance& instance : live.instances) {
        state.version = std::max(state.version, instance.version + 1);
      }
    }
    state.written_at_ms = clock.now_ms;
    state.effective_at_ms =
        clock.now_ms + std::chrono::duration_cast<std::chrono::milliseconds>(control_.delay).count();
    state.author = author();
    state.why = why;
    state.change = fleet::join_change(items);
    state.overrides = std::move(next);
    state.previous_version = current.version;
    state.previous = current.overrides;
    const fleet::WriteResult written = co_await store_.write(state, expected);
    if (written.failure) co_return fail(written.failure.message);
    if (!written.written) {
      std::string winner;
      const fleet::ReadResult now = co_await store_.read();
      if (now.state) {
        winner = fmt::format(" by {} at {}{}{} ({})", now.state->author, fleet::utc_time(now.state->written_at_ms),
                             now.state->why.empty() ? "" : ": ", now.state->why, now.state->change);
      }
      co_return fail(fmt::format("refused: fleet '{}' is at version {}{}, not {}; nothing was written (the attempt "
                                 "is in the history). Look at `apigw ctl status` and run the command again.",
                                 control_.fleet, written.found, winner, expected));
    }
    const std::int64_t in_ms = state.effective_at_ms - state.written_at_ms;
    say(fmt::format("version {} written: {}\neffective at {} (in {} ms) on every instance of fleet '{}'",
                    state.version, state.change, fleet::utc_time(state.effective_at_ms), in_ms, control_.fleet),
        json::object{{"written", true}, {"state", state_json(state)}});
    if (options_.wait) co_return co_await wait_applied(state);
    co_return 0;
  }

  // Until every live instance serves `state` (or a later version), at most delay + 10 s.
  asio::awaitable<int> wait_applied(const fleet::State& state) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    const auto deadline = std::chrono::steady_clock::now() + control_.delay + std::chrono::seconds(10);
    std::vector<std::string> behind;
    while (std::chrono::steady_clock::now() < deadline) {
      const fleet::InstancesResult live = co_await store_.instances();
      if (live.failure) co_return fail(live.failure.message);
      behind.clear();
      for (const fleet::Instance& instance : live.instances) {
        if (instance.version < state.version) {
          behind.push_back(fmt::format("{} (version {})", instance.id, instance.version));
        }
      }
      if (behind.empty() && fleet::unix_ms() >= state.effective_at_ms) {
        if (!options_.json) std::printf("every live instance (%zu) serves version %llu\n", live.instances.size(),
                                        static_cast<unsigned long long>(state.version));
        co_return 0;
      }
      timer.expires_after(std::chrono::milliseconds(100));
      co_await timer.async_wait(asio::use_awaitable);
    }
    std::string list;
    for (const std::string& item : behind) list += "\n  " + item;
    co_return fail(fmt::format("not every instance serves version {} yet:{}", state.version, list));
  }

  asio::awaitable<int> status() {
    const fleet::ReadResult read = co_await store_.read();
    if (read.failure) co_return fail(read.failure.message);
    const fleet::InstancesResult live = co_await store_.instances();
    if (live.failure) co_return fail(live.failure.message);
    const fleet::State state = read.state.value_or(fleet::State{});
    if (options_.json) {
      json::array instances;
      for (const fleet::Instance& instance : live.instances) instances.push_back(instance_json(instance));
      print_json(json::object{{"fleet", control_.fleet},
                              {"state", read.state ? state_json(state) : json::value(nullptr)},
                              {"instances", std::move(instances)}});
      co_return 0;
    }
    std::string out = fmt::format("fleet {}: ", control_.fleet);
    if (!read.state) {
      out += "no change written yet: every instance serves its YAML\n";
    } else {
      out += fmt::format("version {}, effective {}\n  written {} by {}{}{}\n  change: {}\n", state.version,
                         fleet::utc_time(state.effective_at_ms), fleet::utc_time(state.written_at_ms), state.author,
                         state.why.empty() ? "" : ": ", state.why, state.change.empty() ? "-" : state.change);
    }
    const fleet::Overrides& overrides = state.overrides;
    if (overrides.abort) out += "ABORTED: nothing goes to the other side (apigw ctl resume lifts it)\n";
    out += "routes:\n";
    for (const config::RouteConfig& route : config_.routes) {
      const auto found = overrides.routes.find(route.name);
      const bool has = found != overrides.routes.end();
      out += fmt::format("  {:<24} split {:<8} (yaml: {})   shadow {:<8} (yaml: {})\n", route.name,
                         percent_text(has ? found->second.split : std::nullopt),
                         yaml_target(config_, route, fleet::Side::kSplit),
                         percent_text(has ? found->second.shadow : std::nullopt),
                         yaml_target(config_, route, fleet::Side::kShadow));
    }
    for (const auto& [name, route] : overrides.routes) {
      if (std::none_of(config_.routes.begin(), config_.routes.end(), [&](const auto& r) { return r.name == name; })) {
        out += fmt::format("  {:<24} (not in {}: instances drop its override)\n", name, config_.source_file);
      }
    }
    const auto list = [&](std::string_view label, const std::set<std::string>& add,
                          const std::set<std::string>& remove) {
      std::string items;
      for (const std::string& item : add) items += " +" + item;
      for (const std::string& item : remove) items += " -" + item;
      out += fmt::format("{}:{}\n", label, items.empty() ? " (yaml)" : items);
    };
    list("beta_users", overrides.beta_add, overrides.beta_remove);
    list("shadow_ignore", overrides.ignore_add, overrides.ignore_remove);
    out += fmt::format("instances ({} live):\n", live.instances.size());
    for (const fleet::Instance& instance : live.instances) {
      out += fmt::format("  {:<28} version {:<5} {:<10} applied {}{}\n", instance.id, instance.version,
                         instance.source,
                         instance.applied_at_ms == 0 ? "at start" : fleet::utc_time(instance.applied_at_ms),
                         instance.error.empty() ? "" : "  error: " + instance.error);
    }
    std::fputs(out.c_str(), stdout);
    co_return 0;
  }

  asio::awaitable<int> history() {
    const fleet::HistoryResult history = co_await store_.history(options_.count);
    if (history.failure) co_return fail(history.failure.message);
    if (options_.json) {
      json::array entries;
      for (const fleet::HistoryEntry& entry : history.entries) {
        json::object item{{"id", entry.id}, {"refused", entry.refused}, {"state", state_json(entry.state)}};
        if (entry.refused) item["found"] = entry.found;
        entries.push_back(std::move(item));
      }
      print_json(json::object{{"fleet", control_.fleet}, {"history", std::move(entries)}});
      co_return 0;
    }
    std::string out;
    for (const fleet::HistoryEntry& entry : history.entries) {
      const fleet::State& state = entry.state;
      const std::string who = fmt::format("{}{}", state.author, state.why.empty() ? "" : " (" + state.why + ")");
      if (entry.refused) {
        out += fmt::format("  -  {}  {}  REFUSED: version {} was written first; attempted: {}\n",
                           fleet::utc_time(state.written_at_ms), who, entry.found, state.change);
      } else {
        out += fmt::format("{:>3}  {}  {}  {}\n", state.version, fleet::utc_time(state.written_at_ms), who,
                           state.change);
      }
    }
    if (out.empty()) out = fmt::format("fleet {}: no change written yet\n", control_.fleet);
    std::fputs(out.c_str(), stdout);
    co_return 0;
  }

  int fail(const std::string& message) const {
    if (options_.json) {
      print_json(json::object{{"error", message}});
    }
    std::fprintf(stderr, "apigw ctl: %s\n", message.c_str());
    return 1;
  }

  void say(const std::string& text, const json::object& object) const {
    if (options_.json) {
      print_json(object);
    } else {
      std::printf("%s\n", text.c_str());
    }
  }

  static void print_json(const json::value& value) { std::printf("%s\n", json::serialize(value).c_str()); }

  Options options_;
  config::SnapshotPtr snapshot_;
  const config::Config& config_;
  const config::ControlConfig& control_;
  redis::Client client_;
  fleet::Store store_;
};

}  // namespace

int run_ctl(int argc, char** argv) {
  Options options;
  if (const int code = parse(argc, argv, options); code >= 0) return code;
  // Stdout is the answer (JSON with --json): what the clients log goes to stderr, warnings and errors only.
  auto logger = spdlog::stderr_logger_st("apigw-ctl");
  logger->set_pattern("apigw ctl: %v");
  logger->set_level(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
  const Loaded loaded = load_snapshot(options.config_path, 0);
  if (!loaded.snapshot) {
    for (const std::string& error : loaded.errors) std::fprintf(stderr, "%s\n", error.c_str());
    std::fprintf(stderr, "apigw ctl: configuration %s has errors\n", options.config_path.c_str());
    return 1;
  }
  if (!loaded.snapshot->config.control.enabled) {
    std::fprintf(stderr, "apigw ctl: %s has no control section (control: { redis: ..., fleet: NAME })\n",
                 options.config_path.c_str());
    return 1;
  }
  asio::io_context context(1);
  Ctl ctl(std::move(options), loaded.snapshot, context);
  int code = 1;
  asio::co_spawn(context, ctl.run(), [&](const std::exception_ptr& failure, int result) {
    if (failure) {
      try {
        std::rethrow_exception(failure);
      } catch (const std::exception& error) {
        std::fprintf(stderr, "apigw ctl: %s\n", error.what());
      }
      return;
    }
    code = result;
  });
  context.run();
  return code;
}

}  // namespace apigw::app
