// The request pipeline (see pipeline.h).
#include "pipeline.h"

#include <fmt/format.h>

#include "apigw/http/request_target.h"
#include "apigw/proxy/forwarder.h"

namespace apigw::server {
namespace asio = boost::asio;

asio::awaitable<PipelineOutcome> RequestPipeline::run(RequestContext& context) {
  PipelineOutcome outcome;
  if (context.snapshot->config.tracing.enabled) begin_trace(context);
  if (!route(context)) co_return outcome;
  std::array<Stage*, kStages> entered{};
  std::size_t count = 0;
  for (std::size_t i = 0; i < kStages; ++i) {
    Stage* stage = stages_[i];
    if (!stage->applies(context)) continue;
    const StageResult result = co_await stage->on_request(context);
    if (context.spans) {
      context.stage_marks[context.stage_mark_count++] = {kStageNames[i], core::Deadline::Clock::now()};
    }
    if (result == StageResult::kReply) co_return outcome;
    if (result == StageResult::kStored) {
      outcome.kind = PipelineOutcome::Kind::kStored;
      co_return outcome;
    }
    entered[count++] = stage;
  }
  outcome.kind = PipelineOutcome::Kind::kForwarded;
  context.forward = forward_request(context);
  proxy::Forwarder& forwarder = context.forwarder.emplace(*context.client, context.forward, context.pool(),
                                                              context.exchange_buffers);
  if (context.spans) context.forward_start = core::Deadline::Clock::now();
  outcome.forward = co_await forwarder.run();
  if (context.spans) context.forward_end = core::Deadline::Clock::now();
  context.endpoint = outcome.forward.endpoint;
  while (count > 0) entered[--count]->on_response(context, outcome.forward);
  if (outcome.forward.kind == proxy::ForwardResult::Kind::kLocalReply && outcome.forward.status >= 500 &&
      context.cache.fallback && outcome.forward.body_consumed) {
    // stale-if-error: the stale entry answers instead of the upstream's failure.
    context.stored = std::move(context.cache.fallback);
    context.cache.status = "STALE";
    context.generation->cache->stats().stale.add();
    outcome.kind = PipelineOutcome::Kind::kStored;
  }
  co_return outcome;
}

void RequestPipeline::begin_trace(RequestContext& context) {
  const auto& request = context.request();
  tracing::IncomingContext incoming;
  for (auto [at, end] = request.equal_range("traceparent"); at != end; ++at) {
    incoming.traceparent = at->value();
    ++incoming.traceparents;
  }
  for (auto [at, end] = request.equal_range("tracestate"); at != end; ++at) {
    incoming.tracestate = at->value();
    ++incoming.tracestates;
  }
  tracing::begin_trace(context.trace, incoming, context.snapshot->config.tracing.ratio, context.worker.trace_ids());
  context.spans = context.trace.sampled() && context.worker.spans().exporting();
}

bool RequestPipeline::route(RequestContext& context) {
  const routing::RouteTrieMatch match =
      context.snapshot->trie->match(context.checked.host, context.method, context.path());
  if (match.kind != routing::RouteTrieMatch::Kind::kFound) {
    const bool no_path = match.kind == routing::RouteTrieMatch::Kind::kNoPath;
    context.reply_message =
        fmt::format("{} {} {}", no_path ? "no route matches" : "method not allowed for", context.method,
                    context.path());
    context.reply.status = no_path ? 404 : 405;
    context.reply.message = context.reply_message;
    context.reply.allow = match.allow;
    return false;
  }
  context.route = &context.snapshot->routes[match.route];
  context.route_index = match.route;
  context.params = match.params;
  context.param_count = match.param_count;
  context.serving = context.route->upstream;
  context.upstream = context.pool().upstream().config.name;
  return true;
}

proxy::ForwardRequest RequestPipeline::forward_request(const RequestContext& context) {
  const config::Snapshot& snapshot = *context.snapshot;
  proxy::ForwardRequest forward;
  forward.route = context.route;
  forward.request_id = context.request_id;
  forward.path = http::strip_path_prefix(context.path(), context.route->strip_prefix);
  forward.query = context.checked.target.query;
  forward.has_query = context.checked.target.has_query;
  forward.authority = context.checked.target.authority;
  forward.host = context.checked.host;
  forward.peer_address = context.peer.address;
  forward.trusted_peer = snapshot.trusted_proxies.contains(context.peer.ip);
  forward.debug_headers = snapshot.config.server.debug_headers;
  forward.name_upstream = context.route->split.has_value();  // which side served it is part of the answer
  forward.keep_alive = context.request().keep_alive() && !context.worker.draining();
  if (snapshot.config.auth.enabled) {
    // On every route, so that no client can pass itself off as a user.
    forward.user_header = snapshot.config.auth.forward_header;
    forward.user_id = context.user;
  }
  forward.cache_status = context.cache.status;
  forward.rate_limit_headers = context.rate_limit_headers;
  if (context.route->cache.enabled && !forward.debug_headers) {
    forward.drop_response_header = context.route->cache.tag_header;
  }
  forward.stale_fallback = context.cache.fallback != nullptr;
  forward.trace_headers = context.trace.headers;
  forward.observers = context.observers.view();
  forward.request_observer = context.request_observer;
  return forward;
}

}  // namespace apigw::server
