// The response cache's pools, double-write queue and fills (see response_cache.h).
#include "apigw/cache/response_cache.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <spdlog/spdlog.h>

namespace apigw::cache {
namespace asio = boost::asio;
using boost::system::error_code;

namespace {
// Secondary writes sent at once; each is pipelined on the pool's connections.
constexpr unsigned kSecondaryWriters = 16;
using Clock = std::chrono::steady_clock;
}  // namespace

CacheStats::CacheStats(core::MetricsRegistry& registry)
    : hits(registry.counter("apigw_cache_requests_total", "Requests on routes with a cache, by cache result",
                            {{"result", "hit"}})),
      misses(registry.counter("apigw_cache_requests_total", "", {{"result", "miss"}})),
      bypasses(registry.counter("apigw_cache_requests_total", "", {{"result", "bypass"}})),
      coalesced(registry.counter("apigw_cache_coalesced_total",
                                 "Requests answered by another request's fill of the same entry")),
      stores_ok(registry.counter("apigw_cache_stores_total", "Responses written to the primary Memcached, by result",
                                 {{"result", "ok"}})),
      stores_failed(registry.counter("apigw_cache_stores_total", "", {{"result", "failed"}})),
      secondary_ok(registry.counter("apigw_cache_secondary_writes_total",
                                    "Writes and deletes copied to the secondary Memcached, by result",
                                    {{"result", "ok"}})),
      secondary_failed(registry.counter("apigw_cache_secondary_writes_total", "", {{"result", "failed"}})),
      secondary_dropped(registry.counter("apigw_cache_secondary_writes_total", "", {{"result", "dropped"}})),
      secondary_queue(registry.gauge("apigw_cache_secondary_queue_depth",
                                     "Writes waiting to be copied to the secondary Memcached")),
      primary_duration(registry.histogram("apigw_memcached_duration_seconds",
                                          "Memcached round trips, by pool", {{"pool", "primary"}})),
      secondary_duration(registry.histogram("apigw_memcached_duration_seconds", "", {{"pool", "secondary"}})) {}

std::vector<memcache::Server> memcache_servers(const std::vector<config::ResolvedEndpoint>& endpoints) {
  std::vector<memcache::Server> servers;
  for (const config::ResolvedEndpoint& endpoint : endpoints) {
    servers.push_back({endpoint.address, endpoint.port, endpoint.host});
  }
  return servers;
}

namespace {
memcache::ClientOptions client_options(std::vector<memcache::Server> servers, core::Duration timeout,
                                       unsigned connections, const std::optional<config::TlsClientConfig>& tls) {
  memcache::ClientOptions options;
  options.servers = std::move(servers);
  options.timeout = timeout;
  options.connections = connections;
  if (tls) {
    options.tls = net::TlsClientContext::require(*tls);
    options.sni = tls->sni;
  }
  return options;
}
}  // namespace

ResponseCache::ResponseCache(asio::any_io_executor executor, const config::CacheConfig& config,
                             std::vector<memcache::Server> primary, std::vector<memcache::Server> secondary,
                             CacheStats& stats)
    : executor_(executor),
      config_(config),
      stats_(stats),
      primary_(executor, client_options(std::move(primary), config.primary.timeout, config.primary.connections,
                                        config.primary.tls)) {
  if (config.secondary && !secondary.empty()) {
    secondary_ = std::make_unique<memcache::Client>(
        executor, client_options(std::move(secondary), config.secondary->timeout, config.primary.connections,
                                 config.secondary->tls));
  }
}

ResponseCache::~ResponseCache() { close(); }

asio::awaitable<memcache::GetResult> ResponseCache::get(std::string key) {
  const auto start = Clock::now();
  memcache::GetResult result = co_await primary_.get(std::move(key));
  stats_.primary_duration.observe(Clock::now() - start);
  co_return result;
}

asio::awaitable<error_code> ResponseCache::set(std::string key, std::string value, std::uint32_t flags,
                                               std::chrono::seconds ttl) {
  if (secondary_) queue_secondary({Write::Kind::kSet, key, value, flags, ttl});
  const auto start = Clock::now();
  const error_code error = co_await primary_.set(std::move(key), std::move(value), flags, ttl);
  stats_.primary_duration.observe(Clock::now() - start);
  co_return error;
}

asio::awaitable<error_code> ResponseCache::remove(std::string key) {
  if (secondary_) queue_secondary({Write::Kind::kDelete, key, {}, 0, {}});
  const auto start = Clock::now();
  const error_code error = co_await primary_.remove(std::move(key));
  stats_.primary_duration.observe(Clock::now() - start);
  co_return error;
}

void ResponseCache::store(std::string key, std::string record, std::chrono::seconds ttl) {
  if (closed_) return;
  asio::co_spawn(executor_, store_primary(shared_from_this(), std::move(key), std::move(record), ttl),
                 asio::detached);
}

asio::awaitable<void> ResponseCache::store_primary(std::shared_ptr<ResponseCache> self, std::string key,
                                                   std::string record, std::chrono::seconds ttl) {
  const error_code error = co_await set(std::move(key), std::move(record), 0, ttl);
  if (error) {
    stats_.stores_failed.add();
    spdlog::debug("cache: store failed: {}", error.message());
  } else {
    stats_.stores_ok.add();
  }
}

void ResponseCache::queue_secondary(Write write) {
  if (closed_) return;
  const std::size_t limit = config_.secondary ? config_.secondary->queue : 0;
  if (queue_.size() >= limit) {
    stats_.secondary_dropped.add();
    return;
  }
  queue_.push_back(std::move(write));
  stats_.secondary_queue.add(1);
  if (secondary_writers_ < kSecondaryWriters) {
    ++secondary_writers_;
    asio::co_spawn(executor_, write_secondary(shared_from_this()), asio::detached);
  }
}

asio::awaitable<void> ResponseCache::write_secondary(std::shared_ptr<ResponseCache> self) {
  while (!queue_.empty() && !closed_) {
    Write write = std::move(queue_.front());
    queue_.pop_front();
    stats_.secondary_queue.sub(1);
    const auto start = Clock::now();
    error_code error;
    if (write.kind == Write::Kind::kSet) {
      error = co_await secondary_->set(std::move(write.key), std::move(write.value), write.flags, write.ttl);
    } else {
      error = co_await secondary_->remove(std::move(write.key));
    }
    stats_.secondary_duration.observe(Clock::now() - start);
    (error ? stats_.secondary_failed : stats_.secondary_ok).add();
  }
  --secondary_writers_;
}

ResponseCache::Joined ResponseCache::join(const std::string& key, bool lead) {
  if (!lead) {
    const auto found = fills_.find(key);
    return {found == fills_.end() ? nullptr : found->second, false};
  }
  auto [found, inserted] = fills_.try_emplace(key);
  if (inserted) {
    found->second = std::make_shared<Fill>(executor_);
    found->second->done_signal.expires_at(asio::steady_timer::time_point::max());
  }
  return {found->second, inserted};
}

void ResponseCache::finish(const std::string& key, const std::shared_ptr<Fill>& fill,
                           std::shared_ptr<const CachedResponse> response) {
  fill->response = std::move(response);
  fill->done = true;
  fill->done_signal.cancel();
  const auto found = fills_.find(key);
  if (found != fills_.end() && found->second == fill) fills_.erase(found);
}

void ResponseCache::close() {
  closed_ = true;
  stats_.secondary_queue.sub(static_cast<std::int64_t>(queue_.size()));
  queue_.clear();
  primary_.close();
  if (secondary_) secondary_->close();
}

}  // namespace apigw::cache
