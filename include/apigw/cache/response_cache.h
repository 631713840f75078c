// The response cache as one event loop (a worker's, or the admin listener's) sees it: the primary Memcached pool,
// read and written; the secondary pool, which receives a copy of every write in the background and is never read;
// and the requests in flight to fill an entry, so that concurrent misses on one key fetch it once.
//
// Resources and versions. Every entry (one variant of one URL, see cache_key.h) belongs to a resource, whose key
// holds the resource's current version, a random number. A record carries the version it was stored under and is
// served only while its resource still has that version; invalidating a resource deletes its version, so every
// variant of it stops being served at once, on every instance sharing the pool. A resource without a version (never
// stored, invalidated, or evicted) serves nothing until a fill creates a new one. Entries are placed on the server
// of their resource key, so that one pipelined round trip reads both.
//
// Tags. A tag's version lives at tag_key(prefix, tag) on every server of the pool, and a record carries the
// versions its tags had when it was stored; it is served only while each is still current on its resource's
// server, read in the same round trip as the entry. Invalidating a tag writes a new version to every server of
// both pools, so every response filed under it stops being served (or is answered stale) on every instance.
//
// One fill per key for the fleet. A lookup that leads may ask Memcached to vivify the missing entry: the first
// request (of any worker of any instance) is told it won and fills the key; the others see the empty placeholder
// and wait for the record to appear, as long as the winner's lease (the placeholder's life). A stale record is
// refreshed by the one request Memcached's recache flag picks.
//
// Loop thread only. Nothing here blocks the loop: every Memcached round trip is bounded by its pool's timeout,
// and a pool that is down fails commands at once while it backs off (see memcache/connection.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include "apigw/cache/cache_tags.h"
#include "apigw/cache/cached_response.h"
#include "apigw/config/snapshot.h"
#include "apigw/core/metrics.h"
#include "apigw/memcache/client.h"

namespace apigw::cache {

// The cache's series in one registry (shard). Created once per registry; they outlive reloads.
struct CacheStats {
  explicit CacheStats(core::MetricsRegistry& registry);
  CacheStats(const CacheStats&) = delete;
  CacheStats& operator=(const CacheStats&) = delete;

  core::Counter& hits;
  core::Counter& misses;
  core::Counter& bypasses;
  core::Counter& coalesced;  // requests answered by another request's fill
  core::Counter& stores_ok;
  core::Counter& stores_failed;
  core::Counter& secondary_ok;
  core::Counter& secondary_failed;
  core::Counter& secondary_dropped;
  core::Gauge& secondary_queue;
  core::Counter& invalidations_ok;
  core::Counter& invalidations_failed;
  core::Counter& tag_invalidations_ok;
  core::Counter& tag_invalidations_failed;
  core::Counter& stale;         // requests answered with a stale record
  core::Counter& refreshes_ok;  // background refreshes that stored a response
  core::Counter& refreshes_failed;
  core::Counter& fleet_waits;   // requests that waited for another instance's (or worker's) fill
  core::Histogram& primary_duration;
  core::Histogram& secondary_duration;
};

// One request filling an entry, which later requests for the same key wait on (see ResponseCache::join).
struct Fill {
  explicit Fill(const boost::asio::any_io_executor& executor) : done_signal(executor) {}
  boost::asio::steady_timer done_signal;          // cancelled when the fill ends
  std::shared_ptr<const CachedResponse> response;  // what was stored; null when the response was not storable
  bool done = false;
  bool stale = false;        // `response` is a stale record (the leader answered it stale)
  bool unavailable = false;  // the primary pool failed the lookup: the waiting requests bypass the cache too
};

class ResponseCache : public std::enable_shared_from_this<ResponseCache> {
 public:
  // `primary` must not be empty; `secondary` may be (no double-write). Throws std::invalid_argument on a server
  // address that is not numeric.
  ResponseCache(boost::asio::any_io_executor executor, const config::CacheConfig& config,
                std::vector<memcache::Server> primary, std::vector<memcache::Server> secondary, CacheStats& stats);
  ~ResponseCache();
  ResponseCache(const ResponseCache&) = delete;
  ResponseCache& operator=(const ResponseCache&) = delete;

  const config::CacheConfig& config() const { return config_; }
  const boost::asio::any_io_executor& executor() const { return executor_; }
  CacheStats& stats() { return stats_; }

  // A read of the primary pool (errors as memcache::Connection's).
  boost::asio::awaitable<memcache::GetResult> get(std::string key);

  // An entry, its resource's version and the versions of tags, in one round trip to the server the resource key
  // places them on. `entry_options` asks for the entry's fill lease or refresh (see above).
  struct Lookup {
    boost::system::error_code error;     // a read failed: nothing else is set
    std::optional<memcache::Item> entry;
    std::optional<std::uint64_t> version;  // nullopt: the resource has none
    std::vector<std::optional<std::uint64_t>> tag_versions;  // as `tag_keys`; nullopt: the tag has none
  };
  boost::asio::awaitable<Lookup> look_up(std::string entry, std::string resource, std::vector<std::string> tag_keys,
                                         memcache::GetOptions entry_options);
  // The versions of tags on the server `placement` selects; nullopt for a tag that has none, or for every one
  // when the read fails.
  boost::asio::awaitable<std::vector<std::optional<std::uint64_t>>> tag_versions(std::vector<std::string> tag_keys,
                                                                                 std::string placement);
  // Gives a resource without a version a new one (an add on the primary, copied to the secondary): the version to
  // store under, the one another fill created meanwhile, or nullopt when the primary failed. A value at the
  // resource key that is no version is replaced.
  boost::asio::awaitable<std::optional<std::uint64_t>> create_version(std::string resource);
  // The same for any version key (a tag's), on the server `placement` (its resource key) selects.
  boost::asio::awaitable<std::optional<std::uint64_t>> create_version_at(std::string key, std::string placement);
  // Gives each tag a new version on every server of the primary (waited for) and of the secondary (queued). An
  // error when a primary server failed: the tags that reached it still count as invalidated there.
  boost::asio::awaitable<boost::system::error_code> invalidate_tags(std::vector<std::string> tags);
  // Invalidates the tags (invalidate_tags) and deletes the keys on every server of the primary (waited for) and
  // of the secondary (queued), since an entry key is placed by its resource's key, which it does not tell: an
  // error when the primary failed any of it. Doing it twice does no more harm than once.
  boost::asio::awaitable<boost::system::error_code> invalidate(Invalidation invalidation);
  // Marks a record stale that an invalidated tag made so, when it is still the one read (`cas`), for `ttl`
  // more seconds, and asks for the refresh: true when this request is to refresh it.
  boost::asio::awaitable<bool> claim_stale(std::string entry, std::string placement, std::uint64_t cas,
                                           std::chrono::seconds ttl);
  // Removes a fill lease this request won (the placeholder `cas`) without a record: waiting requests go on.
  void release_lease(std::string entry, std::string placement, std::uint64_t cas);
  // Deletes the entry from the primary only while its CAS is still `cas` (an unusable record, so that the next
  // lookup can take the fill lease).
  boost::asio::awaitable<boost::system::error_code> remove_if_unchanged(std::string entry, std::string placement,
                                                                        std::uint64_t cas);
  // The tags the upstream last gave the entry `key` (learnt from records, bounded), to read their versions with
  // the entry; empty when unknown.
  const std::vector<std::string>& header_tags_hint(const std::string& key) const;
  bool knows_header_tags() const { return !header_tags_.empty(); }
  void learn_header_tags(const std::string& key, std::vector<std::string> tags);
  // Stops every entry of the resource from being served: its version is deleted on the primary (in the
  // background, counted) and on the secondary (queued).
  void invalidate(std::string resource);
  // A write to the primary pool, waited for; queued to the secondary pool whatever its outcome (a write the
  // primary refused may still be wanted on the other side, and the secondary never answers reads).
  boost::asio::awaitable<boost::system::error_code> set(std::string key, std::string value, std::uint32_t flags,
                                                        std::chrono::seconds ttl);
  boost::asio::awaitable<boost::system::error_code> remove(std::string key, std::string placement = {});
  // A fill's write, placed by `placement` (its resource key): sent to the primary in the background (counted as
  // a store) and queued to the secondary. The caller does not wait for it.
  void store(std::string key, std::string record, std::chrono::seconds ttl, std::string placement);

  // Request coalescing. The first request for `key` that asks to `lead` leads (is_leader) and must call finish()
  // whatever happens; later ones wait on the returned fill until it is done (or for as long as they choose, then
  // fetch for themselves). Without a fill in flight and without `lead`, `fill` is null.
  struct Joined {
    std::shared_ptr<Fill> fill;
    bool is_leader = false;
  };
  Joined join(const std::string& key, bool lead = true);
  void finish(const std::string& key, const std::shared_ptr<Fill>& fill,
              std::shared_ptr<const CachedResponse> response);

  // Writes waiting for the secondary pool.
  std::size_t queued() const { return queue_.size(); }
  // Fails every Memcached command in flight, drops the secondary queue and closes every connection (a drained
  // worker's loop must run out of work).
  void close();

 private:
  struct Write {
    enum class Kind { kSet, kDelete, kSetOnServer, kDeleteOnServer };
    Kind kind = Kind::kSet;
    std::string key;
    std::string value;
    std::uint32_t flags = 0;
    std::chrono::seconds ttl{0};
    std::string placement;  // empty: the key's own
    std::size_t server = 0;  // kSetOnServer, kDeleteOnServer: the index of the server written
  };

  void queue_secondary(Write write);
  boost::asio::awaitable<void> write_secondary(std::shared_ptr<ResponseCache> self);
  boost::asio::awaitable<void> store_primary(std::shared_ptr<ResponseCache> self, std::string key,
                                             std::string record, std::chrono::seconds ttl, std::string placement);
  boost::asio::awaitable<void> invalidate_primary(std::shared_ptr<ResponseCache> self, std::string resource);
  boost::asio::awaitable<void> release_primary(std::shared_ptr<ResponseCache> self, std::string entry,
                                               std::string placement, std::uint64_t cas);

  boost::asio::any_io_executor executor_;
  config::CacheConfig config_;
  CacheStats& stats_;
  memcache::Client primary_;
  std::unique_ptr<memcache::Client> secondary_;  // null without a secondary pool
  std::deque<Write> queue_;
  unsigned secondary_writers_ = 0;  // coroutines sending queue_
  bool closed_ = false;
  std::unordered_map<std::string, std::shared_ptr<Fill>> fills_;
  std::unordered_map<std::string, std::vector<std::string>> header_tags_;  // see header_tags_hint
};

// The servers of a pool, as the snapshot resolved them.
std::vector<memcache::Server> memcache_servers(const std::vector<config::ResolvedEndpoint>& endpoints);

}  // namespace apigw::cache
