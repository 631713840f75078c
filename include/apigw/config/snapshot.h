// The immutable view of one loaded config that the data plane reads: the route trie, routes and upstreams by
// index, resolved endpoint addresses. Built once per load on the main thread, shared by every worker through
// shared_ptr<const Snapshot>; a request keeps the snapshot it started with until it ends.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "apigw/config/config.h"
#include "apigw/config/loader.h"
#include "apigw/http/client_address.h"
#include "apigw/routing/request_pattern.h"
#include "apigw/routing/route_trie.h"

namespace apigw::config {

struct ResolvedEndpoint {
  std::string address;  // numeric IPv4 or IPv6
  std::uint16_t port = 0;
  std::string text;     // as configured, for logs and headers
  std::string host;     // as configured: a name or a literal (without brackets)
  bool operator==(const ResolvedEndpoint&) const = default;
};

struct Upstream {
  UpstreamConfig config;
  std::vector<ResolvedEndpoint> endpoints;
};

// Where a share of a route's requests goes: `split` serves them there, `shadow` sends a copy there.
struct SideTarget {
  std::uint32_t upstream = 0;   // index into Snapshot::upstreams
  std::uint32_t threshold = 0;  // affinity buckets [0, threshold) are in (see MigrationTarget)
  bool operator==(const SideTarget&) const = default;
};

struct Route {
  std::string name;
  std::uint32_t upstream = 0;  // index into Snapshot::upstreams
  std::string strip_prefix;
  RouteAuth auth = RouteAuth::kNone;
  RouteCacheConfig cache;
  // The effective targets: the route's own, else the `migration` default; none for `off` or without either.
  std::optional<SideTarget> split;
  std::optional<SideTarget> shadow;
};

struct Snapshot {
  std::uint64_t generation = 0;
  Config config;
  std::vector<Route> routes;         // index = RouteTrieMatch::route
  std::vector<Upstream> upstreams;   // sorted by name
  // Shared by the snapshots fleet control derives from this one (they change targets, never routes).
  std::shared_ptr<const routing::RouteTrie> trie;
  http::TrustedProxies trusted_proxies;
  std::vector<ResolvedEndpoint> redis_nodes;  // auth.redis.nodes, resolved; empty without an auth section
  std::vector<ResolvedEndpoint> cache_primary;    // cache.primary.servers, resolved; empty without a cache section
  std::vector<ResolvedEndpoint> cache_secondary;  // cache.secondary.servers, resolved; empty without one
  std::vector<ResolvedEndpoint> control_redis_nodes;  // control.redis.nodes, resolved; empty without a control section
  std::vector<ResolvedEndpoint> cache_events_nodes;   // cache.events.redis.nodes, resolved; empty without events
  std::vector<ResolvedEndpoint> rate_limit_redis_nodes;  // rate_limits.redis.nodes, resolved; empty without one
  std::unordered_set<std::string> beta_users;  // migration.beta_users
  std::vector<routing::RequestPattern> shadow_ignore;  // migration.shadow_ignore, parsed; never shadowed
};

using SnapshotPtr = std::shared_ptr<const Snapshot>;

struct SnapshotResult {
  SnapshotPtr snapshot;
  std::vector<ConfigError> errors;
};

// Whether a pool built for `a` can serve `b` unchanged: everything but the position in the file is equal.
bool same_upstream(const Upstream& a, const Upstream& b);

// Builds the data-plane view of a validated config; resolves endpoint host names (blocking: main thread only).
SnapshotResult build_snapshot(const Config& config, std::uint64_t generation);

}  // namespace apigw::config
