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
         x.health_check == y.health_check && x.passive_health == y.passive_health;
}

SnapshotResult build_snapshot(const Config& config, std::uint64_t generation) {
  SnapshotResult result;
  auto snapshot = std::make_shared<Snapshot>();
  snapshot->generation = generation;
  snapshot->config = config;
  snapshot->trusted_proxies = http::TrustedProxies(config.server.trusted_proxies);

  std::map<std::string, std::uint32_t> upstream_index;
  // A route's effective split or shadow, by upstream index (the loader has checked that the upstream exists).
  const auto side_target = [&](const RouteConfig& route, const std::optional<MigrationTarget>& own,
                               const std::optional<MigrationTarget>& fallback) -> std::optional<SideTarget> {
    const MigrationTarget* target = effective_target(own, fallback);
    if (target == nullptr) return std::nullopt;
    const auto found = upstream_index.find(target->upstream);
    if (found == upstream_index.end()) {
      result.errors.push_back(
          {route.position, fmt::format("route '{}': unknown upstream '{}'", route.name, target->upstream)});
      return std::nullopt;
    }
    return SideTarget{found->second, target->threshold};
  };
  for (const auto& [name, upstream_config] : config.upstreams) {
    Upstream upstream{upstream_config, {}};
    for (const Endpoint& endpoint : upstream_config.endpoints) {
      std::string error;
      std::optional<ResolvedEndpoint> resolved = resolve(endpoint, error);
      if (!resolved) {
        result.errors.push_back({upstream_config.position, fmt::format("upstream '{}': {}", name, error)});
        continue;
      }
      upstream.endpoints.push_back(std::move(*resolved));
    }
    upstream_index.emplace(name, static_cast<std::uint32_t>(snapshot->upstreams.size()));
    snapshot->upstreams.push_back(std::move(upstream));
  }

  for (const RouteConfig& route_config : config.routes) {
    const auto upstream = upstream_index.find(route_config.upstream);
    if (upstream == upstream_index.end()) {
      result.errors.push_back({route_config.position, fmt::format("route '{}': unknown upstream '{}'",
                                                                  route_config.name, route_config.upstream)});
      continue;
    }
    const auto index = static_cast<std::uint32_t>(snapshot->routes.size());
    if (auto error = snapshot->trie.add(route_config.match.host, route_config.match.path,
                                        route_config.match.methods, index)) {
      result.errors.push_back({route_config.position, fmt::format("route '{}': {}", route_config.name,
                                                                  error->message)});
      continue;
    }
    snapshot->routes.push_back({route_config.name, upstream->second, route_config.strip_prefix, route_config.auth,
                                route_config.cache,
                                side_target(route_config, route_config.split, config.migration.split),
                                side_target(route_config, route_config.shadow, config.migration.shadow_target)});
  }
  snapshot->beta_users.insert(config.migration.beta_users.begin(), config.migration.beta_users.end());
  for (const std::string& text : config.migration.shadow_ignore) {
    std::string why;
    if (auto pattern = routing::RequestPattern::parse(text, why)) {
      snapshot->shadow_ignore.push_back(std::move(*pattern));
    } else {
      result.errors.push_back({Position{config.source_file, 0, 0},
                               fmt::format("migration.shadow_ignore: bad pattern '{}': {}", text, why)});
    }
  }

  // Dependencies' servers are resolved here too, so that workers never block on DNS.
  const auto resolve_all = [&](const std::vector<Endpoint>& endpoints, std::string_view key,
                               std::vector<ResolvedEndpoint>& into) {
    for (const Endpoint& endpoint : endpoints) {
      std::string error;
      std::optional<ResolvedEndpoint> resolved = resolve(endpoint, error);
      if (!resolved) {
        result.errors.push_back({Position{config.source_file, 0, 0}, fmt::format("{}: {}", key, error)});
        continue;
      }
      into.push_back(std::move(*resolved));
    }
  };
  if (config.auth.enabled) resolve_all(config.auth.redis.nodes, "auth.redis.nodes", snapshot->redis_nodes);
  if (config.cache.enabled) {
    resolve_all(config.cache.primary.servers, "cache.primary.servers", snapshot->cache_primary);
    if (config.cache.secondary) {
      resolve_all(config.cache.secondary->servers, "cache.secondary.servers", snapshot->cache_secondary);
    }
  }

  if (result.errors.empty()) result.snapshot = std::move(snapshot);
  return result;
}

}  // namespace apigw::config
