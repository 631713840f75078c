// Builds a Snapshot from a validated Config (see snapshot.h). Runs on the main thread, never on a worker.
#include "apigw/config/snapshot.h"

#include <netdb.h>
#include <sys/socket.h>

#include <map>

#include <fmt/format.h>

namespace apigw::config {
namespace {

// Numeric addresses pass through; names are resolved once here so workers never block on DNS. nullopt (with
// `error`) when a name does not resolve.
std::optional<ResolvedEndpoint> resolve(const Endpoint& endpoint, std::string& error) {
  std::string host = endpoint.host;
  if (host.starts_with('[')) host = host.substr(1, host.size() - 2);
  ResolvedEndpoint resolved{host, endpoint.port, endpoint.text(), host};
  if (http::parse_ip(endpoint.host).size != 0) return resolved;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(endpoint.host.c_str(), nullptr, &hints, &found);
  if (rc != 0 || found == nullptr) {
    error = fmt::format("cannot resolve endpoint host '{}': {}", endpoint.host, gai_strerror(rc));
    return std::nullopt;
  }
  char text[NI_MAXHOST];
  const int name_rc = getnameinfo(found->ai_addr, found->ai_addrlen, text, sizeof text, nullptr, 0, NI_NUMERICHOST);
  freeaddrinfo(found);
  if (name_rc != 0) {
    error = fmt::format("cannot resolve endpoint host '{}'", endpoint.host);
    return std::nullopt;
  }
  resolved.address = text;
  return resolved;
}

}  // namespace

bool same_upstream(const Upstream& a, const Upstream& b) {
  const UpstreamConfig& x = a.config;
  const UpstreamConfig& y = b.config;
  return a.endpoints == b.endpoints && x.name == y.name && x.endpoints == y.endpoints && x.balance == y.balance &&
         x.connect_timeout == y.connect_timeout && x.timeout == y.timeout &&
         x.max_connections == y.max_connections && x.retry_attempts == y.retry_attempts &&
         x.health_check == y.health_check && x.passive_health == y.passive_health && x.tls == y.tls;
}

namespace {

// Builds one snapshot from a config, gathering every error rather than stopping at the first.
class SnapshotBuilder {
 public:
  SnapshotBuilder(const Config& config, Snapshot& snapshot, std::vector<ConfigError>& errors)
      : config_(config), snapshot_(snapshot), errors_(errors) {}

  void add_upstreams() {
    for (const auto& [name, upstream_config] : config_.upstreams) {
      Upstream upstream{upstream_config, {}};
      for (const Endpoint& endpoint : upstream_config.endpoints) {
        std::string error;
        std::optional<ResolvedEndpoint> resolved = resolve(endpoint, error);
        if (!resolved) {
          errors_.push_back({upstream_config.position, fmt::format("upstream '{}': {}", name, error)});
          continue;
        }
        upstream.endpoints.push_back(std::move(*resolved));
      }
      upstream_index_.emplace(name, static_cast<std::uint32_t>(snapshot_.upstreams.size()));
      snapshot_.upstreams.push_back(std::move(upstream));
    }
  }

  void add_routes() {
    routing::RouteTrie trie;
    for (const RouteConfig& route : config_.routes) {
      const auto upstream = upstream_index_.find(route.upstream);
      if (upstream == upstream_index_.end()) {
        errors_.push_back(
            {route.position, fmt::format("route '{}': unknown upstream '{}'", route.name, route.upstream)});
        continue;
      }
      const auto index = static_cast<std::uint32_t>(snapshot_.routes.size());
      if (auto error = trie.add(route.match.host, route.match.path, route.match.methods, index)) {
        errors_.push_back({route.position, fmt::format("route '{}': {}", route.name, error->message)});
        continue;
      }
      snapshot_.routes.push_back({route.name, upstream->second, route.strip_prefix, route.auth, route.cache,
                                  side_target(route, route.split, config_.migration.split),
                                  side_target(route, route.shadow, config_.migration.shadow_target)});
    }
    snapshot_.trie = std::make_shared<const routing::RouteTrie>(std::move(trie));
  }

  void add_migration_lists() {
    snapshot_.beta_users.insert(config_.migration.beta_users.begin(), config_.migration.beta_users.end());
    for (const std::string& text : config_.migration.shadow_ignore) {
      std::string why;
      if (auto pattern = routing::RequestPattern::parse(text, why)) {
        snapshot_.shadow_ignore.push_back(std::move(*pattern));
      } else {
        errors_.push_back({Position{config_.source_file, 0, 0},
                           fmt::format("migration.shadow_ignore: bad pattern '{}': {}", text, why)});
      }
    }
  }

  // Dependencies' servers are resolved here too, so that workers never block on DNS.
  void resolve_dependencies() {
    if (config_.auth.enabled) resolve_all(config_.auth.redis.nodes, "auth.redis.nodes", snapshot_.redis_nodes);
    if (config_.control.enabled) {
      resolve_all(config_.control.redis.nodes, "control.redis.nodes", snapshot_.control_redis_nodes);
    }
    if (config_.rate_limits.enabled) {
      resolve_all(config_.rate_limits.redis.nodes, "rate_limits.redis.nodes", snapshot_.rate_limit_redis_nodes);
    }
    if (!config_.cache.enabled) return;
    resolve_all(config_.cache.primary.servers, "cache.primary.servers", snapshot_.cache_primary);
    if (config_.cache.secondary) {
      resolve_all(config_.cache.secondary->servers, "cache.secondary.servers", snapshot_.cache_secondary);
    }
    if (config_.cache.events.enabled) {
      resolve_all(config_.cache.events.redis.nodes, "cache.events.redis.nodes", snapshot_.cache_events_nodes);
    }
  }

 private:
  // A route's effective split or shadow, by upstream index (the loader has checked that the upstream exists).
  std::optional<SideTarget> side_target(const RouteConfig& route, const std::optional<MigrationTarget>& own,
                                        const std::optional<MigrationTarget>& fallback) {
    const MigrationTarget* target = effective_target(own, fallback);
    if (target == nullptr) return std::nullopt;
    const auto found = upstream_index_.find(target->upstream);
    if (found == upstream_index_.end()) {
      errors_.push_back(
          {route.position, fmt::format("route '{}': unknown upstream '{}'", route.name, target->upstream)});
      return std::nullopt;
    }
    return SideTarget{found->second, target->threshold};
  }

  void resolve_all(const std::vector<Endpoint>& endpoints, std::string_view key, std::vector<ResolvedEndpoint>& into) {
    for (const Endpoint& endpoint : endpoints) {
      std::string error;
      std::optional<ResolvedEndpoint> resolved = resolve(endpoint, error);
      if (!resolved) {
        errors_.push_back({Position{config_.source_file, 0, 0}, fmt::format("{}: {}", key, error)});
        continue;
      }
      into.push_back(std::move(*resolved));
    }
  }

  const Config& config_;
  Snapshot& snapshot_;
  std::vector<ConfigError>& errors_;
  std::map<std::string, std::uint32_t> upstream_index_;
};

}  // namespace

SnapshotResult build_snapshot(const Config& config, std::uint64_t generation) {
  SnapshotResult result;
  auto snapshot = std::make_shared<Snapshot>();
  snapshot->generation = generation;
  snapshot->config = config;
  snapshot->trusted_proxies = http::TrustedProxies(config.server.trusted_proxies);
  SnapshotBuilder builder(config, *snapshot, result.errors);
  builder.add_upstreams();
  builder.add_routes();
  builder.add_migration_lists();
  builder.resolve_dependencies();
  if (result.errors.empty()) result.snapshot = std::move(snapshot);
  return result;
}

}  // namespace apigw::config
