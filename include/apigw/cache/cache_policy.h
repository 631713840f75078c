// Which requests may be answered from the response cache and which responses may be stored, and for how long
// (RFC 9111, as a shared cache). Pure. The route's `cache` config decides what is cacheable at all; the
// request's and the response's Cache-Control can only narrow it.
#pragma once

#include <chrono>
#include <optional>
#include <span>
#include <string_view>

#include <boost/beast/http/fields.hpp>

#include "apigw/cache/cached_response.h"
#include "apigw/config/config.h"

namespace apigw::cache {

enum class RequestCacheability {
  kLookup,      // answer from the cache when an entry is there; store the response on a miss
  kRevalidate,  // skip the lookup, fetch from upstream and store the fresh response
  kBypass,      // neither look up nor store
};

// - Methods other than GET and HEAD (case-sensitive): kBypass.
// - Cache-Control: no-store: kBypass. RFC 9111 would allow answering from a stored entry; a client asking that
//   nothing of this exchange be stored gets it from upstream.
// - Cache-Control: no-cache or max-age=0, or Pragma: no-cache: kRevalidate.
// - Otherwise kLookup; other request directives (max-stale, min-fresh, only-if-cached, ...) are not honoured.
// Whether the route caches at all, and an Authorization header, are not looked at: the route's config decides.
RequestCacheability classify_request(std::string_view method, const boost::beast::http::fields& headers);

// The Cache-Control directives the policy reads, from every Cache-Control line of a message.
struct CacheControl {
  bool no_store = false;
  bool no_cache = false;  // with or without a field list
  bool is_private = false;  // with or without a field list
  std::optional<std::chrono::seconds> max_age;
  std::optional<std::chrono::seconds> s_maxage;
  bool bad_age = false;  // a max-age or s-maxage whose value is not a number

  // Adds one header value: comma-separated directives, names case-insensitive, values as tokens or quoted
  // strings (commas inside quotes do not split). A repeated max-age or s-maxage keeps the smallest value; a
  // value beyond 2^31 seconds counts as 2^31 (RFC 9111 §1.2.2).
  void add(std::string_view value);
};

// How long a response may be stored, or nullopt when it may not:
// - the route does not cache, or its status is not in the route's `statuses` (206, 304, 401 and 407 never are);
// - Set-Cookie (or Set-Cookie2) is present;
// - Cache-Control has no-store or no-cache, or private on a route whose scope is not user, or a malformed
//   max-age or s-maxage (RFC 9111 §4.2.1: such a response is stale);
// - Vary is "*", or names a header that is not in the route's `vary` (the key would not tell its variants apart);
// - the result is zero: the ttl is the route's ttl, or s-maxage if present (else max-age) when that is shorter.
// Expires is not read. A body larger than max_item_bytes is the caller's business (encode_record's max_bytes).
std::optional<std::chrono::seconds> storable_for(unsigned status, std::span<const HeaderView> headers,
                                                 const config::RouteCacheConfig& route);

}  // namespace apigw::cache
