// The cache stage, on a route with `cache` enabled: a GET or HEAD without a body is looked up under its key
// (route, method, host, path, the query and headers the route's key names, the user when it says so) in the
// primary Memcached. A fresh record answers the request (the session sends it, 304 when the client's conditions
// match it); otherwise the request goes upstream and leads the fill of that key, which requests for the same key
// arriving meanwhile wait for (one fill per key and worker), and the way out stores what the fill collected. A
// request the cache may not answer is BYPASS; so is one whose lookup fails (Memcached down or slow), and then
// nothing is stored. A hit must carry its resource's current version (see cache/response_cache.h).
//
// On any route, while the cache is configured, a successful (2xx or 3xx) unsafe request (POST, PUT, DELETE,
// PATCH, ...) invalidates the resource of its URL, and of the URLs its response's Location and Content-Location
// name on the same host, when a cached route serves their GET (RFC 9111 §4.4): every variant, on the primary and
// the secondary.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "apigw/cache/cache_policy.h"
#include "apigw/cache/cached_response.h"
#include "apigw/cache/response_cache.h"
#include "stage.h"

namespace apigw::server {

class CacheStage final : public Stage {
 public:
  bool applies(const RequestContext& context) const override;
  boost::asio::awaitable<StageResult> on_request(RequestContext& context) override;
  void on_response(RequestContext& context, const proxy::ForwardResult& result) override;

 private:
  // After a successful unsafe request: the resources of its URL, Location and Content-Location are invalidated.
  static void invalidate_after_write(RequestContext& context, const WriteObserver& write);
  // The stored response that answers the request, or null (context.cache then says how the request goes on).
  boost::asio::awaitable<std::shared_ptr<const cache::CachedResponse>> look_up(RequestContext& context);
  // Classifies the request and builds its keys (context.cache); nullopt when it bypasses the cache.
  static std::optional<cache::RequestCacheability> prepare(RequestContext& context);
  static memcache::GetOptions lookup_options(const RequestContext& context, bool leads);
  static void lookup_failed(RequestContext& context, const std::shared_ptr<cache::Fill>& fill);
  static void take_tag_versions(CacheState& state, const cache::ResponseCache::Lookup& found);
  // The lookup found a fresh record of the current versions that needs nothing more: the hit; else null, with
  // `stored` the decoded record when there is one of the resource's current version.
  static std::shared_ptr<const cache::CachedResponse> fresh_hit(RequestContext& context,
                                                                const cache::ResponseCache::Lookup& found,
                                                                const std::shared_ptr<cache::Fill>& fill,
                                                                std::optional<cache::CachedResponse>& stored);
  // Everything after a lookup but a plain hit: the fleet's fill lease, stale records, misses and the fill.
  static boost::asio::awaitable<std::shared_ptr<const cache::CachedResponse>> after_lookup(
      RequestContext& context, cache::ResponseCache::Joined joined, cache::RequestCacheability cacheability,
      cache::ResponseCache::Lookup found, std::optional<cache::CachedResponse> stored, memcache::GetOptions options);
  // The route's tags for this request (context.cache.tags); false when one cannot be formed.
  static bool route_tags(RequestContext& context);
  // The keys of the tag versions read with the entry: the route's tags, then those the upstream gave it last.
  static std::vector<std::string> tag_keys(const RequestContext& context);
  // How long a fill lease lasts: the upstream's timeout, in whole seconds.
  static std::uint32_t lease_seconds(const RequestContext& context);
  // Whether each tag of the record still has the version the lookup read: nullopt when some were not read (their
  // keys and the versions the record expects are added to `unread` and `expected`).
  static std::optional<bool> tags_read_current(const RequestContext& context, const cache::CachedResponse& stored,
                                               const cache::ResponseCache::Lookup& found,
                                               std::vector<std::string>& unread, std::vector<std::uint64_t>& expected);
  // Whether each tag of the record still has the version it was stored with (reading those the lookup did not).
  static boost::asio::awaitable<bool> tags_current(const RequestContext& context, const cache::CachedResponse& stored,
                                                   const cache::ResponseCache::Lookup& found);
  // A record of the resource's current version: answered fresh (HIT) or stale (STALE, refreshed by the request
  // Memcached picks), or kept to answer an upstream failure (context.cache.fallback); null otherwise.
  struct Served {
    std::shared_ptr<const cache::CachedResponse> response;
  };
  static boost::asio::awaitable<Served> serve_stored(RequestContext& context,
                                                     const cache::ResponseCache::Lookup& found,
                                                     std::optional<cache::CachedResponse>& stored,
                                                     const std::shared_ptr<cache::Fill>& fill, bool head);
  // Another instance (or worker) holds the fill lease: the record it stores, read again until it appears or the
  // upstream's timeout passes; null when this request must fetch.
  static boost::asio::awaitable<std::shared_ptr<const cache::CachedResponse>> wait_for_fleet_fill(
      RequestContext& context, const std::shared_ptr<cache::Fill>& fill);
  // Another request leads the fill of this key: its outcome, unless it takes longer than the upstream's timeout.
  boost::asio::awaitable<std::shared_ptr<const cache::CachedResponse>> wait_for_fill(
      RequestContext& context, std::shared_ptr<cache::Fill> fill);
};

}  // namespace apigw::server
