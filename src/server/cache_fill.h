// The cache stage's state for one request (see cache_stage.h): what the request is in the cache
// (X-Cache), the fill it leads, and the observer that collects the upstream's response for that fill.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "apigw/cache/cached_response.h"
#include "apigw/cache/response_cache.h"
#include "apigw/proxy/forward_request.h"

namespace apigw::server {

// Collects a forwarded response for the cache, as it is relayed: nothing is kept once the response is known not
// to be storable (by the route's rules and Cache-Control) or grows past max_item_bytes.
class CacheFill final : public proxy::ResponseObserver {
 public:
  CacheFill(const config::RouteCacheConfig& rule, std::size_t max_bytes) : rule_(rule), max_bytes_(max_bytes) {}

  void on_head(unsigned status, std::span<const http::ResponseParser::Field> fields) override;
  void on_body(std::string_view bytes) override;
  void on_complete() override { complete_ = collecting_; }

  // The record to store, once the whole response went through and may be stored; nullopt otherwise.
  std::optional<std::string> record(std::int64_t now) const;
  std::chrono::seconds ttl() const { return ttl_; }

 private:
  const config::RouteCacheConfig& rule_;
  std::size_t max_bytes_;
  bool collecting_ = false;
  bool complete_ = false;
  unsigned status_ = 0;
  std::chrono::seconds ttl_{0};
  std::vector<cache::StoredHeader> headers_;
  std::string body_;
};

// One request's cache state. A fill this request leads is finished (as not stored) when the state goes away
// without finishing it, so that no waiting request waits longer than it must.
struct CacheState {
  CacheState() = default;
  CacheState(const CacheState&) = delete;
  CacheState& operator=(const CacheState&) = delete;
  ~CacheState() {
    if (fill) cache->finish(key, fill, nullptr);
  }

  std::string_view status;  // the X-Cache value: "HIT", "MISS" or "BYPASS"; empty on a route without cache
  std::shared_ptr<cache::ResponseCache> cache;
  std::string key;
  std::shared_ptr<cache::Fill> fill;  // set while this request leads the fill of `key`
  std::optional<CacheFill> observer;  // with `fill`, or on a revalidation
};

}  // namespace apigw::server
