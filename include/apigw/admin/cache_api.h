// The cache API on the admin listener, through which the monolith writes and invalidates cache entries instead
// of writing Memcached itself, so that every write is double-written like apigw's own. With `cache.api` set:
//   PUT    /_cache/{key}   the body is the value, stored as sent; X-Cache-TTL seconds (0 = no expiry, the
//                          default), X-Cache-Flags (32-bit, default 0)                          → 204
//   GET    /_cache/{key}   the value, with X-Cache-Flags and, when it expires, X-Cache-TTL       → 200 | 404
//   DELETE /_cache/{key}   (a missing key is not an error)                                      → 204
//   POST   /_cache/purge   {"route", "path", "query", "host", "headers", "user_id"}: deletes the entry of a
//                          route's GET (and HEAD) for that request                              → 200 {"key"}
//   POST   /_cache/invalidate  {"tags": [...], "keys": [...]}: every response filed under a tag stops being
//                          served on every instance; the keys are deleted                      → 200 {"tags"}
// Every call needs `Authorization: Bearer <cache.api.token>` (401 otherwise). {key} is percent-decoded; a key
// Memcached cannot hold (empty, over 250 bytes, spaces or control characters) is 400; a value over
// max_item_bytes is 413; the primary pool failing is 503. Writes and deletes reach the secondary pool too.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "apigw/cache/response_cache.h"
#include "apigw/config/snapshot.h"

namespace apigw::admin {

inline constexpr std::string_view kCacheApiPrefix = "/_cache";

struct ApiResponse {
  unsigned status = 200;
  std::string_view content_type = "application/json";  // a literal
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Whether `path` (without the query) is the cache API's.
bool is_cache_api_path(std::string_view path);

// Answers one cache API request. `cache` is the admin loop's client of the running config's pools (null when the
// config has no cache section); `snapshot` the running config.
boost::asio::awaitable<ApiResponse> serve_cache_api(
    std::shared_ptr<cache::ResponseCache> cache, config::SnapshotPtr snapshot,
    const boost::beast::http::request<boost::beast::http::string_body>& request);

}  // namespace apigw::admin
