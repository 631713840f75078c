// Laying the fleet's overrides over a snapshot of the YAML (see overlay.h).
#include "apigw/fleet/overlay.h"

#include <algorithm>

#include <fmt/format.h>

#include "apigw/config/migration_values.h"

namespace apigw::fleet {
namespace {

using config::MigrationTarget;

struct SideMembers {
  std::optional<MigrationTarget> config::RouteConfig::*own;
  std::optional<MigrationTarget> config::MigrationConfig::*fallback;
  std::optional<config::SideTarget> config::Route::*target;
};

SideMembers members(Side side) {
  if (side == Side::kSplit) {
    return {&config::RouteConfig::split, &config::MigrationConfig::split, &config::Route::split};
  }
  return {&config::RouteConfig::shadow, &config::MigrationConfig::shadow_target, &config::Route::shadow};
}

std::ptrdiff_t find_route(const config::Config& config, std::string_view name) {
  const auto found = std::find_if(config.routes.begin(), config.routes.end(),
                                  [&](const config::RouteConfig& route) { return route.name == name; });
  return found == config.routes.end() ? -1 : found - config.routes.begin();
}

// The list the YAML gives, less `remove`, then `add` (in the YAML's order, then the added ones in name order).
std::vector<std::string> merged(const std::vector<std::string>& yaml, const std::set<std::string>& add,
                                const std::set<std::string>& remove) {
  std::vector<std::string> items;
  for (const std::string& item : yaml) {
    if (!remove.contains(item)) items.push_back(item);
  }
  for (const std::string& item : add) {
    if (std::find(items.begin(), items.end(), item) == items.end()) items.push_back(item);
  }
  return items;
}

// Keeps the items `check` accepts; the others are dropped with the reason.
std::set<std::string> valid_items(const std::set<std::string>& items, std::string (*check)(std::string_view),
                                  std::string_view what, std::vector<std::string>& dropped) {
  std::set<std::string> valid;
  for (const std::string& item : items) {
    if (std::string why = check(item); !why.empty()) {
      dropped.push_back(fmt::format("{}: {}", what, why));
    } else {
      valid.insert(item);
    }
  }
  return valid;
}

}  // namespace

std::string_view side_name(Side side) { return side == Side::kSplit ? "split" : "shadow"; }

std::string check_route_target(const config::Config& config, std::string_view route, Side side,
                               std::string_view value) {
  const std::string name(side_name(side));
  const std::ptrdiff_t index = find_route(config, route);
  if (index < 0) {
    return fmt::format("route '{}' is not in {}", route,
                       config.source_file);
  }
  const std::string label = fmt::format("route '{}'", route);
  if (!config.migration.enabled) {
    return fmt::format("{}: {} needs a migration section (migration.buckets, ...) in the main file", label, name);
  }
  if (value == "off") return {};
  const SideMembers side_members = members(side);
  const config::RouteConfig& entry = config.routes[static_cast<std::size_t>(index)];
  if (config::effective_target(entry.*side_members.own, config.migration.*side_members.fallback) == nullptr) {
    return fmt::format("{} has no {} upstream: give it {}: {{ upstream: NAME, percent: 0 }} (or a migration.{} "
                       "default) in the YAML first",
                       label, name, name, name);
  }
  std::string why;
  if (!config::migration_threshold(value, config.migration.buckets, why)) {
    return fmt::format("{} {}.percent: {}", label, name, why);
  }
  return {};
}

std::string check_beta_user(std::string_view user) {
  std::string why;
  return config::valid_beta_user(user, why) ? std::string() : "migration.beta_users: " + why;
}

std::string check_ignore_pattern(std::string_view pattern) {
  std::string why;
  return config::valid_shadow_ignore(pattern, why) ? std::string() : "migration.shadow_ignore: " + why;
}

Overlay overlay(const config::Snapshot& baseline, const Overrides& overrides, std::uint64_t generation) {
  Overlay result;
  auto next = std::make_shared<config::Snapshot>(baseline);
  next->generation = generation;
  config::Config& config = next->config;

  for (const auto& [route_name, route] : overrides.routes) {
    const std::ptrdiff_t index = find_route(baseline.config, route_name);
    for (const Side side : {Side::kSplit, Side::kShadow}) {
      const std::optional<std::string>& value = side == Side::kSplit ? route.split : route.shadow;
      if (!value) continue;
      if (std::string why = check_route_target(baseline.config, route_name, side, *value); !why.empty()) {
        result.dropped.push_back(fmt::format("{}: the {} override is dropped", why, side_name(side)));
        continue;
      }
      const SideMembers side_members = members(side);
      const auto i = static_cast<std::size_t>(index);
      config::RouteConfig& entry = config.routes[i];
      if (*value == "off") {
        entry.*side_members.own = MigrationTarget{};
        next->routes[i].*side_members.target = std::nullopt;
        continue;
      }
      // The upstream is the one the YAML gives the route (its own target, else the section's default).
      const MigrationTarget* target = config::effective_target(baseline.config.routes[i].*side_members.own,
                                                               baseline.config.migration.*side_members.fallback);
      std::string ignored;
      const std::uint32_t threshold = *config::migration_threshold(*value, config.migration.buckets, ignored);
      entry.*side_members.own = MigrationTarget{target->upstream, *value, threshold};
      const std::optional<config::SideTarget>& yaml_target = baseline.routes[i].*side_members.target;
      next->routes[i].*side_members.target = config::SideTarget{yaml_target->upstream, threshold};
    }
  }

  config::MigrationConfig& migration = config.migration;
  const std::set<std::string> beta_add = valid_items(overrides.beta_add, check_beta_user, "beta add", result.dropped);
  migration.beta_users = merged(baseline.config.migration.beta_users, beta_add, overrides.beta_remove);
  next->beta_users = {migration.beta_users.begin(), migration.beta_users.end()};
  const std::set<std::string> ignore_add =
      valid_items(overrides.ignore_add, check_ignore_pattern, "ignore add", result.dropped);
  migration.shadow_ignore = merged(baseline.config.migration.shadow_ignore, ignore_add, overrides.ignore_remove);
  next->shadow_ignore.clear();
  for (const std::string& text : migration.shadow_ignore) {
    std::string why;
    if (auto pattern = routing::RequestPattern::parse(text, why)) next->shadow_ignore.push_back(std::move(*pattern));
  }

  if (overrides.abort) {
    // Nothing goes to the other side: every route's split and shadow are off, beta users' included.
    for (std::size_t i = 0; i < next->routes.size(); ++i) {
      if (next->routes[i].split) config.routes[i].split = MigrationTarget{};
      if (next->routes[i].shadow) config.routes[i].shadow = MigrationTarget{};
      next->routes[i].split.reset();
      next->routes[i].shadow.reset();
    }
  }
  result.snapshot = std::move(next);
  return result;
}

}  // namespace apigw::fleet
