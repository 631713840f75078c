// Response-cache keys: what identifies a stored response, and the Memcached key it is stored under. Pure.
// Keys are of fixed shape and never carry request bytes verbatim, so no client can choose or overlong a key.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/http/fields.hpp>

#include "apigw/config/config.h"

namespace apigw::cache {

// Memcached's limit on a key.
inline constexpr std::size_t kMaxKeyBytes = 250;
// The layout version in every key; a new layout gets a new version, so old entries are simply never read.
inline constexpr std::string_view kKeyVersion = "v2";
// The same place in a resource key (see build_resource_key).
inline constexpr std::string_view kResourceKeyVersion = "r2";
static_assert(kResourceKeyVersion.size() == kKeyVersion.size());
inline constexpr std::size_t kKeyDigestChars = 64;  // SHA-256, lower-case hex

static_assert(config::kMaxCacheKeyPrefixBytes + kKeyVersion.size() + 1 + config::kMaxCachedRouteNameBytes + 1 +
                  kKeyDigestChars <=
              kMaxKeyBytes);

// The parts of a request that select its cached response. Views; they must outlive the call.
struct KeyRequest {
  std::string_view method;  // as sent: "GET" and "HEAD" have separate entries
  std::string_view host;    // the Host header (or the authority of an absolute-form target)
  std::string_view path;    // as received, still percent-encoded, before any rewrite
  std::string_view query;   // after '?', without it; empty when there is none
  const boost::beast::http::fields* headers = nullptr;  // for the route's `vary`; none means all absent
  std::optional<std::string_view> user_id;  // the authenticated user; read only for `scope: user`
};

// `<prefix>v2:<route>:<sha256 hex>`, e.g. "apigw:v2:users:3f79…e1": the key of one entry. The digest covers the route name, the method,
// cache_key_host(host), the path, canonical_query(query), each `vary` header of the route (in configured order;
// an absent header differs from an empty one; several lines are joined with ", "), and for `scope: user` the
// user id (an anonymous request gets an entry of its own that no user shares).
// nullopt when prefix and route cannot form a valid key (a validated config never gives such).
std::optional<std::string> build_cache_key(std::string_view prefix, std::string_view route,
                                           const config::RouteCacheConfig& rule, const KeyRequest& request);

// `<prefix>r2:<route>:<sha256 hex>`: the key of the resource the request's entries belong to, whatever their
// variant (see response_cache.h): the digest covers the route name, cache_key_host(host), the path,
// canonical_query(query) and, for `scope: user`, the user id; not the method and not the `vary` headers.
// nullopt as build_cache_key.
std::optional<std::string> build_resource_key(std::string_view prefix, std::string_view route,
                                              const config::RouteCacheConfig& rule, const KeyRequest& request);

// The host as keyed: lower case, without a trailing dot, without a default port (":80", ":443"); other ports are
// kept, since the upstream may build different links for them.
std::string cache_key_host(std::string_view host);

// The query as keyed: parameters ordered by name (byte order, still encoded); several values of one name keep
// their order, since an upstream may read "ids=2&ids=1" as a list. Empty parameters ("a=1&&b=2", a trailing
// "&") are dropped; "a" and "a=" stay different.
std::string canonical_query(std::string_view query);

// A key the cache API may pass to Memcached: 1 to 250 bytes, none of them a space or a control character
// (bytes from 0x80 up, as in UTF-8 keys, are allowed).
bool valid_key(std::string_view key);

}  // namespace apigw::cache
