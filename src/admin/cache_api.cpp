// The /_cache endpoints (see cache_api.h).
#include "apigw/admin/cache_api.h"

#include <charconv>

#include <boost/asio/error.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include "apigw/cache/cache_key.h"
#include "apigw/http/request_target.h"

namespace apigw::admin {
namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
using boost::system::error_code;

namespace {

// X-Cache-TTL above ten years is a mistake rather than a wish.
constexpr std::uint64_t kMaxApiTtlSeconds = 10ull * 366 * 24 * 3600;

ApiResponse error(unsigned status, std::string_view message) {
  ApiResponse response;
  response.status = status;
  response.body = json::serialize(json::object{{"error", message}}) + "\n";
  return response;
}

// Compares without stopping at the first difference, so that the time taken tells nothing of the token.
bool same_token(std::string_view given, std::string_view expected) {
  if (expected.empty()) return false;
  unsigned char difference = given.size() == expected.size() ? 0 : 1;
  for (std::size_t i = 0; i < given.size(); ++i) {
    difference |= static_cast<unsigned char>(given[i] ^ expected[i % expected.size()]);
  }
  return difference == 0;
}

std::optional<std::uint64_t> whole_number(std::string_view text, std::uint64_t max) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value > max) return std::nullopt;
  return value;
}

ApiResponse unavailable(const error_code& failure) {
  const std::string cause = failure == asio::error::timed_out ? std::string("timed out") : failure.message();
  return error(503, fmt::format("the primary Memcached pool failed: {}", cause));
}

std::string_view field(const json::object& object, std::string_view name, std::string& why) {
  const json::value* value = object.if_contains(name);
  if (value == nullptr || value->is_null()) return {};
  if (!value->is_string()) {
    why = fmt::format("\"{}\" must be a string", name);
    return {};
  }
  return value->get_string();
}

asio::awaitable<ApiResponse> purge(cache::ResponseCache& cache, const config::Snapshot& snapshot,
                                   std::string_view body) {
  error_code parse_error;
  json::value document = json::parse(body, parse_error);
  if (parse_error || !document.is_object()) {
    co_return error(400, "the body must be a JSON object: {\"route\": ..., \"path\": ...}");
  }
  const json::object& object = document.get_object();
  std::string why;
  const std::string_view route_name = field(object, "route", why);
  const std::string_view path = field(object, "path", why);
  std::string_view query = field(object, "query", why);
  std::string_view host = field(object, "host", why);
  const json::value* user = object.if_contains("user_id");
  if (user != nullptr && !user->is_null() && !user->is_string()) why = "\"user_id\" must be a string";
  bhttp::fields headers;
  if (const json::value* given = object.if_contains("headers"); given != nullptr && !given->is_null()) {
    if (!given->is_object()) {
      why = "\"headers\" must be an object of header names to values";
    } else {
      for (const auto& [name, value] : given->get_object()) {
        if (!value.is_string() || name.empty()) {
          why = "\"headers\" must be an object of header names to string values";
          break;
        }
        headers.insert(std::string_view(name), std::string_view(value.get_string()));
      }
    }
  }
  if (why.empty() && route_name.empty()) why = "\"route\" is required";
  if (why.empty() && (path.empty() || path.front() != '/')) why = "\"path\" is required and starts with '/'";
  if (!why.empty()) co_return error(400, why);
  if (query.starts_with('?')) query.remove_prefix(1);

  const config::Route* route = nullptr;
  for (const config::Route& candidate : snapshot.routes) {
    if (candidate.name == route_name) route = &candidate;
  }
  if (route == nullptr) co_return error(404, fmt::format("no route named '{}'", route_name));
  if (!route->cache.enabled) co_return error(404, fmt::format("route '{}' has no cache", route_name));
  std::string match_host;
  for (const config::RouteConfig& config : snapshot.config.routes) {
    if (config.name == route_name) match_host = config.match.host;
  }
  if (host.empty()) host = match_host;
  if (host.empty()) co_return error(400, "\"host\" is required: the route matches any host, and the host is keyed");

  cache::KeyRequest request{"GET", host, path, query, &headers, {}};
  if (user != nullptr && user->is_string()) request.user_id = std::string_view(user->get_string());
  const std::string_view prefix = cache.config().key_prefix;
  std::optional<std::string> key = cache::build_cache_key(prefix, route->name, route->cache, request);
  std::optional<std::string> resource = cache::build_resource_key(prefix, route->name, route->cache, request);
  if (!key || !resource) co_return error(400, "no cache key can be formed for this route");
  // Deleting the resource's version invalidates every variant of the URL; the named variant's entry goes too.
  if (const error_code failure = co_await cache.remove(*resource, *resource)) co_return unavailable(failure);
  if (const error_code failure = co_await cache.remove(*key, *resource)) co_return unavailable(failure);
  co_return ApiResponse{200, "application/json",
                        json::serialize(json::object{{"key", *key}, {"resource", *resource}, {"deleted", true}}) +
                            "\n",
                        {}};
}

// {"tags": [...], "keys": [...]}: every response filed under a tag stops being served, on every instance.
asio::awaitable<ApiResponse> invalidate(cache::ResponseCache& cache, std::string_view body) {
  error_code parse_error;
  json::value document = json::parse(body, parse_error);
  constexpr std::string_view kShape =
      "the body must be a JSON object: {\"tags\": [\"product:7\", ...], \"keys\": [...]}";
  if (parse_error || !document.is_object()) co_return error(400, kShape);
  std::vector<std::pair<std::string, std::string>> fields;
  for (const std::string_view name : {"tags", "keys"}) {
    const json::value* list = document.get_object().if_contains(name);
    if (list == nullptr || list->is_null()) continue;
    if (!list->is_array()) co_return error(400, fmt::format("\"{}\" must be a list of strings", name));
    for (const json::value& item : list->get_array()) {
      if (!item.is_string()) co_return error(400, fmt::format("\"{}\" must be a list of strings", name));
      const std::string_view text = item.get_string();
      // One field per item, so that an item holding a space is refused rather than split.
      if (text.find_first_of(" \t") != std::string_view::npos || text.empty()) {
        co_return error(400, fmt::format("bad {} '{}': no spaces, not empty", name == "tags" ? "tag" : "key",
                                         text.substr(0, 64)));
      }
      fields.emplace_back(std::string(name), std::string(text));
    }
  }
  std::string why;
  std::optional<cache::Invalidation> invalidation = cache::invalidation_from_fields(fields, why);
  if (!invalidation) co_return error(400, why);
  const std::size_t tags = invalidation->tags.size();
  const std::size_t keys = invalidation->keys.size();
  if (const error_code failure = co_await cache.invalidate(std::move(*invalidation))) co_return unavailable(failure);
  co_return ApiResponse{200, "application/json",
                        json::serialize(json::object{{"tags", tags}, {"keys", keys}, {"invalidated", true}}) + "\n",
                        {}};
}

}  // namespace

bool is_cache_api_path(std::string_view path) {
  return path == kCacheApiPrefix || path.starts_with(std::string(kCacheApiPrefix) + "/");
}

asio::awaitable<ApiResponse> serve_cache_api(std::shared_ptr<cache::ResponseCache> cache,
                                             config::SnapshotPtr snapshot,
                                             const bhttp::request<bhttp::string_body>& request) {
  const std::string_view target = request.target();
  const std::string_view path = target.substr(0, target.find('?'));
  if (!cache || !snapshot || !snapshot->config.cache.api.enabled) {
    co_return error(404, "the cache API is off: it needs cache.api.token in the configuration");
  }
  const auto authorization = request.find(bhttp::field::authorization);
  std::string_view given;
  if (authorization != request.end() && authorization->value().size() > 7 &&
      boost::beast::iequals(authorization->value().substr(0, 7), "Bearer ")) {
    given = authorization->value().substr(7);
  }
  if (given.empty() || !same_token(given, snapshot->config.cache.api.token)) {
    ApiResponse refused = error(401, "the cache API needs Authorization: Bearer <cache.api.token>");
    refused.headers.emplace_back("WWW-Authenticate", R"(Bearer realm="apigw-cache")");
    co_return refused;
  }

  const std::string_view rest = path.substr(std::min(path.size(), kCacheApiPrefix.size() + 1));
  const bhttp::verb method = request.method();
  if (rest == "purge" && method == bhttp::verb::post) co_return co_await purge(*cache, *snapshot, request.body());
  if (rest == "invalidate" && method == bhttp::verb::post) co_return co_await invalidate(*cache, request.body());
  const std::optional<std::string> key = http::percent_decode(rest, false);
  if (!key || !cache::valid_key(*key)) {
    co_return error(400, "the key must be 1 to 250 bytes of percent-encoded text, without spaces or control "
                         "characters");
  }

  switch (method) {
    case bhttp::verb::put: {
      std::uint64_t ttl = 0, flags = 0;
      if (const auto header = request.find("X-Cache-TTL"); header != request.end()) {
        const auto parsed = whole_number(header->value(), kMaxApiTtlSeconds);
        if (!parsed) co_return error(400, "X-Cache-TTL must be a whole number of seconds (0 = no expiry)");
        ttl = *parsed;
      }
      if (const auto header = request.find("X-Cache-Flags"); header != request.end()) {
        const auto parsed = whole_number(header->value(), 0xffffffffull);
        if (!parsed) co_return error(400, "X-Cache-Flags must be a whole number from 0 to 4294967295");
        flags = *parsed;
      }
      if (request.body().size() > cache->config().max_item_bytes) {
        co_return error(413, fmt::format("the value exceeds cache.max_item_bytes ({} bytes)",
                                         cache->config().max_item_bytes));
      }
      const error_code failure = co_await cache->set(*key, request.body(), static_cast<std::uint32_t>(flags),
                                                     std::chrono::seconds(ttl));
      if (failure == asio::error::message_size) co_return error(413, "Memcached refused the value as too large");
      if (failure) co_return unavailable(failure);
      co_return ApiResponse{204, {}, {}, {}};
    }
    case bhttp::verb::get:
    case bhttp::verb::head: {
      const memcache::GetResult got = co_await cache->get(*key);
      if (got.error) co_return unavailable(got.error);
      if (!got.item) co_return error(404, "no such key");
      ApiResponse found{200, "application/octet-stream", got.item->value, {}};
      found.headers.emplace_back("X-Cache-Flags", std::to_string(got.item->flags));
      if (got.item->ttl_left) found.headers.emplace_back("X-Cache-TTL", std::to_string(got.item->ttl_left->count()));
      co_return found;
    }
    case bhttp::verb::delete_: {
      if (const error_code failure = co_await cache->remove(*key)) co_return unavailable(failure);
      co_return ApiResponse{204, {}, {}, {}};
    }
    default: {
      ApiResponse refused =
          error(405, "a key allows GET, HEAD, PUT and DELETE; /_cache/purge and /_cache/invalidate allow POST");
      const bool post = rest == "purge" || rest == "invalidate";
      refused.headers.emplace_back("Allow", post ? "GET, HEAD, PUT, DELETE, POST" : "GET, HEAD, PUT, DELETE");
      co_return refused;
    }
  }
}

}  // namespace apigw::admin
