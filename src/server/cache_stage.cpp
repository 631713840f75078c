// The cache stage (see cache_stage.h).
#include "cache_stage.h"

#include <chrono>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "apigw/cache/cache_key.h"
#include "apigw/cache/cache_policy.h"

namespace apigw::server {
namespace asio = boost::asio;

asio::awaitable<StageResult> CacheStage::on_request(RequestContext& context) {
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
  std::optional<std::string> record = state.observer->record(cache::unix_now());
  std::shared_ptr<const cache::CachedResponse> response;
  if (record) {
    if (std::optional<cache::CachedResponse> decoded = cache::decode_record(*record)) {
      response = std::make_shared<const cache::CachedResponse>(std::move(*decoded));
    }
    state.cache->store(state.key, std::move(*record), state.observer->ttl());
  }
  // The requests waiting for this fill get what it stored (or nothing, and go upstream themselves).
  if (state.fill) {
    state.cache->finish(state.key, state.fill, std::move(response));
    state.fill.reset();
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
  std::optional<std::string> key =
      cache::build_cache_key(state.cache->config().key_prefix, context.route->name, rule, key_request);
  if (!key) {
    stats.bypasses.add();
    co_return nullptr;
  }
  state.key = std::move(*key);
  const auto max_bytes = static_cast<std::size_t>(state.cache->config().max_item_bytes);
  if (cacheability == cache::RequestCacheability::kRevalidate) {
    // Fetched from upstream whatever is stored, and stored afresh.
    state.status = "MISS";
    stats.misses.add();
    if (!head) state.observer.emplace(rule, max_bytes);
    co_return nullptr;
  }

  cache::ResponseCache::Joined joined = state.cache->join(state.key, !head);
  if (joined.fill && !joined.is_leader) co_return co_await wait_for_fill(context, std::move(joined.fill));
  const memcache::GetResult got = co_await state.cache->get(state.key);
  if (got.error) {
    // The primary is down or slow: served from upstream, and nothing is stored.
    if (joined.fill) {
      joined.fill->unavailable = true;
      state.cache->finish(state.key, joined.fill, nullptr);
    }
    stats.bypasses.add();
    co_return nullptr;
  }
  if (got.item) {
    std::optional<cache::CachedResponse> stored = cache::decode_record(got.item->value);
    // A value that is not a record (corrupt, or another program's) or is past its ttl is a miss.
    if (stored && stored->fresh(cache::unix_now())) {
      auto response = std::make_shared<const cache::CachedResponse>(std::move(*stored));
      if (joined.fill) state.cache->finish(state.key, joined.fill, response);
      stats.hits.add();
      state.status = "HIT";
      co_return response;
    }
  }
  state.status = "MISS";
  stats.misses.add();
  if (joined.fill) {
    state.fill = std::move(joined.fill);
    state.observer.emplace(rule, max_bytes);
  }
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
