// The background refresh (see cache_refresh.h).
#include "cache_refresh.h"

#include <array>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <spdlog/spdlog.h>

#include "apigw/net/socket_io.h"
#include "apigw/proxy/forward_heads.h"
#include "apigw/upstream/http_client.h"
#include "pipeline.h"

namespace apigw::server {
namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using boost::system::error_code;

namespace {

// Conditions the client's copy of the entry set: the refresh wants the whole response.
constexpr std::array<bhttp::field, 5> kConditional{bhttp::field::if_none_match, bhttp::field::if_modified_since,
                                                   bhttp::field::if_match, bhttp::field::if_unmodified_since,
                                                   bhttp::field::if_range};

struct Refresh {
  GenerationPtr generation;  // keeps the route, its upstream pool and the cache alive
  const Worker* worker = nullptr;
  std::size_t upstream = 0;
  std::string head;
  std::string key;
  std::string resource;
  std::vector<cache::TagVersion> tags;
  std::optional<CacheFill> fill;
};

asio::awaitable<bool> fetch(Refresh& refresh) {
  upstream::UpstreamPool& pool = *refresh.generation->pools[refresh.upstream];
  const auto timeout = pool.upstream().config.timeout;
  upstream::ExchangeDeadline deadline(refresh.generation->cache->executor(),
                                      std::chrono::steady_clock::now() + timeout);
  upstream::LeaseResult leased = pool.lease_idle(upstream::kNoEndpoint, false);
  if (leased.pending()) leased = co_await pool.lease_new(leased.endpoint, false);
  if (!leased.lease) co_return false;
  upstream::Lease& lease = leased.lease;
  upstream::UpstreamConnection& connection = lease.connection();
  deadline.watch(connection);
  const std::array<asio::const_buffer, 1> buffers{asio::buffer(refresh.head)};
  auto [write_error, written] = co_await upstream::send_request(connection, buffers);
  upstream::ResponseReader reader;
  bool got_bytes = false;
  error_code error = write_error;
  if (!error) error = co_await reader.read_head(connection, false, got_bytes);
  if (!error) {
    refresh.fill->on_head(reader.status(), reader.response().fields());
    error = co_await reader.read_rest(connection, [&](std::string_view bytes) { refresh.fill->on_body(bytes); });
  }
  deadline.unwatch();
  const bool reusable = !error && reader.reusable(connection) && !refresh.worker->draining();
  lease.finish(reusable);
  if (error) co_return false;
  if (reader.status() >= 500) pool.stats().error(upstream::UpstreamError::k5xx);
  refresh.fill->on_complete();
  co_return true;
}

asio::awaitable<void> run(std::shared_ptr<Refresh> refresh) {
  cache::ResponseCache& cache = *refresh->generation->cache;
  const bool fetched = co_await fetch(*refresh);
  const bool stored =
      fetched && store_fill(cache, refresh->key, refresh->resource, *refresh->fill, std::move(refresh->tags)) !=
                     nullptr;
  (stored ? cache.stats().refreshes_ok : cache.stats().refreshes_failed).add();
  if (!stored) spdlog::debug("cache: refreshing {} {}", refresh->key, fetched ? "gave nothing storable" : "failed");
}

}  // namespace

void start_refresh(RequestContext& context, std::uint64_t version, bool shared_authorization) {
  auto refresh = std::make_shared<Refresh>();
  refresh->generation = context.generation;
  refresh->worker = &context.worker;
  refresh->upstream = context.route->upstream;
  refresh->key = context.cache.key;
  refresh->resource = context.cache.resource;
  refresh->tags = context.cache.tags;
  bhttp::request_header<> request = context.request();
  request.method(bhttp::verb::get);
  for (const bhttp::field field : kConditional) request.erase(field);
  proxy::ForwardRequest forward = RequestPipeline::forward_request(context);
  forward.keep_alive = true;
  proxy::build_upstream_request_head(request, forward, {false, std::nullopt}, refresh->head);
  const config::RouteCacheConfig& rule = context.route->cache;
  refresh->fill.emplace(rule, static_cast<std::size_t>(context.generation->cache->config().max_item_bytes),
                        CacheFill::Options{version, shared_authorization, cache::unix_now()});
  asio::co_spawn(context.generation->cache->executor(), run(std::move(refresh)), asio::detached);
}

}  // namespace apigw::server
