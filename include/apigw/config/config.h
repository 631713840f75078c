// The typed configuration: what `config::load` builds from YAML, validated once per load.
// The hot path never reads YAML; it reads a Snapshot built from this.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "apigw/config/tls_config.h"
#include "apigw/core/units.h"
#include "apigw/http/client_address.h"

namespace apigw::config {

// A config position, for error messages and for `/config` views: "file:line:column".
struct Position {
  std::string file;
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based; 0 when unknown
};

struct Endpoint {
  std::string host;  // IPv4 or IPv6 literal, or a host name resolved at load time
  std::uint16_t port = 0;
  std::string text() const;  // "127.0.0.1:9001", "[::1]:9001"
  bool operator==(const Endpoint&) const = default;
};

using Cidr = http::Cidr;

struct Limits {
  std::uint64_t max_header_bytes = 16 * 1024;
  std::uint64_t max_uri_bytes = 8 * 1024;
  std::uint64_t max_body_bytes = 8 * 1024 * 1024;
  core::Duration header_timeout = std::chrono::seconds(10);
  core::Duration idle_timeout = std::chrono::seconds(75);
};

struct ServerConfig {
  Endpoint listen{"127.0.0.1", 8080};
  unsigned workers = 0;  // 0 = one per core
  std::vector<Cidr> trusted_proxies;
  Limits limits;
  bool debug_headers = true;
  core::Duration drain_timeout = std::chrono::seconds(15);
  std::optional<TlsServerConfig> tls;  // TLS on the listener; nullopt: plain HTTP
};

enum class Balance { kRoundRobin, kLeastRequest, kRandom };

// Active checks: one prober per process sends GET `path` to every endpoint each `interval`.
struct HealthCheckConfig {
  bool enabled = false;  // the key is present
  std::string path = "/healthz";
  core::Duration interval = std::chrono::seconds(5);
  core::Duration timeout = std::chrono::seconds(1);  // connect + response; a 2xx or 3xx answer is healthy
  unsigned unhealthy_after = 3;                      // consecutive failures that eject
  unsigned healthy_after = 2;                        // consecutive successes that restore
  bool operator==(const HealthCheckConfig&) const = default;
};

// Passive ejection: consecutive connect failures from real traffic eject an endpoint for `eject_for`.
struct PassiveHealthConfig {
  unsigned unhealthy_after = 5;  // 0 = off
  core::Duration eject_for = std::chrono::seconds(10);
  bool operator==(const PassiveHealthConfig&) const = default;
};

struct UpstreamConfig {
  std::string name;
  std::vector<Endpoint> endpoints;
  Balance balance = Balance::kRoundRobin;
  core::Duration connect_timeout = std::chrono::milliseconds(250);
  core::Duration timeout = std::chrono::seconds(5);  // from sending the request until the whole response is read
  unsigned max_connections = 256;                    // per worker
  unsigned retry_attempts = 1;                       // extra tries, idempotent methods only
  HealthCheckConfig health_check;
  PassiveHealthConfig passive_health;
  std::optional<TlsClientConfig> tls;  // the upstream speaks HTTPS: the pool's connections and health checks
  Position position;
};

// One `auth.token_from` entry: "header:Authorization", "cookie:session_token", "query:access_token".
struct TokenSource {
  enum class Kind { kHeader, kCookie, kQuery };
  Kind kind = Kind::kHeader;
  std::string name;
  bool operator==(const TokenSource&) const = default;
};

// `auth.user_id`: where the user id is in Redis. "string" (GET: the value), "hash:<field>" (HGET), "json:<field>"
// (GET, then that top-level field of a JSON object, a string or an integer).
struct UserIdField {
  enum class Kind { kString, kHash, kJson };
  Kind kind = Kind::kString;
  std::string field;
  bool operator==(const UserIdField&) const = default;
};

// Whether a route needs a token (see AuthConfig).
enum class RouteAuth { kNone, kOptional, kRequired };

struct RouteMatch {
  std::string path;                  // pattern: "/users/:id", "/static/*rest"
  std::vector<std::string> methods;  // upper case; empty = any method
  std::string host;                  // lower case, no port; empty = any host
};

// Whose response a route's cache entry is: one for everybody, or one per authenticated user.
enum class CacheScope { kShared, kUser };

// What an invalidated tag does to a route's entries: they stop being served, or they are answered stale while one
// request refreshes them (`cache.tag_invalidation`).
enum class TagInvalidation { kGone, kStale };

// Limits on a route's cache tags.
inline constexpr std::size_t kMaxRouteCacheTags = 16;
inline constexpr std::size_t kMaxTagTemplateBytes = 128;

// Limits that keep every response-cache key within Memcached's 250 bytes (see cache/cache_key.h).
inline constexpr std::size_t kMaxCacheKeyPrefixBytes = 64;
inline constexpr std::size_t kMaxCachedRouteNameBytes = 118;

// A route's `cache`: which of its GET and HEAD responses are stored in the response cache, and for how long.
struct RouteCacheConfig {
  bool enabled = false;                 // the key is present
  std::chrono::seconds ttl{0};          // upper bound of an entry's freshness; the lifetime when the upstream gives none
  std::vector<std::string> vary;        // request header names (as written) whose values are part of the key
  CacheScope scope = CacheScope::kShared;
  std::vector<unsigned> statuses{200};  // response statuses that may be stored
  // Responses to requests with an Authorization header are stored for everybody even without `public`,
  // `s-maxage` or `must-revalidate` (RFC 9111 §3.5 forbids it otherwise).
  bool share_authorized = false;
  // Tags every stored response of the route gets, as written: literal text with path parameters in braces
  // ("product:{id}"); expanded per request from the route's match.
  std::vector<std::string> tags;
  std::string tag_header = "Surrogate-Key";  // the upstream's response header that lists more tags, space-separated
  // RFC 5861 windows past an entry's freshness: the longest an upstream's stale-while-revalidate / stale-if-error
  // may ask for, and what applies when it says nothing.
  std::chrono::seconds stale_while_revalidate{0};
  std::chrono::seconds stale_if_error{0};
  TagInvalidation tag_invalidation = TagInvalidation::kGone;
  bool operator==(const RouteCacheConfig&) const = default;
};

// A route's `split` or `shadow` (or the `migration` default for every route): the other side's upstream and the
// share of affinity buckets that goes there.
struct MigrationTarget {
  std::string upstream;
  std::string percent;     // as written, for views and messages: "0.01", "25"
  std::uint32_t threshold = 0;  // buckets [0, threshold) are in: percent × buckets / 100, exact
  bool operator==(const MigrationTarget&) const = default;
};

// What a rate limit counts by: the authenticated user, the client's address, a request header's value, or the
// route as a whole.
struct RateLimitKey {
  enum class Kind { kUser, kClientIp, kHeader, kRoute };
  Kind kind = Kind::kUser;
  std::string header;  // kHeader: the header's name, as written
  bool operator==(const RateLimitKey&) const = default;
};

// One `rate_limit` entry of a route: `count` requests per `period`, up to `burst` at once (a token bucket of
// `burst` tokens refilled at count/period), for each value of `key`, across the whole fleet.
struct RouteRateLimit {
  RateLimitKey key;
  std::uint64_t count = 0;
  std::chrono::seconds period{1};  // 1s, 1m, 1h or 1d
  std::uint64_t burst = 0;         // default: count
  bool shadow = false;             // counted and logged, never refused
  Position position;
  bool operator==(const RouteRateLimit&) const = default;
};

struct RouteConfig {
  std::string name;
  RouteMatch match;
  std::string upstream;
  std::string strip_prefix;  // empty = no rewrite
  RouteAuth auth = RouteAuth::kNone;
  RouteCacheConfig cache;
  // The route's own `split` and `shadow`; absent, the `migration` defaults apply. `split: off` (or `shadow: off`)
  // is a target with an empty upstream: no default for this route.
  std::optional<MigrationTarget> split;
  std::optional<MigrationTarget> shadow;
  std::string site;  // the `edge` site that serves the route at the edge; empty: `edge.default`
  std::vector<RouteRateLimit> rate_limits;  // needs a `rate_limits` section; checked in order, every one must pass
  Position position;
};

// The Redis that holds the sessions: one server, or the seed nodes of a Redis Cluster.
struct RedisConfig {
  std::vector<Endpoint> nodes{{"127.0.0.1", 6379}};
  bool cluster = false;
  std::string username;  // ACL user; needs a password
  std::string password;
  unsigned db = 0;  // standalone only
  core::Duration timeout = std::chrono::milliseconds(50);  // bounds each Redis round trip
  unsigned connections = 2;                                  // per worker (per master for a cluster), pipelined
  std::optional<TlsClientConfig> tls;  // TLS to every node (cluster redirections included)
  bool operator==(const RedisConfig&) const = default;
};

struct AuthCacheConfig {
  core::Duration ttl = std::chrono::seconds(5);           // a valid token is trusted this long; 0 = not cached
  core::Duration negative_ttl = std::chrono::seconds(1);  // an unknown token is refused this long; 0 = not cached
  unsigned max_entries = 100000;                           // per worker; 0 = no local cache
  bool operator==(const AuthCacheConfig&) const = default;
};

enum class AuthOnError { kReject, kAnonymous };

// `auth`: bearer tokens looked up in Redis for routes with `auth: required` or `auth: optional`.
struct AuthConfig {
  bool enabled = false;  // the section is present
  RedisConfig redis;
  std::vector<TokenSource> token_from{{TokenSource::Kind::kHeader, "Authorization"}};
  std::string key = "session:{token}";
  UserIdField user_id;
  std::string forward_header = "X-User-Id";
  AuthCacheConfig cache;
  AuthOnError on_error = AuthOnError::kReject;
  bool operator==(const AuthConfig&) const = default;
};

// `cache.primary`: the Memcached servers responses are read from and written to.
struct CachePrimaryConfig {
  std::vector<Endpoint> servers{{"127.0.0.1", 11211}};
  core::Duration timeout = std::chrono::milliseconds(50);  // bounds each Memcached round trip
  unsigned connections = 2;                                  // per worker and server
  std::optional<TlsClientConfig> tls;
  bool operator==(const CachePrimaryConfig&) const = default;
};

// `cache.secondary`: Memcached servers that receive a copy of every write and are never read.
struct CacheSecondaryConfig {
  std::vector<Endpoint> servers;
  core::Duration timeout = std::chrono::milliseconds(200);
  unsigned queue = 10000;  // writes waiting to be sent; beyond it new ones are dropped
  std::optional<TlsClientConfig> tls;
  bool operator==(const CacheSecondaryConfig&) const = default;
};

// `cache.api`: the `/_cache` endpoints on the admin listener, guarded by a bearer token.
struct CacheApiConfig {
  bool enabled = false;  // the key is present
  std::string token;     // never logged
  bool operator==(const CacheApiConfig&) const = default;
};

// `cache.events`: a Redis Stream of invalidation events, read by the fleet as one consumer group.
struct CacheEventsConfig {
  bool enabled = false;  // the key is present
  RedisConfig redis = default_redis();
  std::string stream = "apigw:cache-events";
  std::string group = "apigw";
  core::Duration claim_after = std::chrono::seconds(30);  // a pending event idle this long is taken over
  core::Duration poll = std::chrono::milliseconds(200);    // how often the stream is read while it is quiet
  unsigned batch = 100;                                    // events read at once
  bool operator==(const CacheEventsConfig&) const = default;

  static RedisConfig default_redis() {
    RedisConfig redis;
    redis.timeout = std::chrono::milliseconds(500);
    redis.connections = 1;
    return redis;
  }
};

// `cache`: the response cache in Memcached, for routes with a `cache` key.
struct CacheConfig {
  bool enabled = false;  // the section is present
  CachePrimaryConfig primary;
  std::optional<CacheSecondaryConfig> secondary;
  std::string key_prefix = "apigw:";
  std::uint64_t max_item_bytes = 1024 * 1024;  // an encoded record larger than this is not stored
  CacheApiConfig api;
  // A missed key is fetched by one request of the whole fleet while the others wait for it (Memcached's
  // vivify-on-miss); off: one request per worker.
  bool fill_lock = true;
  CacheEventsConfig events;
  bool operator==(const CacheConfig&) const = default;
};

// Where a request's affinity key comes from (`migration.affinity`); the first one present wins.
struct AffinitySource {
  enum class Kind { kUserId, kHeader, kCookie, kClientIp };
  Kind kind = Kind::kUserId;
  std::string name;  // the header or cookie name
  bool operator==(const AffinitySource&) const = default;
};

// `migration.shadow`'s settings (its upstream and percent are the routes' default MigrationTarget).
struct ShadowSettings {
  unsigned max_in_flight = 1000;  // per worker; beyond it shadows are dropped and counted
  core::Duration timeout = std::chrono::seconds(5);
  std::string header = "X-Apigw-Shadow";  // sent as "1" on every shadow copy; a request carrying it is never shadowed
  std::uint64_t max_body_bytes = 1024 * 1024;  // a request with a larger body is not copied (dropped and counted)
  unsigned pipeline = 16;  // at most this many copies written together on one connection (1: one at a time)
  bool operator==(const ShadowSettings&) const = default;
};

// `migration.audit`: a record comparing the two sides' answers, for a sample of shadowed requests.
struct AuditConfig {
  bool enabled = false;  // the key is present
  std::string sink;      // "file:/path", "http://host:port/path" or "https://host:port/path"
  std::optional<TlsClientConfig> tls;  // with an https sink (the defaults when the block is left out), else nullopt
  unsigned sample = 100;  // percent of shadowed requests audited, 0..100
  std::vector<std::string> ignore_fields;  // JSON pointers left out of the comparison
  std::uint64_t max_body_bytes = 64 * 1024;  // bodies are compared up to this size; larger ones by hash only
  bool operator==(const AuditConfig&) const = default;
};

// `migration`: moving traffic between two datacenters (docs/configuration.md, `migration`).
struct MigrationConfig {
  bool enabled = false;  // the section is present
  std::uint32_t buckets = 10000;  // affinity granularity: a percent step is 100 / buckets
  std::vector<AffinitySource> affinity{{AffinitySource::Kind::kUserId, {}},
                                       {AffinitySource::Kind::kClientIp, {}}};
  std::vector<std::string> beta_users;  // always split and shadowed, whatever the percent
  std::vector<std::string> shadow_ignore;  // "[METHOD ]/path/pattern" (* one segment, ** any depth)
  ShadowSettings shadow;
  AuditConfig audit;
  std::optional<MigrationTarget> split;          // the default of routes without their own
  std::optional<MigrationTarget> shadow_target;  // the default of routes without their own (migration.shadow)
  bool operator==(const MigrationConfig&) const = default;
};

// The target a route's requests use: its own, else the section's default (`fallback`); nullptr for none, and for a
// route's `off`.
const MigrationTarget* effective_target(const std::optional<MigrationTarget>& own,
                                        const std::optional<MigrationTarget>& fallback);

// `control`: the fleet's runtime overrides of the migration (split and shadow percents, beta users, the shadow
// ignore list, abort), kept in Redis and applied by every instance of `fleet` at the same instant.
struct ControlConfig {
  bool enabled = false;  // the section is present
  RedisConfig redis = default_redis();
  std::string fleet;  // letters, digits, '_', '.', '-'
  core::Duration delay = std::chrono::seconds(2);  // from a change's write to the instant every instance applies it
  core::Duration poll = std::chrono::seconds(5);   // the state is read again at least this often
  std::string state_file;  // the last applied state, read at start while Redis is unreachable; empty: none
  bool operator==(const ControlConfig&) const = default;

  static RedisConfig default_redis() {
    RedisConfig redis;
    redis.timeout = std::chrono::milliseconds(200);
    redis.connections = 1;
    return redis;
  }
};

struct LogConfig {
  std::string access = "stdout";  // "stdout" | "off" | a file path
  std::string level = "info";     // trace | debug | info | warn | error | critical | off
};

// `rate_limits`: where the fleet's counters live, and what a failing Redis means for a request.
enum class RateLimitOnError { kAllow, kDeny };
struct RateLimitsConfig {
  bool enabled = false;  // the section is present
  RedisConfig redis;
  RateLimitOnError on_error = RateLimitOnError::kAllow;
  bool headers = true;  // RateLimit and RateLimit-Policy on the answers of limited routes (always on a 429)
  bool operator==(const RateLimitsConfig&) const = default;
};

// `tracing`: W3C Trace Context on every request (traceparent and tracestate read, and sent to upstreams), and spans
// of the sampled requests exported to an OpenTelemetry collector over OTLP/HTTP.
struct TracingConfig {
  bool enabled = false;    // the section is present
  std::string sample = "1";  // percent of new traces sampled, as written without its '%' ("1", "0.5", "100")
  double ratio = 0.01;     // sample / 100
  std::string otlp;        // the collector's OTLP/HTTP base URL, without a trailing '/'; empty: nothing is exported
  std::string export_url;  // otlp + "/v1/traces", where spans are POSTed
  std::optional<TlsClientConfig> tls;  // with an https collector (the defaults when the block is left out)
  std::string service_name = "apigw";
  std::uint32_t queue = 2048;  // spans waiting to be exported; beyond this, new spans are dropped and counted
  core::Duration timeout = std::chrono::seconds(2);  // an export POST that takes longer fails
  bool operator==(const TracingConfig&) const = default;
};

// One `edge.sites` entry: a deployment (the old side, the new side) and the origin the edge sends its requests to.
struct EdgeSite {
  std::string name;    // letters, digits, '_' and '-': safe as an NGINX upstream name and in a JavaScript string
  std::string origin;  // as written, without a trailing '/': "https://api-cloud.example.com"
  bool tls = false;    // https://
  std::string host;    // the origin's host name or IP literal (without brackets)
  std::uint16_t port = 0;  // as written, else 80 or 443
  Position position;
  bool operator==(const EdgeSite&) const = default;
};

// `edge`: the deployments a CDN edge or an NGINX front chooses between by route (`apigw edge-export`). The data
// path never reads it.
struct EdgeConfig {
  bool enabled = false;          // the section is present
  std::vector<EdgeSite> sites;   // file order
  std::string default_site;      // serves routes without a `site`, and requests that match no route
  std::string header = "X-Apigw-Site";  // the request header the edge adds, naming the site it chose
  bool operator==(const EdgeConfig&) const = default;

  const EdgeSite* find(std::string_view name) const {
    for (const EdgeSite& site : sites) {
      if (site.name == name) return &site;
    }
    return nullptr;
  }
};

struct AdminConfig {
  Endpoint listen{"127.0.0.1", 9901};
  bool enabled = true;  // `admin: { listen: off }` turns it off
  std::optional<TlsServerConfig> tls;  // TLS on the admin listener; nullopt: plain HTTP
};

struct ReloadConfig {
  bool watch = false;  // also reload when a config file changes on disk
  core::Duration interval = std::chrono::seconds(2);
};

struct Config {
  std::string source_file;      // the main file, as given
  std::vector<std::string> files;  // every file read (main first, then includes), for reload watching
  ServerConfig server;
  LogConfig log;
  AdminConfig admin;
  ReloadConfig reload;
  AuthConfig auth;
  CacheConfig cache;
  MigrationConfig migration;
  ControlConfig control;
  RateLimitsConfig rate_limits;
  TracingConfig tracing;
  EdgeConfig edge;
  std::map<std::string, UpstreamConfig> upstreams;
  std::vector<RouteConfig> routes;  // file order (main, then includes in order)
};

}  // namespace apigw::config
