// Answering from the cache: the head of a response served from a stored one, and conditional requests (a client
// that holds the stored version is answered 304 Not Modified). Pure.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/beast/http/fields.hpp>

#include "apigw/cache/cached_response.h"

namespace apigw::cache {

// The head of a response answered from the cache: the stored status and headers (its Date among them; the
// current time when it has none), then Age, Content-Length, X-Request-Id, X-Cache (HIT, or STALE), the debug
// headers when given (the record's tags among them), and Connection as `keep_alive` and the client's version
// require.
struct CachedHead {
  std::string_view request_id;
  std::string_view cache_status = "HIT";
  std::string_view route;       // X-Apigw-Route when not empty
  std::string_view upstream;    // X-Apigw-Upstream when not empty
  std::string_view tag_header;  // when not empty, this header lists the record's tags (space-separated)
  // Whole RateLimit and RateLimit-Policy header lines for the client; when not empty they replace stored ones.
  std::string_view rate_limit_headers;
  std::chrono::seconds age{0};
  bool keep_alive = true;
  bool http10 = false;
};
std::string cached_response_head(const CachedResponse& response, const CachedHead& head);

// Whether a stored 200 answers the request's conditions with 304 Not Modified (RFC 9110 §13.1): If-None-Match
// ("*" or a list, compared weakly with the stored ETag) when present, else If-Modified-Since equal to the stored
// Last-Modified (compared as text, as NGINX's default `if_modified_since exact` does).
bool not_modified(const CachedResponse& response, const boost::beast::http::fields& request);

// The stored response reduced to what a 304 carries: the status and the headers a 200 would have sent that
// describe the representation's validity (Cache-Control, Content-Location, ETag, Expires, Last-Modified, Vary),
// and its Date.
CachedResponse not_modified_response(const CachedResponse& response);

// The answer to a request from a stored response: 304 (head only) when the request's conditions match it, else
// the stored response (its body left out for HEAD, 204 and 304). `head.age` is computed here from `now` (Unix
// seconds). The body is a view into `stored`.
struct StoredAnswer {
  unsigned status = 0;
  std::string head;
  std::string_view body;
};
StoredAnswer answer_from_store(const CachedResponse& stored, const boost::beast::http::fields& request,
                               bool head_method, CachedHead head, std::int64_t now);

}  // namespace apigw::cache
