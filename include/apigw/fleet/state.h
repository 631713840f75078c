// The fleet's desired state: the overrides every instance applies on top of its YAML, the version that set them
// and the instant they take effect. Written by `apigw ctl` to Redis as JSON, read by every instance, kept by each
// in its state file. Pure data and its JSON form; no I/O.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace apigw::fleet {

// A route's split or shadow changed at runtime: a percent as the YAML writes it ("0.01", "25"), or "off".
struct RouteOverride {
  std::optional<std::string> split;
  std::optional<std::string> shadow;
  bool empty() const { return !split && !shadow; }
  bool operator==(const RouteOverride&) const = default;
};

// What changes the YAML's migration settings. Beta users and shadow_ignore patterns are added to and removed from
// the YAML's lists (a name is in at most one of add and remove). `abort` sends nothing to the other side: no route
// splits or shadows, beta users included, until a change lifts it; the other overrides are kept meanwhile.
struct Overrides {
  std::map<std::string, RouteOverride> routes;  // by route name; no empty entries
  std::set<std::string> beta_add;
  std::set<std::string> beta_remove;
  std::set<std::string> ignore_add;
  std::set<std::string> ignore_remove;
  bool abort = false;
  bool empty() const;
  bool operator==(const Overrides&) const = default;
};

struct State {
  std::uint64_t version = 0;        // 1 for the first change; 0: nothing written (the YAML alone)
  std::int64_t written_at_ms = 0;   // Unix time in milliseconds, by Redis's clock
  std::int64_t effective_at_ms = 0; // written_at_ms + the writer's control.delay
  std::string author;               // user@host
  std::string why;                  // --why, may be empty
  std::string change;               // what the change did, for people: "users.split: 1 -> 25"
  Overrides overrides;
  // The state this one replaced, in force until effective_at_ms (an instance that starts before then serves it).
  std::uint64_t previous_version = 0;
  Overrides previous;
  bool operator==(const State&) const = default;
};

std::string encode(const State& state);
// nullopt, with the reason in `why`, for text that is not a state this version of apigw can read.
std::optional<State> decode(std::string_view json, std::string& why);

// What turns `before` into `after`, one item per key: "users.split: yaml -> 25", "beta_users: +u1 -u2",
// "abort: on". Empty when they are equal.
std::vector<std::string> describe_change(const Overrides& before, const Overrides& after);

// The changes joined for one line: "users.split: 1 -> 25; abort: on".
std::string join_change(const std::vector<std::string>& items);

// Unix milliseconds as UTC, "2026-12-04T15:00:01.123Z".
std::string utc_time(std::int64_t ms);

}  // namespace apigw::fleet
