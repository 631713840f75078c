// The response cache's pools, double-write queue and fills (see response_cache.h).
#include "apigw/cache/response_cache.h"

#include <charconv>
#include <random>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "apigw/cache/cache_tags.h"

namespace apigw::cache {
namespace asio = boost::asio;
using boost::system::error_code;

namespace {
// Secondary writes sent at once; each is pipelined on the pool's connections.
constexpr unsigned kSecondaryWriters = 16;
// Entries whose header tags a worker remembers; the map starts over when it is full.
constexpr std::size_t kMaxHeaderTagHints = 10'000;
using Clock = std::chrono::steady_clock;

// A version as stored: 16 lower-case hex digits.
std::string version_text(std::uint64_t version) { return fmt::format("{:016x}", version); }

std::optional<std::uint64_t> parse_version(std::string_view text) {
  std::uint64_t version = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), version, 16);
  if (text.size() != 16 || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return version;
}

std::uint64_t random_version() {
  thread_local std::mt19937_64 generator{std::random_device{}()};
  return generator();
}
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
      invalidations_ok(registry.counter("apigw_cache_invalidations_total",
                                        "Resources invalidated in the primary Memcached (after a write, or by the "
                                        "purge API), by result",
                                        {{"result", "ok"}})),
      invalidations_failed(registry.counter("apigw_cache_invalidations_total", "", {{"result", "failed"}})),
      tag_invalidations_ok(registry.counter("apigw_cache_tag_invalidations_total",
                                            "Tags given a new version in the primary Memcached, by result",
                                            {{"result", "ok"}})),
      tag_invalidations_failed(registry.counter("apigw_cache_tag_invalidations_total", "", {{"result", "failed"}})),
      stale(registry.counter("apigw_cache_stale_total",
                             "Requests answered with a stale entry (while it was refreshed, or as the upstream "
                             "failed)")),
      refreshes_ok(registry.counter("apigw_cache_refreshes_total",
                                    "Background refreshes of stale entries, by result", {{"result", "ok"}})),
      refreshes_failed(registry.counter("apigw_cache_refreshes_total", "", {{"result", "failed"}})),
      fleet_waits(registry.counter("apigw_cache_fill_waits_total",
                                   "Requests that waited for the fill another instance or worker leads")),
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
  if (secondary_) queue_secondary({Write::Kind::kSet, key, value, flags, ttl, {}});
  const auto start = Clock::now();
  const error_code error = co_await primary_.set(std::move(key), std::move(value), flags, ttl);
  stats_.primary_duration.observe(Clock::now() - start);
  co_return error;
}

asio::awaitable<ResponseCache::Lookup> ResponseCache::look_up(std::string entry, std::string resource,
                                                             std::vector<std::string> tag_keys,
                                                             memcache::GetOptions entry_options) {
  const auto start = Clock::now();
  std::string placement = resource;
  std::vector<std::string> keys;
  keys.reserve(2 + tag_keys.size());
  keys.push_back(std::move(entry));
  keys.push_back(std::move(resource));
  for (std::string& tag : tag_keys) keys.push_back(std::move(tag));
  std::vector<memcache::GetResult> got =
      co_await primary_.get_many(std::move(keys), std::move(placement), entry_options);
  stats_.primary_duration.observe(Clock::now() - start);
  Lookup lookup;
  for (const memcache::GetResult& result : got) {
    if (result.error) {
      lookup.error = result.error;
      co_return lookup;
    }
  }
  lookup.entry = std::move(got[0].item);
  if (got[1].item) lookup.version = parse_version(got[1].item->value);
  lookup.tag_versions.reserve(got.size() - 2);
  for (std::size_t i = 2; i < got.size(); ++i) {
    lookup.tag_versions.push_back(got[i].item ? parse_version(got[i].item->value) : std::nullopt);
  }
  co_return lookup;
}

asio::awaitable<std::vector<std::optional<std::uint64_t>>> ResponseCache::tag_versions(
    std::vector<std::string> tag_keys, std::string placement) {
  std::vector<std::optional<std::uint64_t>> versions(tag_keys.size());
  if (tag_keys.empty()) co_return versions;
  const auto start = Clock::now();
  std::vector<memcache::GetResult> got = co_await primary_.get_many(std::move(tag_keys), std::move(placement));
  stats_.primary_duration.observe(Clock::now() - start);
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (got[i].item) versions[i] = parse_version(got[i].item->value);
  }
  co_return versions;
}

asio::awaitable<std::optional<std::uint64_t>> ResponseCache::create_version(std::string resource) {
  // Every operation on a resource's keys goes on the connection its name picks, so that on one worker they reach
  // the primary in the order they were made: a lookup made after an invalidation sees it.
  std::string placement = resource;
  co_return co_await create_version_at(std::move(resource), std::move(placement));
}

asio::awaitable<std::optional<std::uint64_t>> ResponseCache::create_version_at(std::string key,
                                                                                std::string placement) {
  const auto start = Clock::now();
  std::uint64_t version = random_version();
  // No expiry: a version lives as long as Memcached keeps it, and an evicted one only costs a miss.
  error_code error = co_await primary_.add(key, version_text(version), 0, std::chrono::seconds(0), placement);
  if (error == std::errc::file_exists) {
    // Another fill (of another variant, worker or instance) created it first: its version is the one to use.
    const memcache::GetResult got = co_await primary_.get(key, placement);
    if (got.error) error = got.error;
    const std::optional<std::uint64_t> existing = got.item ? parse_version(got.item->value) : std::nullopt;
    if (existing) {
      stats_.primary_duration.observe(Clock::now() - start);
      co_return existing;
    }
    // Gone again (invalidated since), or a value that is no version (another program's): replaced by a new one,
    // so that the URL does not stay uncacheable.
    if (!got.error) error = co_await primary_.set(key, version_text(version), 0, std::chrono::seconds(0),
                                                  placement);
  }
  stats_.primary_duration.observe(Clock::now() - start);
  if (error) co_return std::nullopt;
  if (secondary_) queue_secondary({Write::Kind::kSet, key, version_text(version), 0, {}, placement});
  co_return version;
}

asio::awaitable<error_code> ResponseCache::invalidate_tags(std::vector<std::string> tags) {
  error_code failure;
  for (std::string& tag : tags) {
    const std::string key = tag_key(config_.key_prefix, tag);
    const std::string version = version_text(random_version());
    bool failed = false;
    for (std::size_t server = 0; server < primary_.server_count(); ++server) {
      const auto start = Clock::now();
      const error_code error = co_await primary_.set_on(server, key, version, std::chrono::seconds(0));
      stats_.primary_duration.observe(Clock::now() - start);
      if (error) {
        failed = true;
        failure = error;
        spdlog::warn("cache: invalidating tag '{}' on primary server {} failed: {}", tag, server, error.message());
      }
    }
    (failed ? stats_.tag_invalidations_failed : stats_.tag_invalidations_ok).add();
    if (!secondary_) continue;
    for (std::size_t server = 0; server < secondary_->server_count(); ++server) {
      Write write{Write::Kind::kSetOnServer, key, version, 0, {}, {}};
      write.server = server;
      queue_secondary(std::move(write));
    }
  }
  co_return failure;
}

asio::awaitable<error_code> ResponseCache::invalidate(Invalidation invalidation) {
  error_code failure = co_await invalidate_tags(std::move(invalidation.tags));
  for (std::string& key : invalidation.keys) {
    for (std::size_t server = 0; server < primary_.server_count(); ++server) {
      const auto start = Clock::now();
      const error_code error = co_await primary_.remove_on(server, key);
      stats_.primary_duration.observe(Clock::now() - start);
      if (error) failure = error;
    }
    if (!secondary_) continue;
    for (std::size_t server = 0; server < secondary_->server_count(); ++server) {
      Write write{Write::Kind::kDeleteOnServer, key, {}, 0, {}, {}};
      write.server = server;
      queue_secondary(std::move(write));
    }
  }
  co_return failure;
}

asio::awaitable<bool> ResponseCache::claim_stale(std::string entry, std::string placement, std::uint64_t cas,
                                                 std::chrono::seconds ttl) {
  const auto start = Clock::now();
  memcache::DeleteOptions mark;
  mark.invalidate = true;
  mark.cas = cas;
  mark.ttl = static_cast<std::uint32_t>(std::max<std::int64_t>(ttl.count(), 1));
  const error_code error = co_await primary_.remove(entry, placement, mark);
  bool won = false;
  if (!error) {
    // The mark hands the refresh to the next read of the entry: most often this one, sent right behind it.
    const memcache::GetResult got = co_await primary_.get(std::move(entry), std::move(placement));
    won = !got.error && got.item && got.item->won;
  }
  stats_.primary_duration.observe(Clock::now() - start);
  co_return won;
}

void ResponseCache::release_lease(std::string entry, std::string placement, std::uint64_t cas) {
  if (closed_) return;
  asio::co_spawn(executor_, release_primary(shared_from_this(), std::move(entry), std::move(placement), cas),
                 asio::detached);
}

asio::awaitable<void> ResponseCache::release_primary(std::shared_ptr<ResponseCache> self, std::string entry,
                                                     std::string placement, std::uint64_t cas) {
  const error_code error = co_await remove_if_unchanged(std::move(entry), std::move(placement), cas);
  if (error && error != std::errc::file_exists) {
    spdlog::debug("cache: releasing a fill lease failed: {}", error.message());
  }
}

asio::awaitable<error_code> ResponseCache::remove_if_unchanged(std::string entry, std::string placement,
                                                               std::uint64_t cas) {
  memcache::DeleteOptions unchanged;
  unchanged.cas = cas;
  const auto start = Clock::now();
  const error_code error = co_await primary_.remove(std::move(entry), std::move(placement), unchanged);
  stats_.primary_duration.observe(Clock::now() - start);
  co_return error;
}

const std::vector<std::string>& ResponseCache::header_tags_hint(const std::string& key) const {
  static const std::vector<std::string> kNone;
  const auto found = header_tags_.find(key);
  return found == header_tags_.end() ? kNone : found->second;
}

void ResponseCache::learn_header_tags(const std::string& key, std::vector<std::string> tags) {
  if (tags.empty()) {
    header_tags_.erase(key);
    return;
  }
  if (header_tags_.size() >= kMaxHeaderTagHints && !header_tags_.contains(key)) header_tags_.clear();
  header_tags_[key] = std::move(tags);
}

void ResponseCache::invalidate(std::string resource) {
  if (closed_) return;
  if (secondary_) queue_secondary({Write::Kind::kDelete, resource, {}, 0, {}, resource});
  asio::co_spawn(executor_, invalidate_primary(shared_from_this(), std::move(resource)), asio::detached);
}

asio::awaitable<void> ResponseCache::invalidate_primary(std::shared_ptr<ResponseCache> self, std::string resource) {
  const auto start = Clock::now();
  std::string placement = resource;
  const error_code error = co_await primary_.remove(std::move(resource), std::move(placement));
  stats_.primary_duration.observe(Clock::now() - start);
  if (error) {
    stats_.invalidations_failed.add();
    spdlog::warn("cache: invalidation failed: {}", error.message());
  } else {
    stats_.invalidations_ok.add();
  }
}

asio::awaitable<error_code> ResponseCache::remove(std::string key, std::string placement) {
  if (secondary_) queue_secondary({Write::Kind::kDelete, key, {}, 0, {}, placement});
  const auto start = Clock::now();
  const error_code error = co_await primary_.remove(std::move(key), std::move(placement));
  stats_.primary_duration.observe(Clock::now() - start);
  co_return error;
}

void ResponseCache::store(std::string key, std::string record, std::chrono::seconds ttl, std::string placement) {
  if (closed_) return;
  asio::co_spawn(executor_,
                 store_primary(shared_from_this(), std::move(key), std::move(record), ttl, std::move(placement)),
                 asio::detached);
}

asio::awaitable<void> ResponseCache::store_primary(std::shared_ptr<ResponseCache> self, std::string key,
                                                   std::string record, std::chrono::seconds ttl,
                                                   std::string placement) {
  if (secondary_) queue_secondary({Write::Kind::kSet, key, record, 0, ttl, placement});
  const auto start = Clock::now();
  const error_code error = co_await primary_.set(std::move(key), std::move(record), 0, ttl, std::move(placement));
  stats_.primary_duration.observe(Clock::now() - start);
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
      error = co_await secondary_->set(std::move(write.key), std::move(write.value), write.flags, write.ttl,
                                       std::move(write.placement));
    } else if (write.kind == Write::Kind::kSetOnServer) {
      error = co_await secondary_->set_on(write.server, std::move(write.key), std::move(write.value), write.ttl);
    } else if (write.kind == Write::Kind::kDeleteOnServer) {
      error = co_await secondary_->remove_on(write.server, std::move(write.key));
    } else {
      error = co_await secondary_->remove(std::move(write.key), std::move(write.placement));
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
