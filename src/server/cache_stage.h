// The response cache's part of a request (see ClientSession::look_up_cache): what the request is in the cache
// (X-Cache), the fill it leads, and the observer that collects the upstream's response for that fill.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/fields.hpp>

#include "apigw/cache/cached_response.h"
#include "apigw/cache/response_cache.h"
#include "apigw/proxy/forwarder.h"

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

// The head of a response answered from the cache: the stored status and headers, then Date, Age,
// Content-Length, X-Request-Id, X-Cache: HIT, the debug headers when given, and Connection as `keep_alive` and
// the client's version require.
struct CachedHead {
  std::string_view request_id;
  std::string_view route;     // X-Apigw-Route when not empty
  std::string_view upstream;  // X-Apigw-Upstream when not empty
  std::chrono::seconds age{0};
  bool keep_alive = true;
  bool http10 = false;
};
std::string cached_response_head(const cache::CachedResponse& response, const CachedHead& head);

// Whether a stored 200 answers the request's conditions with 304 Not Modified (RFC 9110 §13.1): If-None-Match
// ("*" or a list, compared weakly with the stored ETag) when present, else If-Modified-Since equal to the stored
// Last-Modified (compared as text, as NGINX's default `if_modified_since exact` does).
bool not_modified(const cache::CachedResponse& response, const boost::beast::http::fields& request);

// The stored response reduced to what a 304 carries: the status and the headers a 200 would have sent that
// describe the representation's validity (Cache-Control, Content-Location, ETag, Expires, Last-Modified, Vary).
cache::CachedResponse not_modified_response(const cache::CachedResponse& response);

}  // namespace apigw::server
