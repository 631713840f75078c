// The fleet's overrides laid over a snapshot of the YAML: the snapshot every worker serves while control is on.
// The route table, upstreams and pools are the baseline's own (shared, not rebuilt); only the routes' split and
// shadow targets, the beta users and the shadow_ignore patterns differ. The checks are the loader's, in its words,
// so that `apigw ctl` refuses what an instance would drop.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "apigw/config/snapshot.h"
#include "apigw/fleet/state.h"

namespace apigw::fleet {

enum class Side { kSplit, kShadow };
std::string_view side_name(Side side);  // "split", "shadow"

// Whether `value` (a percent or "off") can be the `side` of route `route` in `config`; empty when it can, else the
// reason ("route 'users' split.percent: 101 is ..."), as the loader would say it of the same YAML.
std::string check_route_target(const config::Config& config, std::string_view route, Side side,
                               std::string_view value);
std::string check_beta_user(std::string_view user);          // empty when valid
std::string check_ignore_pattern(std::string_view pattern);  // empty when valid

struct Overlay {
  config::SnapshotPtr snapshot;
  std::vector<std::string> dropped;  // overrides that do not apply to this baseline, each with the reason
};

// `baseline` (a snapshot of the YAML alone) with `overrides` laid over it, as generation `generation`.
Overlay overlay(const config::Snapshot& baseline, const Overrides& overrides, std::uint64_t generation);

}  // namespace apigw::fleet
