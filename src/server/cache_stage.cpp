// The cache stage (see cache_stage.h).
#include "cache_stage.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "apigw/cache/cache_key.h"
#include "apigw/cache/cache_policy.h"
#include "apigw/http/location.h"

namespace apigw::server {
namespace asio = boost::asio;

namespace {

// RFC 9110 §9.2.1: every method but these may change the resource.
bool unsafe(std::string_view method) {
  return method != "GET" && method != "HEAD" && method != "OPTIONS" && method != "TRACE";
}

// The request carried Authorization and its response would be shared (RFC 9111 §3.5): not on a route that shares
// them on purpose, nor where the entry is keyed by the user apigw authenticated.
bool shared_authorization(const RequestContext& context) {
  const config::RouteCacheConfig& rule = context.route->cache;
  if (rule.share_authorized || (rule.scope == config::CacheScope::kUser && !context.user.empty())) return false;
  return context.request().find(boost::beast::http::field::authorization) != context.request().end();
}

}  // namespace

bool CacheStage::applies(const RequestContext& context) const {
  return context.generation->cache && (context.route->cache.enabled || unsafe(context.method));
}

asio::awaitable<StageResult> CacheStage::on_request(RequestContext& context) {
  if (unsafe(context.method)) {
    // Whatever the route, a successful write invalidates what the cache holds for its URL, as soon as the
    // response's head says it succeeded.
    context.cache.write.emplace([&context](const WriteObserver& write) { invalidate_after_write(context, write); });
    context.observers.add(&*context.cache.write);
    if (!context.route->cache.enabled) co_return StageResult::kContinue;
  }
  std::shared_ptr<const cache::CachedResponse> hit = co_await look_up(context);
  if (hit) {
    context.stored = std::move(hit);
    co_return StageResult::kStored;
  }
  if (context.cache.observer) context.observers.add(&*context.cache.observer);
  co_return StageResult::kContinue;
}

void CacheStage::on_response(RequestContext& context, const proxy::ForwardResult&) {
  CacheState& state = context.cache;
  if (!state.observer) return;
  std::optional<std::string> record = state.observer->record();
  std::shared_ptr<const cache::CachedResponse> response;
  if (record) {
    if (std::optional<cache::CachedResponse> decoded = cache::decode_record(*record)) {
      response = std::make_shared<const cache::CachedResponse>(std::move(*decoded));
    }
    state.cache->store(state.key, std::move(*record), state.observer->ttl(), state.resource);
  }
  // The requests waiting for this fill get what it stored (or nothing, and go upstream themselves).
  if (state.fill) {
    state.cache->finish(state.key, state.fill, std::move(response));
    state.fill.reset();
  }
}

void CacheStage::invalidate_after_write(RequestContext& context, const WriteObserver& write) {
  if (write.status < 200 || write.status >= 400) return;
  cache::ResponseCache& response_cache = *context.generation->cache;
  const std::string_view host = context.checked.host;
  std::vector<std::string> resources;
  // RFC 9111 §4.4: the request's URL, and those its Location and Content-Location name on the same host.
  const auto invalidate = [&](std::string_view path, std::string_view query) {
    const routing::RouteTrieMatch match = context.snapshot->trie->match(host, "GET", path);
    if (match.kind != routing::RouteTrieMatch::Kind::kFound) return;
    const config::Route& route = context.snapshot->routes[match.route];
    if (!route.cache.enabled) return;
    cache::KeyRequest request{"GET", host, path, query, nullptr, {}};
    if (!context.user.empty()) request.user_id = context.user;
    std::optional<std::string> resource =
        cache::build_resource_key(response_cache.config().key_prefix, route.name, route.cache, request);
    if (!resource || std::find(resources.begin(), resources.end(), *resource) != resources.end()) return;
    response_cache.invalidate(*resource);
    resources.push_back(std::move(*resource));
  };
  invalidate(context.path(), context.checked.target.query);
  for (const std::optional<std::string>* reference : {&write.location, &write.content_location}) {
    if (!*reference) continue;
    const std::optional<http::SameHostTarget> target =
        http::same_host_target(**reference, host, context.path(), context.checked.target.query);
    if (target) invalidate(target->path, target->query);
  }
}

asio::awaitable<std::shared_ptr<const cache::CachedResponse>> CacheStage::look_up(RequestContext& context) {
  CacheState& state = context.cache;
  cache::CacheStats& stats = context.generation->cache->stats();
  const config::RouteCacheConfig& rule = context.route->cache;
  const auto& request = context.request();
  state.status = "BYPASS";
  const cache::RequestCacheability cacheability = cache::classify_request(context.method, request);
  // A request with a body is not one the cache can answer: the body would have to be read for nothing.
  const auto length = context.parser().content_length();
  const bool has_body = context.parser().chunked() || (length && *length > 0);
  if (cacheability == cache::RequestCacheability::kBypass || has_body) {
    stats.bypasses.add();
    co_return nullptr;
  }
  state.cache = context.generation->cache;
  // HEAD is answered from the GET entry (and never fills it: its response has no body).
  const bool head = context.method == "HEAD";
  cache::KeyRequest key_request{"GET", context.checked.host, context.path(), context.checked.target.query,
                                &request, {}};
  if (!context.user.empty()) key_request.user_id = context.user;
  const std::string_view prefix = state.cache->config().key_prefix;
  std::optional<std::string> key = cache::build_cache_key(prefix, context.route->name, rule, key_request);
  std::optional<std::string> resource = cache::build_resource_key(prefix, context.route->name, rule, key_request);
  if (!key || !resource) {
    stats.bypasses.add();
    co_return nullptr;
  }
  state.key = std::move(*key);
  state.resource = std::move(*resource);

  cache::ResponseCache::Joined joined;
  if (cacheability == cache::RequestCacheability::kLookup) {
    joined = state.cache->join(state.key, !head);
    if (joined.fill && !joined.is_leader) co_return co_await wait_for_fill(context, std::move(joined.fill));
  }
  // A revalidation reads the entry for nothing, but needs the resource's version to store under.
  cache::ResponseCache::Lookup found = co_await state.cache->look_up(state.key, state.resource);
  if (found.error) {
    // The primary is down or slow: served from upstream, and nothing is stored.
    if (joined.fill) {
      joined.fill->unavailable = true;
      state.cache->finish(state.key, joined.fill, nullptr);
    }
    stats.bypasses.add();
    co_return nullptr;
  }
  if (cacheability == cache::RequestCacheability::kLookup && found.entry && found.version) {
    std::optional<cache::CachedResponse> stored = cache::decode_record(found.entry->value);
    // A value that is not a record (corrupt, or another program's), is past its lifetime or belongs to an
    // invalidated version of its resource is a miss.
    if (stored && stored->resource_version == *found.version && stored->fresh(cache::unix_now())) {
      auto response = std::make_shared<const cache::CachedResponse>(std::move(*stored));
      if (joined.fill) state.cache->finish(state.key, joined.fill, response);
      stats.hits.add();
      state.status = "HIT";
      co_return response;
    }
  }
  state.status = "MISS";
  stats.misses.add();
  const bool fills = cacheability == cache::RequestCacheability::kRevalidate ? !head : joined.fill != nullptr;
  if (!fills) co_return nullptr;
  state.fill = std::move(joined.fill);
  if (!found.version) found.version = co_await state.cache->create_version(state.resource);
  if (!found.version) co_return nullptr;  // the fill ends unstored (~CacheState) when the request does
  state.observer.emplace(rule, static_cast<std::size_t>(state.cache->config().max_item_bytes),
                         CacheFill::Options{*found.version, shared_authorization(context), cache::unix_now()});
  co_return nullptr;
}

asio::awaitable<std::shared_ptr<const cache::CachedResponse>> CacheStage::wait_for_fill(
    RequestContext& context, std::shared_ptr<cache::Fill> fill) {
  using namespace asio::experimental::awaitable_operators;
  CacheState& state = context.cache;
  cache::CacheStats& stats = context.generation->cache->stats();
  if (!fill->done) {
    asio::steady_timer limit(context.worker.executor());
    limit.expires_after(context.generation->pools[context.route->upstream]->upstream().config.timeout);
    co_await (fill->done_signal.async_wait(asio::as_tuple(asio::use_awaitable)) ||
              limit.async_wait(asio::as_tuple(asio::use_awaitable)));
  }
  if (fill->done && fill->response) {
    stats.hits.add();
    stats.coalesced.add();
    state.status = "HIT";
    co_return fill->response;
  }
  if (fill->unavailable) {
    stats.bypasses.add();
    co_return nullptr;
  }
  state.status = "MISS";
  stats.misses.add();
  co_return nullptr;
}

}  // namespace apigw::server
