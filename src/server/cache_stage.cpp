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
#include "apigw/cache/cache_tags.h"
#include "apigw/http/location.h"
#include "cache_refresh.h"

namespace apigw::server {
namespace asio = boost::asio;

namespace {

// A request waiting for another instance's fill reads the entry again after this, then twice as long each time.
constexpr auto kFirstPoll = std::chrono::milliseconds(10);
constexpr auto kLongestPoll = std::chrono::milliseconds(200);
constexpr std::int64_t kMaxLeaseSeconds = 3600;

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

void CacheStage::on_response(RequestContext& context, const proxy::ForwardResult& result) {
  CacheState& state = context.cache;
  if (!state.observer) return;
  std::shared_ptr<const cache::CachedResponse> response =
      store_fill(*state.cache, state.key, state.resource, *state.observer, state.tags);
  // A stored record replaced the fill lease's placeholder.
  if (response) state.lease = 0;
  // The requests waiting for this fill get what it stored (or nothing, and go upstream themselves), or the stale
  // entry that answers this request instead of the upstream's failure.
  if (state.fill) {
    if (!response && state.fallback && result.kind == proxy::ForwardResult::Kind::kLocalReply &&
        result.status >= 500) {
      state.fill->stale = true;
      response = state.fallback;
    }
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

std::optional<cache::RequestCacheability> CacheStage::prepare(RequestContext& context) {
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
    return std::nullopt;
  }
  state.cache = context.generation->cache;
  // HEAD is answered from the GET entry (and never fills it: its response has no body).
  cache::KeyRequest key_request{"GET", context.checked.host, context.path(), context.checked.target.query,
                                &request, {}};
  if (!context.user.empty()) key_request.user_id = context.user;
  const std::string_view prefix = state.cache->config().key_prefix;
  std::optional<std::string> key = cache::build_cache_key(prefix, context.route->name, rule, key_request);
  std::optional<std::string> resource = cache::build_resource_key(prefix, context.route->name, rule, key_request);
  if (!key || !resource) {
    stats.bypasses.add();
    return std::nullopt;
  }
  state.key = std::move(*key);
  state.resource = std::move(*resource);
  return cacheability;
}

// The hot path stays in this frame: anything but a plain fresh hit goes on in after_lookup's.
asio::awaitable<std::shared_ptr<const cache::CachedResponse>> CacheStage::look_up(RequestContext& context) {
  const std::optional<cache::RequestCacheability> cacheability = prepare(context);
  if (!cacheability) co_return nullptr;
  CacheState& state = context.cache;
  const bool lookup = *cacheability == cache::RequestCacheability::kLookup;
  const bool head = context.method == "HEAD";
  cache::ResponseCache::Joined joined;
  if (lookup) {
    joined = state.cache->join(state.key, !head);
    if (joined.fill && !joined.is_leader) co_return co_await wait_for_fill(context, std::move(joined.fill));
  }
  if (!route_tags(context)) {
    if (joined.fill) state.cache->finish(state.key, joined.fill, nullptr);
    state.cache->stats().bypasses.add();
    co_return nullptr;
  }
  const memcache::GetOptions options = lookup_options(context, lookup && joined.fill != nullptr);
  // A revalidation reads the entry for nothing, but needs the resource's version to store under.
  cache::ResponseCache::Lookup found =
      co_await state.cache->look_up(state.key, state.resource, tag_keys(context), options);
  if (found.error) {
    lookup_failed(context, joined.fill);
    co_return nullptr;
  }
  take_tag_versions(state, found);
  std::optional<cache::CachedResponse> stored;
  if (lookup) {
    if (std::shared_ptr<const cache::CachedResponse> hit = fresh_hit(context, found, joined.fill, stored)) {
      co_return hit;
    }
  }
  co_return co_await after_lookup(context, std::move(joined), *cacheability, std::move(found), std::move(stored),
                                  options);
}

memcache::GetOptions CacheStage::lookup_options(const RequestContext& context, bool leads) {
  // The lease lets one request of the fleet fill a missing entry; the recache flag picks the one that refreshes a
  // stale one.
  memcache::GetOptions options;
  if (!leads) return options;
  options.cas = true;
  if (context.cache.cache->config().fill_lock) options.vivify = lease_seconds(context);
  options.recache = static_cast<std::uint32_t>(CacheFill::stale_extra(context.route->cache).count());
  return options;
}

void CacheStage::lookup_failed(RequestContext& context, const std::shared_ptr<cache::Fill>& fill) {
  // The primary is down or slow: served from upstream, and nothing is stored.
  CacheState& state = context.cache;
  if (fill) {
    fill->unavailable = true;
    state.cache->finish(state.key, fill, nullptr);
  }
  state.cache->stats().bypasses.add();
}

void CacheStage::take_tag_versions(CacheState& state, const cache::ResponseCache::Lookup& found) {
  for (std::size_t i = 0; i < state.tags.size(); ++i) state.tags[i].version = found.tag_versions[i].value_or(0);
}

std::shared_ptr<const cache::CachedResponse> CacheStage::fresh_hit(RequestContext& context,
                                                                   const cache::ResponseCache::Lookup& found,
                                                                   const std::shared_ptr<cache::Fill>& fill,
                                                                   std::optional<cache::CachedResponse>& stored) {
  if (!found.entry || found.entry->value.empty() || !found.version) return nullptr;
  stored = cache::decode_record(found.entry->value);
  // A value that is not a record (corrupt, or another program's) or belongs to an invalidated version of its
  // resource is a miss.
  if (!stored || stored->resource_version != *found.version) {
    stored.reset();
    return nullptr;
  }
  std::vector<std::string> unread;
  std::vector<std::uint64_t> expected;
  // A refresh this request must start, a tag not read yet, a changed one or an expired record: the long way.
  if (found.entry->won || tags_read_current(context, *stored, found, unread, expected) != true ||
      !stored->fresh(cache::unix_now())) {
    return nullptr;
  }
  CacheState& state = context.cache;
  auto response = std::make_shared<const cache::CachedResponse>(std::move(*stored));
  stored.reset();
  if (fill) state.cache->finish(state.key, fill, response);
  state.cache->stats().hits.add();
  state.status = "HIT";
  return response;
}

asio::awaitable<std::shared_ptr<const cache::CachedResponse>> CacheStage::after_lookup(
    RequestContext& context, cache::ResponseCache::Joined joined, cache::RequestCacheability cacheability,
    cache::ResponseCache::Lookup found, std::optional<cache::CachedResponse> stored, memcache::GetOptions options) {
  CacheState& state = context.cache;
  cache::CacheStats& stats = state.cache->stats();
  const bool head = context.method == "HEAD";
  const bool lookup = cacheability == cache::RequestCacheability::kLookup;
  for (int attempt = 0;; ++attempt) {
    if (attempt > 0) {
      found = co_await state.cache->look_up(state.key, state.resource, tag_keys(context), options);
      if (found.error) {
        lookup_failed(context, joined.fill);
        co_return nullptr;
      }
      take_tag_versions(state, found);
      stored.reset();
    }
    if (lookup && found.entry) {
      const memcache::Item& item = *found.entry;
      if (item.value.empty() && item.won) {
        state.lease = item.cas;  // this request fills the entry for the fleet
      } else if (item.value.empty() && item.fill_elsewhere) {
        std::shared_ptr<const cache::CachedResponse> filled = co_await wait_for_fleet_fill(context, joined.fill);
        if (filled) co_return filled;
        // The other fill gave nothing in time: this request fetches, under the version current now.
        found.version.reset();
      } else if (found.version) {
        if (!stored && !item.value.empty()) stored = cache::decode_record(item.value);
        Served served = co_await serve_stored(context, found, stored, joined.fill, head);
        if (served.response) co_return served.response;
        // A record that cannot be served is dropped (unless it may still answer an upstream failure), so that the
        // next lookup takes the fill lease.
        if (joined.fill && options.vivify > 0 && attempt == 0 && !state.fallback && item.cas != 0) {
          const boost::system::error_code dropped =
              co_await state.cache->remove_if_unchanged(state.key, state.resource, item.cas);
          if (!dropped) continue;
        }
      }
    }
    if (!found.version) found.version = co_await state.cache->create_version(state.resource);
    state.version = found.version.value_or(0);
    break;
  }
  state.status = "MISS";
  stats.misses.add();
  const bool fills = cacheability == cache::RequestCacheability::kRevalidate ? !head : joined.fill != nullptr;
  if (!fills) co_return nullptr;
  state.fill = std::move(joined.fill);
  if (state.version == 0) co_return nullptr;  // the fill ends unstored (~CacheState) when the request does
  // The route's tags that have no version yet get one now, before the upstream is asked: an invalidation during
  // the fetch then makes what it brings stale.
  const std::string_view prefix = state.cache->config().key_prefix;
  for (cache::TagVersion& tag : state.tags) {
    if (tag.version != 0) continue;
    const std::optional<std::uint64_t> version =
        co_await state.cache->create_version_at(cache::tag_key(prefix, tag.tag), state.resource);
    if (!version) co_return nullptr;
    tag.version = *version;
  }
  state.observer.emplace(context.route->cache, static_cast<std::size_t>(state.cache->config().max_item_bytes),
                         CacheFill::Options{state.version, shared_authorization(context), cache::unix_now()});
  co_return nullptr;
}

bool CacheStage::route_tags(RequestContext& context) {
  CacheState& state = context.cache;
  state.tags.clear();
  const std::span<const routing::PathParam> params(context.params.data(), context.param_count);
  for (const std::string& tag_template : context.route->cache.tags) {
    std::optional<std::string> tag = cache::expand_tag(tag_template, params);
    if (!tag) return false;
    const auto same = [&](const cache::TagVersion& known) { return known.tag == *tag; };
    if (std::none_of(state.tags.begin(), state.tags.end(), same)) state.tags.push_back({std::move(*tag), 0});
  }
  return true;
}

std::vector<std::string> CacheStage::tag_keys(const RequestContext& context) {
  const CacheState& state = context.cache;
  const std::string_view prefix = state.cache->config().key_prefix;
  std::vector<std::string> keys;
  // The route's tags first (their versions are needed to store), then those the upstream gave this entry last.
  for (const cache::TagVersion& tag : state.tags) keys.push_back(cache::tag_key(prefix, tag.tag));
  if (!state.cache->knows_header_tags()) return keys;
  for (const std::string& tag : state.cache->header_tags_hint(state.key)) {
    const auto same = [&](const cache::TagVersion& known) { return known.tag == tag; };
    if (std::none_of(state.tags.begin(), state.tags.end(), same)) keys.push_back(cache::tag_key(prefix, tag));
  }
  return keys;
}

std::uint32_t CacheStage::lease_seconds(const RequestContext& context) {
  const auto timeout = context.generation->pools[context.route->upstream]->upstream().config.timeout;
  const auto seconds = std::chrono::ceil<std::chrono::seconds>(timeout).count();
  return static_cast<std::uint32_t>(std::clamp<std::int64_t>(seconds, 1, kMaxLeaseSeconds));
}

std::optional<bool> CacheStage::tags_read_current(const RequestContext& context, const cache::CachedResponse& stored,
                                                  const cache::ResponseCache::Lookup& found,
                                                  std::vector<std::string>& unread,
                                                  std::vector<std::uint64_t>& expected) {
  if (stored.tags.empty()) return true;
  const CacheState& state = context.cache;
  const std::string_view prefix = state.cache->config().key_prefix;
  const std::vector<std::string>& hinted = state.cache->header_tags_hint(state.key);
  for (const cache::TagVersion& tag : stored.tags) {
    std::optional<std::uint64_t> current;
    bool read = false;
    for (std::size_t i = 0; i < state.tags.size(); ++i) {
      if (state.tags[i].tag != tag.tag) continue;
      read = true;
      current = found.tag_versions[i];
    }
    // The hinted tags follow the route's in the lookup, less those the route has.
    std::size_t at = state.tags.size();
    for (const std::string& hint : hinted) {
      const auto same = [&](const cache::TagVersion& known) { return known.tag == hint; };
      if (std::any_of(state.tags.begin(), state.tags.end(), same)) continue;
      if (!read && hint == tag.tag && at < found.tag_versions.size()) {
        read = true;
        current = found.tag_versions[at];
      }
      ++at;
    }
    if (!read) {
      unread.push_back(cache::tag_key(prefix, tag.tag));
      expected.push_back(tag.version);
      continue;
    }
    if (current != tag.version) return false;
  }
  if (!unread.empty()) return std::nullopt;
  return true;
}

asio::awaitable<bool> CacheStage::tags_current(const RequestContext& context, const cache::CachedResponse& stored,
                                               const cache::ResponseCache::Lookup& found) {
  std::vector<std::string> unread;
  std::vector<std::uint64_t> expected;
  const std::optional<bool> known = tags_read_current(context, stored, found, unread, expected);
  if (known) co_return *known;
  const std::vector<std::optional<std::uint64_t>> versions =
      co_await context.cache.cache->tag_versions(std::move(unread), context.cache.resource);
  for (std::size_t i = 0; i < versions.size(); ++i) {
    if (versions[i] != expected[i]) co_return false;
  }
  co_return true;
}

asio::awaitable<CacheStage::Served> CacheStage::serve_stored(RequestContext& context,
                                                            const cache::ResponseCache::Lookup& found,
                                                            std::optional<cache::CachedResponse>& stored,
                                                            const std::shared_ptr<cache::Fill>& fill, bool head) {
  CacheState& state = context.cache;
  cache::CacheStats& stats = state.cache->stats();
  const memcache::Item& item = *found.entry;
  // A value that is not a record (corrupt, or another program's) or belongs to an invalidated version of its
  // resource is a miss.
  if (!stored || stored->resource_version != *found.version) co_return Served{};
  bool current = true;
  if (!stored->tags.empty()) current = co_await tags_current(context, *stored, found);
  const config::RouteCacheConfig& rule = context.route->cache;
  const std::int64_t now = cache::unix_now();
  if (current && stored->fresh(now)) {
    auto response = std::make_shared<const cache::CachedResponse>(std::move(*stored));
    // Memcached's clock ran out first: the refresh is this request's, a little early.
    if (item.won && !head) start_refresh(context, *found.version, shared_authorization(context));
    if (fill) state.cache->finish(state.key, fill, response);
    stats.hits.add();
    state.status = "HIT";
    co_return Served{response};
  }
  // Stale, by age or because one of its tags was invalidated (when the route answers such entries stale).
  const bool tag_stale = !current && rule.tag_invalidation == config::TagInvalidation::kStale;
  if (!current && !tag_stale) co_return Served{};
  const std::chrono::seconds staleness = current ? stored->staleness(now) : std::chrono::seconds(0);
  if (staleness < stored->stale.while_revalidate) {
    bool refresh = item.won;
    if (tag_stale && !item.stale && item.cas != 0) {
      refresh = co_await state.cache->claim_stale(state.key, state.resource, item.cas, stored->stale.while_revalidate);
    }
    auto response = std::make_shared<const cache::CachedResponse>(std::move(*stored));
    if (refresh && !head) start_refresh(context, *found.version, shared_authorization(context));
    if (fill) {
      fill->stale = true;
      state.cache->finish(state.key, fill, response);
    }
    stats.stale.add();
    state.status = "STALE";
    co_return Served{response};
  }
  if (current && staleness < stored->stale.if_error) {
    state.fallback = std::make_shared<const cache::CachedResponse>(std::move(*stored));
  }
  co_return Served{};
}

asio::awaitable<std::shared_ptr<const cache::CachedResponse>> CacheStage::wait_for_fleet_fill(
    RequestContext& context, const std::shared_ptr<cache::Fill>& fill) {
  CacheState& state = context.cache;
  cache::CacheStats& stats = state.cache->stats();
  stats.fleet_waits.add();
  const auto timeout = context.generation->pools[context.route->upstream]->upstream().config.timeout;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto interval = kFirstPoll;
  asio::steady_timer timer(context.worker.executor());
  while (std::chrono::steady_clock::now() + interval < deadline) {
    timer.expires_after(interval);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    interval = std::min(interval * 2, kLongestPoll);
    cache::ResponseCache::Lookup found = co_await state.cache->look_up(state.key, state.resource,
                                                                     tag_keys(context), memcache::GetOptions{});
    if (found.error || !found.entry) break;  // the filler gave up (or the primary failed): fetch
    const memcache::Item& item = *found.entry;
    if (item.value.empty()) continue;  // still filling
    if (!found.version) break;
    take_tag_versions(state, found);
    std::optional<cache::CachedResponse> stored = cache::decode_record(item.value);
    Served served = co_await serve_stored(context, found, stored, fill, false);
    if (served.response) {
      stats.coalesced.add();
      co_return served.response;
    }
    break;
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
    (fill->stale ? stats.stale : stats.hits).add();
    stats.coalesced.add();
    state.status = fill->stale ? "STALE" : "HIT";
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
