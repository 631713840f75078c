// The cache stage's state for one request (see cache_stage.h): what the request is in the cache
// (X-Cache), the fill it leads, and the observer that collects the upstream's response for that fill.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "apigw/cache/cache_policy.h"
#include "apigw/cache/cached_response.h"
#include "apigw/cache/response_cache.h"
#include "apigw/proxy/forward_request.h"

namespace apigw::server {

// Collects a forwarded response for the cache, as it is relayed: nothing is kept once the response is known not
// to be storable (by the route's rules, Cache-Control, Expires and Age, or a tag header it cannot file) or grows
// past max_item_bytes. The route's tag header is read for tags, and not stored.
class CacheFill final : public proxy::ResponseObserver {
 public:
  struct Options {
    std::uint64_t version = 0;          // the resource version the record is stored under
    bool shared_authorization = false;  // the request carried Authorization and the entry is shared
    std::int64_t request_time = 0;      // when the request went upstream, Unix seconds
  };
  CacheFill(const config::RouteCacheConfig& rule, std::size_t max_bytes, Options options)
      : rule_(rule), max_bytes_(max_bytes), options_(options) {}

  // Reads the clock: the response's arrival is when its head is seen.
  void on_head(unsigned status, std::span<const http::ResponseParser::Field> fields) override;
  void on_body(std::string_view bytes) override;
  void on_complete() override { complete_ = collecting_; }

  // The record to store with its tags' versions, once the whole response went through and may be stored;
  // nullopt otherwise.
  std::optional<std::string> record(std::span<const cache::TagVersion> tags) const;
  // How long Memcached keeps it: what is left of its freshness lifetime when it arrived, and the route's longest
  // stale window after that (see stale_extra).
  std::chrono::seconds ttl() const { return storable_.remaining() + stale_extra(rule_); }
  // The tags the upstream's tag header gave, each once.
  const std::vector<std::string>& header_tags() const { return header_tags_; }

  // How long past its freshness a record of the route stays in Memcached: its longest stale window. A lookup
  // asks for the refresh once fewer seconds than this are left (memcache::GetOptions::recache).
  static std::chrono::seconds stale_extra(const config::RouteCacheConfig& rule) {
    return std::max(rule.stale_while_revalidate, rule.stale_if_error);
  }

 private:
  const config::RouteCacheConfig& rule_;
  std::size_t max_bytes_;
  Options options_;
  bool collecting_ = false;
  bool complete_ = false;
  unsigned status_ = 0;
  std::int64_t response_time_ = 0;
  cache::Storable storable_;
  std::vector<cache::StoredHeader> headers_;
  std::vector<std::string> header_tags_;
  std::string body_;
};

// Stores what `fill` collected under `key` (placed by `resource`), when it may be stored: the record carries
// `tags` (the route's, with their versions) and the upstream's header tags, whose versions are read (or created)
// on the resource's server first, in the background. Returns the response for the requests waiting on this fill;
// null when nothing is stored.
std::shared_ptr<const cache::CachedResponse> store_fill(cache::ResponseCache& cache, const std::string& key,
                                                        const std::string& resource, const CacheFill& fill,
                                                        std::vector<cache::TagVersion> tags);

// Watches the response to an unsafe request (POST, PUT, ...) for what it invalidates: its status, and the
// Location and Content-Location it names. `decided` runs once these are known, before the head is relayed, so
// that the invalidation is on its way before the client can send its next request.
class WriteObserver final : public proxy::ResponseObserver {
 public:
  explicit WriteObserver(std::function<void(const WriteObserver&)> decided) : decided_(std::move(decided)) {}
  void on_head(unsigned status, std::span<const http::ResponseParser::Field> fields) override;
  void on_body(std::string_view) override {}
  void on_complete() override {}

  unsigned status = 0;
  std::optional<std::string> location;
  std::optional<std::string> content_location;

 private:
  std::function<void(const WriteObserver&)> decided_;
};

// One request's cache state. A fill this request leads is finished (as not stored) when the state goes away
// without finishing it, so that no waiting request waits longer than it must.
struct CacheState {
  CacheState() = default;
  CacheState(const CacheState&) = delete;
  CacheState& operator=(const CacheState&) = delete;
  ~CacheState() {
    if (fill) cache->finish(key, fill, nullptr);
    if (lease != 0) cache->release_lease(key, resource, lease);
  }

  // The X-Cache value: "HIT", "MISS", "STALE" or "BYPASS"; empty on a route without cache.
  std::string_view status;
  std::shared_ptr<cache::ResponseCache> cache;
  std::string key;
  std::string resource;  // the key of the resource `key` belongs to
  std::vector<cache::TagVersion> tags;  // the route's tags for this request, with their current versions
  std::uint64_t version = 0;  // the resource version a fill stores under
  std::uint64_t lease = 0;  // the CAS of the fill lease (placeholder) this request won; 0: none
  // A stale record that answers if the upstream fails (stale-if-error).
  std::shared_ptr<const cache::CachedResponse> fallback;
  std::shared_ptr<cache::Fill> fill;  // set while this request leads the fill of `key`
  std::optional<CacheFill> observer;  // with `fill`, or on a revalidation
  std::optional<WriteObserver> write;  // on an unsafe request
};

}  // namespace apigw::server
