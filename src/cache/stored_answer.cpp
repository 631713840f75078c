// Answering from the cache (see stored_answer.h).
#include "apigw/cache/stored_answer.h"

#include <array>
#include <iterator>
#include <optional>

#include <boost/beast/core/string.hpp>
#include <fmt/format.h>

#include "apigw/http/local_reply.h"
#include "apigw/http/text.h"

namespace apigw::cache {

namespace {
void append_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}
}  // namespace

namespace {

// An entity tag without its weakness prefix: weak comparison treats W/"x" and "x" alike.
std::string_view opaque_tag(std::string_view tag) {
  tag = http::trim_ows(tag);
  if (tag.starts_with("W/")) tag.remove_prefix(2);
  return tag;
}

std::optional<std::string_view> stored(const CachedResponse& response, std::string_view name) {
  for (const StoredHeader& header : response.headers) {
    if (boost::beast::iequals(header.name, name)) return std::string_view(header.value);
  }
  return std::nullopt;
}

}  // namespace

bool not_modified(const CachedResponse& response, const boost::beast::http::fields& request) {
  namespace bhttp = boost::beast::http;
  if (response.status != 200) return false;
  const auto if_none_match = request.equal_range(bhttp::field::if_none_match);
  if (if_none_match.first != if_none_match.second) {
    const std::optional<std::string_view> etag = stored(response, "ETag");
    bool matched = false;
    for (auto field = if_none_match.first; field != if_none_match.second; ++field) {
      http::for_each_list_element(field->value(), [&](std::string_view tag) {
        matched = matched || tag == "*" || (etag && opaque_tag(tag) == opaque_tag(*etag));
      });
    }
    return matched;  // If-Modified-Since is ignored when If-None-Match is present
  }
  const auto if_modified_since = request.find(bhttp::field::if_modified_since);
  if (if_modified_since == request.end()) return false;
  const std::optional<std::string_view> last_modified = stored(response, "Last-Modified");
  return last_modified && http::trim_ows(*last_modified) == http::trim_ows(if_modified_since->value());
}

CachedResponse not_modified_response(const CachedResponse& response) {
  constexpr std::array<std::string_view, 7> kKept{"Cache-Control", "Content-Location", "Date",        "ETag",
                                                  "Expires",       "Last-Modified",    "Vary"};
  CachedResponse reduced;
  reduced.status = 304;
  reduced.stored_at = response.stored_at;
  reduced.ttl = response.ttl;
  reduced.initial_age = response.initial_age;
  reduced.resource_version = response.resource_version;
  for (const StoredHeader& header : response.headers) {
    for (const std::string_view kept : kKept) {
      if (boost::beast::iequals(header.name, kept)) reduced.headers.push_back(header);
    }
  }
  return reduced;
}

std::string cached_response_head(const CachedResponse& response, const CachedHead& head) {
  std::string out;
  out.reserve(512);
  fmt::format_to(std::back_inserter(out), "HTTP/1.1 {} {}\r\n", response.status, http::reason_phrase(response.status));
  bool dated = false;
  for (const StoredHeader& header : response.headers) {
    if (!head.rate_limit_headers.empty() && (boost::beast::iequals(header.name, "RateLimit") ||
                                             boost::beast::iequals(header.name, "RateLimit-Policy"))) {
      continue;
    }
    append_header(out, header.name, header.value);
    dated = dated || boost::beast::iequals(header.name, "Date");
  }
  // The response's own Date (RFC 9110 §6.6.1); a record written without one gets the current time.
  if (!dated) append_header(out, "Date", http::http_date());
  append_header(out, "Age", fmt::format_int(head.age.count()).c_str());
  // 204 and 304 have no body and no length; any other status sends the stored body's length (HEAD too).
  if (response.status != 204 && response.status != 304) {
    append_header(out, "Content-Length", fmt::format_int(response.body.size()).c_str());
  }
  append_header(out, "X-Request-Id", head.request_id);
  append_header(out, "X-Cache", head.cache_status);
  if (!head.route.empty()) append_header(out, "X-Apigw-Route", head.route);
  if (!head.upstream.empty()) append_header(out, "X-Apigw-Upstream", head.upstream);
  if (!head.tag_header.empty() && !response.tags.empty()) {
    std::string tags;
    for (const TagVersion& tag : response.tags) {
      if (!tags.empty()) tags += ' ';
      tags += tag.tag;
    }
    append_header(out, head.tag_header, tags);
  }
  out.append(head.rate_limit_headers);
  if (!head.keep_alive) {
    append_header(out, "Connection", "close");
  } else if (head.http10) {
    append_header(out, "Connection", "keep-alive");
  }
  out.append("\r\n");
  return out;
}

StoredAnswer answer_from_store(const CachedResponse& stored, const boost::beast::http::fields& request,
                               bool head_method, CachedHead head, std::int64_t now) {
  StoredAnswer answer;
  // A client that holds the stored version already is told so instead of being sent it again.
  if (not_modified(stored, request)) {
    const CachedResponse reduced = not_modified_response(stored);
    head.age = reduced.age(now);
    answer.status = reduced.status;
    answer.head = cached_response_head(reduced, head);
    return answer;
  }
  head.age = stored.age(now);
  answer.status = stored.status;
  answer.head = cached_response_head(stored, head);
  if (!head_method && stored.status != 204 && stored.status != 304) answer.body = stored.body;
  return answer;
}

}  // namespace apigw::cache
