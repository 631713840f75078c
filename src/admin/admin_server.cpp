// The admin listener and its views (see admin_server.h).
#include "apigw/admin/admin_server.h"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "apigw/admin/cache_api.h"
#include "apigw/net/endpoint.h"
#include "apigw/net/no_throw.h"
#include "apigw/net/tls_asio.h"
#include "apigw/routing/route_order.h"

namespace apigw::admin {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace json = boost::json;

namespace {

using net::kNoThrow;
constexpr auto kIdleTimeout = std::chrono::seconds(30);
constexpr std::uint64_t kMaxRequestBytes = 64 * 1024;
constexpr unsigned kMaxConnections = 64;
// After a 413, the unread body is read and dropped this long (at most this much) before the connection closes.
constexpr auto kLingerTime = std::chrono::seconds(1);
constexpr std::size_t kLingerBytes = 256 * 1024 * 1024;
constexpr std::string_view kJson = "application/json";

std::string duration_text(core::Duration duration) {
  const auto ms = duration.count();
  if (ms != 0 && ms % 60'000 == 0) return fmt::format("{}m", ms / 60'000);
  if (ms != 0 && ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
  return fmt::format("{}ms", ms);
}

std::string_view balance_text(config::Balance balance) {
  switch (balance) {
    case config::Balance::kRoundRobin: return "round_robin";
    case config::Balance::kLeastRequest: return "least_request";
    case config::Balance::kRandom: return "random";
  }
  return "round_robin";
}

json::array strings(const std::vector<std::string>& values) {
  json::array out;
  for (const auto& value : values) out.emplace_back(value);
  return out;
}

json::object upstream_object(const config::UpstreamConfig& upstream) {
  json::array endpoints;
  for (const auto& endpoint : upstream.endpoints) endpoints.emplace_back(endpoint.text());
  json::object out{{"endpoints", std::move(endpoints)},
                   {"balance", balance_text(upstream.balance)},
                   {"connect_timeout", duration_text(upstream.connect_timeout)},
                   {"timeout", duration_text(upstream.timeout)},
                   {"max_connections", upstream.max_connections},
                   {"retries", json::object{{"attempts", upstream.retry_attempts}}},
                   {"passive_health", json::object{{"unhealthy_after", upstream.passive_health.unhealthy_after},
                                                   {"eject_for", duration_text(upstream.passive_health.eject_for)}}}};
  if (upstream.tls) {
    // What the upstream's TLS is, never the files' contents.
    json::object tls{{"verify", upstream.tls->verify},
                     {"min_version", upstream.tls->min_version == config::TlsVersion::k13 ? "1.3" : "1.2"},
                     {"ca", upstream.tls->ca ? json::value(upstream.tls->ca->path) : json::value("system")}};
    if (!upstream.tls->sni.empty()) tls["sni"] = upstream.tls->sni;
    if (upstream.tls->cert) tls["cert"] = upstream.tls->cert->path;
    out["tls"] = std::move(tls);
  }
  const config::HealthCheckConfig& check = upstream.health_check;
  if (check.enabled) {
    out["health_check"] = json::object{{"path", check.path},
                                       {"interval", duration_text(check.interval)},
                                       {"timeout", duration_text(check.timeout)},
                                       {"unhealthy_after", check.unhealthy_after},
                                       {"healthy_after", check.healthy_after}};
  } else {
    out["health_check"] = nullptr;
  }
  return out;
}

json::object target_object(const config::MigrationTarget& target) {
  return {{"upstream", target.upstream}, {"percent", target.percent}, {"threshold", target.threshold}};
}

// A route's effective split or shadow, and whether it is the route's own or the `migration` default.
json::value side_value(const std::optional<config::MigrationTarget>& own,
                       const std::optional<config::MigrationTarget>& fallback) {
  const config::MigrationTarget* target = config::effective_target(own, fallback);
  if (target == nullptr) return nullptr;
  json::object out = target_object(*target);
  out["from"] = own ? "route" : "migration";
  return out;
}

std::string affinity_text(const config::AffinitySource& source) {
  switch (source.kind) {
    case config::AffinitySource::Kind::kUserId: return "user_id";
    case config::AffinitySource::Kind::kHeader: return "header:" + source.name;
    case config::AffinitySource::Kind::kCookie: return "cookie:" + source.name;
    case config::AffinitySource::Kind::kClientIp: return "client_ip";
  }
  return "user_id";
}

json::value migration_value(const config::MigrationConfig& migration) {
  if (!migration.enabled) return nullptr;
  json::array affinity;
  for (const auto& source : migration.affinity) affinity.emplace_back(affinity_text(source));
  json::object shadow{{"max_in_flight", migration.shadow.max_in_flight},
                      {"timeout", duration_text(migration.shadow.timeout)},
                      {"header", migration.shadow.header},
                      {"max_body_bytes", migration.shadow.max_body_bytes},
                      {"pipeline", migration.shadow.pipeline}};
  if (migration.shadow_target) {  // the default shadow target, written inside migration.shadow
    for (const auto& [key, value] : target_object(*migration.shadow_target)) shadow[key] = value;
  }
  json::value audit = nullptr;
  if (migration.audit.enabled) {
    audit = json::object{{"sink", migration.audit.sink},
                         {"sample", migration.audit.sample},
                         {"ignore_fields", strings(migration.audit.ignore_fields)},
                         {"max_body_bytes", migration.audit.max_body_bytes}};
  }
  return json::object{{"buckets", migration.buckets},
                      {"affinity", std::move(affinity)},
                      {"beta_users", strings(migration.beta_users)},
                      {"shadow_ignore", strings(migration.shadow_ignore)},
                      {"shadow", std::move(shadow)},
                      {"split", migration.split ? json::value(target_object(*migration.split)) : nullptr},
                      {"audit", std::move(audit)}};
}

json::value control_value(const config::ControlConfig& control) {
  if (!control.enabled) return nullptr;
  json::array nodes;
  for (const auto& node : control.redis.nodes) nodes.emplace_back(node.text());
  // The password is never shown.
  return json::object{{"redis", json::object{{"nodes", std::move(nodes)},
                                             {"cluster", control.redis.cluster},
                                             {"timeout", duration_text(control.redis.timeout)},
                                             {"tls", control.redis.tls.has_value()}}},
                      {"fleet", control.fleet},
                      {"delay", duration_text(control.delay)},
                      {"poll", duration_text(control.poll)},
                      {"state_file", control.state_file.empty() ? json::value(nullptr)
                                                                : json::value(control.state_file)}};
}

std::string rate_key_text(const config::RateLimitKey& key) {
  switch (key.kind) {
    case config::RateLimitKey::Kind::kUser: return "user";
    case config::RateLimitKey::Kind::kClientIp: return "client_ip";
    case config::RateLimitKey::Kind::kHeader: return "header:" + key.header;
    case config::RateLimitKey::Kind::kRoute: break;
  }
  return "route";
}

std::string rate_text(const config::RouteRateLimit& limit) {
  const char* unit = limit.period.count() == 1 ? "s" : limit.period.count() == 60 ? "m"
                     : limit.period.count() == 3600 ? "h" : "d";
  return fmt::format("{}/{}", limit.count, unit);
}

json::value tracing_value(const config::TracingConfig& tracing) {
  if (!tracing.enabled) return nullptr;
  return json::object{{"sample", tracing.sample + "%"},
                      {"otlp", tracing.otlp.empty() ? json::value(nullptr) : json::value(tracing.otlp)},
                      {"service_name", tracing.service_name},
                      {"queue", tracing.queue},
                      {"timeout", duration_text(tracing.timeout)},
                      {"tls", tracing.tls.has_value()}};
}

json::value rate_limits_value(const config::RateLimitsConfig& limits) {
  if (!limits.enabled) return nullptr;
  json::array nodes;
  for (const auto& node : limits.redis.nodes) nodes.emplace_back(node.text());
  // The password is never shown.
  return json::object{{"redis", json::object{{"nodes", std::move(nodes)},
                                             {"cluster", limits.redis.cluster},
                                             {"timeout", duration_text(limits.redis.timeout)},
                                             {"tls", limits.redis.tls.has_value()}}},
                      {"on_error", limits.on_error == config::RateLimitOnError::kAllow ? "allow" : "deny"},
                      {"headers", limits.headers}};
}

json::value edge_value(const config::EdgeConfig& edge) {
  if (!edge.enabled) return nullptr;
  json::object sites;
  for (const config::EdgeSite& site : edge.sites) sites[site.name] = site.origin;
  return json::object{{"sites", std::move(sites)}, {"default", edge.default_site}, {"header", edge.header}};
}

json::object route_object(const config::Config& config, const config::RouteConfig& route) {
  json::object match{{"path", route.match.path}, {"methods", strings(route.match.methods)}};
  match["host"] = route.match.host.empty() ? json::value(nullptr) : json::value(route.match.host);
  json::object out{{"name", route.name}, {"match", std::move(match)}, {"upstream", route.upstream}};
  if (!route.strip_prefix.empty()) out["rewrite"] = json::object{{"strip_prefix", route.strip_prefix}};
  out["split"] = side_value(route.split, config.migration.split);
  out["shadow"] = side_value(route.shadow, config.migration.shadow_target);
  if (config.edge.enabled) out["site"] = route.site.empty() ? config.edge.default_site : route.site;
  if (!route.rate_limits.empty()) {
    json::array limits;
    for (const config::RouteRateLimit& limit : route.rate_limits) {
      limits.push_back(json::object{{"key", rate_key_text(limit.key)},
                                    {"rate", rate_text(limit)},
                                    {"burst", limit.burst},
                                    {"shadow", limit.shadow}});
    }
    out["rate_limit"] = std::move(limits);
  }
  out["source"] = fmt::format("{}:{}", route.position.file, route.position.line);
  return out;
}

std::string pretty(const json::value& value) { return json::serialize(value) + "\n"; }

std::string error_body(std::string_view message) {
  return pretty(json::object{{"error", message}});
}

}  // namespace

std::string config_json(const config::Snapshot& snapshot) {
  const config::Config& config = snapshot.config;
  const config::ServerConfig& server = config.server;
  json::array trusted;
  for (const auto& cidr : server.trusted_proxies) trusted.emplace_back(cidr.text);
  json::object limits{{"max_header_bytes", server.limits.max_header_bytes},
                      {"max_uri_bytes", server.limits.max_uri_bytes},
                      {"max_body_bytes", server.limits.max_body_bytes},
                      {"header_timeout", duration_text(server.limits.header_timeout)},
                      {"idle_timeout", duration_text(server.limits.idle_timeout)}};
  json::object upstreams;
  for (const auto& [name, upstream] : config.upstreams) upstreams[name] = upstream_object(upstream);
  json::array routes;
  for (const auto& route : config.routes) routes.push_back(route_object(config, route));
  json::object out{
      {"generation", snapshot.generation},
      {"files", strings(config.files)},
      {"server", json::object{{"listen", server.listen.text()},
                              {"workers", server.workers},
                              {"trusted_proxies", std::move(trusted)},
                              {"limits", std::move(limits)},
                              {"debug_headers", server.debug_headers},
                              {"drain_timeout", duration_text(server.drain_timeout)}}},
      {"log", json::object{{"access", config.log.access}, {"level", config.log.level}}},
      {"admin", json::object{{"listen", config.admin.enabled ? json::value(config.admin.listen.text())
                                                              : json::value("off")}}},
      {"reload", json::object{{"watch", config.reload.watch}, {"interval", duration_text(config.reload.interval)}}},
      {"migration", migration_value(config.migration)},
      {"control", control_value(config.control)},
      {"rate_limits", rate_limits_value(config.rate_limits)},
      {"tracing", tracing_value(config.tracing)},
      {"edge", edge_value(config.edge)},
      {"upstreams", std::move(upstreams)},
      {"routes", std::move(routes)}};
  return pretty(out);
}

std::string routes_json(const config::Snapshot& snapshot) {
  std::vector<routing::RouteKey> keys;
  for (const auto& route : snapshot.config.routes) {
    keys.push_back({route.match.host, route.match.path, route.match.methods});
  }
  json::array routes;
  for (const std::uint32_t index : routing::match_order(keys)) {
    routes.push_back(route_object(snapshot.config, snapshot.config.routes[index]));
  }
  return pretty(json::object{{"generation", snapshot.generation}, {"routes", std::move(routes)}});
}

std::string upstreams_json(const config::Snapshot& snapshot, const upstream::HealthTable* health) {
  std::vector<upstream::EndpointHealthPtr> entries;
  if (health) entries = health->all();
  const auto find = [&](const std::string& upstream, const std::string& endpoint) -> upstream::EndpointHealth* {
    for (const auto& entry : entries) {
      if (entry->upstream == upstream && entry->endpoint == endpoint) return entry.get();
    }
    return nullptr;
  };
  const auto now = upstream::EndpointHealth::Clock::now();
  json::object upstreams;
  for (const config::Upstream& upstream : snapshot.upstreams) {
    json::array endpoints;
    std::size_t available = 0;
    for (const config::ResolvedEndpoint& endpoint : upstream.endpoints) {
      const upstream::EndpointHealth* state = find(upstream.config.name, endpoint.text);
      const bool probe_ok = !state || state->probe_healthy.load();
      const bool ejected = state && state->ejected(now);
      json::object item{{"endpoint", endpoint.text},
                        {"address", fmt::format("{}:{}", endpoint.address, endpoint.port)},
                        {"healthy", probe_ok && !ejected},
                        {"health_check", upstream.config.health_check.enabled
                                             ? json::value(probe_ok ? "passing" : "failing")
                                             : json::value("off")},
                        {"ejected", ejected},
                        {"consecutive_connect_failures", state ? state->connect_failures.load() : 0u},
                        {"ejections", state ? state->ejections.load() : std::uint64_t{0}}};
      if (probe_ok && !ejected) ++available;
      endpoints.push_back(std::move(item));
    }
    upstreams[upstream.config.name] = json::object{{"balance", balance_text(upstream.config.balance)},
                                                   {"tls", upstream.config.tls.has_value()},
                                                   {"healthy_endpoints", available},
                                                   {"endpoints", std::move(endpoints)}};
  }
  return pretty(json::object{{"generation", snapshot.generation}, {"upstreams", std::move(upstreams)}});
}

struct AdminServer::Response {
  unsigned status = 200;
  std::string_view content_type = kJson;
  std::string body;
  std::string_view allow;
  std::vector<std::pair<std::string, std::string>> headers;
};

AdminServer::AdminServer(asio::any_io_executor executor, AdminSources sources)
    : executor_(std::move(executor)), sources_(std::move(sources)) {}

AdminServer::~AdminServer() { stop(); }

void AdminServer::listen(const config::Endpoint& endpoint) {
  auto acceptor = std::make_shared<asio::ip::tcp::acceptor>(executor_);
  try {
    const asio::ip::tcp::endpoint bound = net::tcp_endpoint(endpoint);
    acceptor->open(bound.protocol());
    acceptor->set_option(asio::socket_base::reuse_address(true));
    acceptor->bind(bound);
    acceptor->listen();
  } catch (const boost::system::system_error& bind_error) {
    throw std::runtime_error(
        fmt::format("cannot listen on {} (admin): {}", endpoint.text(), bind_error.code().message()));
  }
  boost::system::error_code ignored;
  if (acceptor_) acceptor_->close(ignored);
  stopped_->store(true);  // connections of the previous listener end after their current request
  stopped_ = std::make_shared<std::atomic<bool>>(false);
  acceptor_ = acceptor;
  address_ = endpoint;
  asio::co_spawn(executor_, accept_loop(std::move(acceptor)), asio::detached);
}

void AdminServer::stop() {
  stopped_->store(true);
  if (acceptor_) {
    boost::system::error_code ignored;
    acceptor_->close(ignored);
    acceptor_.reset();
  }
}

asio::awaitable<void> AdminServer::accept_loop(std::shared_ptr<asio::ip::tcp::acceptor> acceptor) {
  const auto stopped = stopped_;
  for (;;) {
    auto [error, socket] = co_await acceptor->async_accept(kNoThrow);
    if (!acceptor->is_open() || stopped->load()) co_return;
    if (error) {
      // Out of descriptors: back off instead of spinning the main loop on the same error.
      asio::steady_timer pause(executor_, std::chrono::milliseconds(50));
      co_await pause.async_wait(kNoThrow);
      continue;
    }
    if (connections_ >= kMaxConnections) continue;  // the socket closes as it goes out of scope
    asio::co_spawn(executor_, serve(std::move(socket), tls_), asio::detached);
  }
}

asio::awaitable<void> AdminServer::serve(asio::ip::tcp::socket socket, std::shared_ptr<net::TlsServerContext> tls) {
  ++connections_;
  struct Slot {
    unsigned& count;
    ~Slot() { --count; }
  } slot{connections_};
  boost::system::error_code ignored;
  if (!tls) {
    beast::tcp_stream stream(std::move(socket));
    co_await exchange(stream);
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    co_return;
  }
  beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), net::asio_context(*tls));
  beast::get_lowest_layer(stream).expires_after(kIdleTimeout);
  auto [error] = co_await stream.async_handshake(asio::ssl::stream_base::server, kNoThrow);
  if (error) {
    spdlog::debug("admin listener: TLS handshake failed: {}", error.message());
    co_return;
  }
  co_await exchange(stream);
  // close_notify, and the client's, within a short time.
  beast::get_lowest_layer(stream).expires_after(kLingerTime);
  co_await stream.async_shutdown(kNoThrow);
  beast::get_lowest_layer(stream).socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
}

template <typename Stream>
asio::awaitable<void> AdminServer::exchange(Stream& stream) {
  const auto stopped = stopped_;
  auto& tcp = beast::get_lowest_layer(stream);
  beast::flat_buffer buffer;
  bool unread_body = false;
  for (;;) {
    tcp.expires_after(kIdleTimeout);
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(boost::none);  // the limit depends on the endpoint, set once the head is read
    auto [head_error, head_read] = co_await bhttp::async_read_header(stream, buffer, parser, kNoThrow);
    if (head_error || stopped->load()) break;
    const std::string_view target = parser.get().target();
    const bool cache_api = is_cache_api_path(target.substr(0, target.find('?')));
    std::uint64_t body_limit = kMaxRequestBytes;
    if (const config::SnapshotPtr snapshot = sources_.snapshot(); cache_api && snapshot) {
      // A value may be as large as an entry may be (plus room to tell a value just over it).
      body_limit = std::max(body_limit, snapshot->config.cache.max_item_bytes + 1);
    }
    const std::string too_large =
        cache_api ? fmt::format("the value exceeds cache.max_item_bytes ({} bytes)", body_limit - 1)
                  : fmt::format("the request body exceeds {} bytes", body_limit);
    Response answer;
    bool keep_alive = true;
    if (parser.content_length() && *parser.content_length() > body_limit) {
      answer = {413, kJson, error_body(too_large), {}, {}};
      keep_alive = false;  // the body is not read
      unread_body = true;
    } else {
      parser.body_limit(body_limit);
      auto [read_error, read] = co_await bhttp::async_read(stream, buffer, parser, kNoThrow);
      if (read_error == bhttp::error::body_limit) {
        answer = {413, kJson, error_body(too_large), {}, {}};
        keep_alive = false;
        unread_body = true;
      } else if (read_error || stopped->load()) {
        break;
      } else if (cache_api) {
        // Locals, not temporaries of the co_await expression (g++ 12 may destroy those twice).
        std::shared_ptr<cache::ResponseCache> cache;
        if (sources_.cache) cache = sources_.cache();
        config::SnapshotPtr snapshot = sources_.snapshot();
        ApiResponse api = co_await serve_cache_api(std::move(cache), std::move(snapshot), parser.get());
        answer = {api.status, api.content_type, std::move(api.body), {}, std::move(api.headers)};
      } else {
        answer = handle(parser.get().method_string(), target);
      }
    }
    const auto& request = parser.get();
    keep_alive = keep_alive && request.keep_alive();
    bhttp::response<bhttp::string_body> response(static_cast<bhttp::status>(answer.status), request.version());
    if (answer.status != 204) response.set(bhttp::field::content_type, answer.content_type);
    response.set(bhttp::field::cache_control, "no-store");
    if (!answer.allow.empty()) response.set(bhttp::field::allow, answer.allow);
    for (const auto& [name, value] : answer.headers) response.set(name, value);
    response.keep_alive(keep_alive);
    if (request.method() != bhttp::verb::head) response.body() = answer.body;
    response.prepare_payload();
    if (request.method() == bhttp::verb::head) response.content_length(answer.body.size());
    auto [write_error, written] = co_await bhttp::async_write(stream, response, kNoThrow);
    if (write_error || !keep_alive) break;
  }
  boost::system::error_code ignored;
  if (unread_body) {
    // Closing with the body unread would reset the connection, and the reset may destroy the 413 in flight.
    tcp.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    tcp.expires_after(kLingerTime);
    char sink[16 * 1024];
    for (std::size_t drained = 0; drained < kLingerBytes;) {
      auto [error, n] = co_await stream.async_read_some(asio::buffer(sink), kNoThrow);
      if (error) break;
      drained += n;
    }
  }
}

AdminServer::Response AdminServer::handle(std::string_view method, std::string_view target) const {
  const std::string_view path = target.substr(0, target.find('?'));
  const bool known = path == "/healthz" || path == "/readyz" || path == "/metrics" || path == "/config" ||
                     path == "/routes" || path == "/upstreams" || path == "/control";
  if (!known) return {404, kJson, error_body(fmt::format("no admin endpoint {}", path)), {}, {}};
  if (method != "GET" && method != "HEAD") {
    return {405, kJson, error_body(fmt::format("{} allows GET and HEAD", path)), "GET, HEAD", {}};
  }
  if (path == "/healthz") return {200, kJson, pretty(json::object{{"status", "alive"}}), {}, {}};
  const config::SnapshotPtr snapshot = sources_.snapshot();
  if (path == "/readyz") {
    const std::string_view state = sources_.state();
    json::object body{{"status", state}};
    if (snapshot) body["generation"] = snapshot->generation;
    return {state == "ready" ? 200u : 503u, kJson, pretty(body), {}, {}};
  }
  if (path == "/metrics") return {200, "text/plain; version=0.0.4; charset=utf-8", sources_.metrics(), {}, {}};
  if (path == "/control") {
    if (!sources_.control) return {200, kJson, pretty(json::object{{"enabled", false}, {"source", "yaml"}}), {}, {}};
    return {200, kJson, sources_.control(), {}, {}};
  }
  if (!snapshot) return {503, kJson, error_body("no configuration loaded yet"), {}, {}};
  if (path == "/config") return {200, kJson, config_json(*snapshot), {}, {}};
  if (path == "/routes") return {200, kJson, routes_json(*snapshot), {}, {}};
  return {200, kJson, upstreams_json(*snapshot, sources_.health), {}, {}};
}

}  // namespace apigw::admin
