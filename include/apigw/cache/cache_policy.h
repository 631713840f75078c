// Which requests may be answered from the response cache and which responses may be stored, and for how long
// (RFC 9111, as a shared cache). Pure. The route's `cache` config decides what is cacheable at all; the
// request's and the response's Cache-Control can only narrow it.
#pragma once

#include <chrono>
#include <cstdint>
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
  bool is_public = false;
  bool must_revalidate = false;
  bool proxy_revalidate = false;
  std::optional<std::chrono::seconds> max_age;
  std::optional<std::chrono::seconds> stale_while_revalidate;  // RFC 5861
  std::optional<std::chrono::seconds> stale_if_error;
  std::optional<std::chrono::seconds> s_maxage;
  bool bad_age = false;  // a max-age or s-maxage whose value is not a number

  // Adds one header value: comma-separated directives, names case-insensitive, values as tokens or quoted
  // strings (commas inside quotes do not split). A repeated max-age or s-maxage keeps the smallest value; a
  // value beyond 2^31 seconds counts as 2^31 (RFC 9111 §1.2.2).
  void add(std::string_view value);
};

// The largest age or lifetime the policy computes with; larger values saturate here (RFC 9111 §1.2.2).
inline constexpr std::chrono::seconds kMaxDeltaSeconds{std::int64_t{1} << 31};

// An Age header value (RFC 9111 §5.1): the first member of the list, a non-negative integer, saturating at
// kMaxDeltaSeconds; nullopt when it is not one (the field is then ignored).
std::optional<std::chrono::seconds> parse_age(std::string_view value);

// When one exchange with the upstream happened, Unix seconds, as RFC 9111 §4.2.3 names them.
struct ExchangeTimes {
  std::int64_t request_time = 0;   // the request was sent upstream
  std::int64_t response_time = 0;  // the response head arrived
};

// corrected_initial_age (RFC 9111 §4.2.3): the larger of the apparent age (response_time − date, never negative)
// and the Age the upstream reported plus the response delay (response_time − request_time). Saturates at
// kMaxDeltaSeconds.
std::chrono::seconds initial_age(std::optional<std::chrono::seconds> age_value, std::int64_t date,
                                 const ExchangeTimes& times);

// What may be stored of a response, and for how long.
struct Storable {
  std::chrono::seconds lifetime{0};     // the freshness lifetime, capped by the route's ttl
  std::chrono::seconds initial_age{0};  // its age when it arrived (see initial_age)
  std::int64_t date = 0;                // its Date, or response_time when it has no valid one
  bool has_date = false;                // it carried a valid Date (otherwise the cache adds one)
  // How long past its lifetime it may be answered stale: the route's windows, shortened by the response's
  // stale-while-revalidate and stale-if-error; none with must-revalidate or proxy-revalidate.
  StaleWindows stale;
  // How much of its lifetime is left when it is stored: always more than zero.
  std::chrono::seconds remaining() const { return lifetime - initial_age; }
};

// Whether a response may be stored, and for how long (RFC 9111 §3 and §4.2, as a shared cache). Not stored:
// - the route does not cache, or its status is not in the route's `statuses` (206, 304, 401 and 407 never are);
// - Set-Cookie (or Set-Cookie2) is present;
// - Cache-Control has no-store or no-cache, or private on a route whose scope is not user, or a malformed
//   max-age or s-maxage (§4.2.1: such a response is stale);
// - Vary is "*", or names a header that is not in the route's `vary` (the key would not tell its variants apart);
// - `shared_authorization` (the request carried Authorization and the entry would be shared, §3.5) and the
//   response has none of public, s-maxage and must-revalidate;
// - it is already stale (its stale windows do not make it storable). The freshness lifetime is s-maxage, else
//   max-age, else Expires − Date (an Expires that is not a valid HTTP-date, "0" included, is in the past), capped
//   by the route's ttl; the route's ttl alone when the response has none of the three. Its age is
//   initial_age(Age, Date, times), a missing or invalid Date counting as response_time.
// A body larger than max_item_bytes is the caller's business (encode_record's max_bytes).
std::optional<Storable> storable_for(unsigned status, std::span<const HeaderView> headers,
                                     const config::RouteCacheConfig& route, const ExchangeTimes& times,
                                     bool shared_authorization = false);

}  // namespace apigw::cache
