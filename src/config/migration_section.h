// Reading the `migration` section (affinity buckets, beta users, shadow settings and exclusions, the audit, the
// default split and shadow targets) and a route's `split` and `shadow` keys. Private to src/config.
#pragma once

#include <optional>
#include <vector>

#include "apigw/config/config.h"
#include "route_checks.h"
#include "yaml_reader.h"

namespace apigw::config {

// Where the section's default targets were written.
struct MigrationSource {
  TargetSource split;
  TargetSource shadow;
};

void read_migration_section(YamlReader& reader, const Field& field, MigrationConfig& migration,
                            MigrationSource& source);

// `{ upstream: NAME, percent: P }`, or `off` (a target with an empty upstream).
void read_route_target(YamlReader& reader, const Field& field, std::optional<MigrationTarget>& target,
                       TargetSource& source);

// Once every file is read: each target's upstream exists and is not its route's own, routes with targets have a
// section, and each percent falls on a bucket boundary of the final `buckets` (set here as the target's threshold).
void check_migration(Config& config, const MigrationSource& section, const std::vector<RouteSource>& routes,
                     std::vector<ConfigError>& errors);

}  // namespace apigw::config
