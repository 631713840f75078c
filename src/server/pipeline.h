// A request's way through the gateway, once the session has read and checked its head:
//
//   route ─▶ auth ─▶ rate limit ─▶ cache ─▶ split ─▶ shadow ─▶ audit ─▶ forward
//   (match)  AuthStage RateLimitStage CacheStage SplitStage ShadowStage AuditStage  proxy::Forwarder
//                                                                                      │
//                 way out, in reverse: audit ◀ shadow ◀ split ◀ cache ◀ rate limit ◀ auth
//
// Routing matches the route (404 and 405 end the way there). Each stage then runs when the route's config switches
// it on, and may end the way in with a reply (auth's 401, the rate limit's 429) or with the cache's answer;
// otherwise the forwarder sends the request upstream with the observers the stages added, and the stages that took
// part see the outcome on the way out. The order is fixed here; one RequestPipeline per worker.
#pragma once

#include <array>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "apigw/auth/auth_stats.h"
#include "apigw/proxy/forward_request.h"
#include "auth_stage.h"
#include "cache_stage.h"
#include "rate_limit_stage.h"
#include "request_context.h"
#include "shadow_stage.h"
#include "split_stage.h"

namespace apigw::server {

struct PipelineOutcome {
  enum class Kind {
    kReply,      // context.reply answers the request (no route, or a stage refused it)
    kStored,     // context.stored answers it (the cache)
    kForwarded,  // the forwarder ran: `forward` says what came of it
  };
  Kind kind = Kind::kReply;
  proxy::ForwardResult forward;
};

class RequestPipeline {
 public:
  explicit RequestPipeline(auth::AuthStats& auth_stats) : auth_(auth_stats) {}
  RequestPipeline(const RequestPipeline&) = delete;
  RequestPipeline& operator=(const RequestPipeline&) = delete;

  boost::asio::awaitable<PipelineOutcome> run(RequestContext& context);
  // What the forwarder is given: the request as the stages left it.
  static proxy::ForwardRequest forward_request(const RequestContext& context);

 private:
  static constexpr std::size_t kStages = 6;
  // The stages' names, as a request's span lists them.
  static constexpr std::array<std::string_view, kStages> kStageNames{"auth",  "rate_limit", "cache",
                                                                     "split", "shadow",     "audit"};

  // Begins the request's trace (a `tracing` section): the context it came with, or a new one.
  static void begin_trace(RequestContext& context);
  // Matches the route: false (with context.reply) when none does.
  bool route(RequestContext& context);
  AuthStage auth_;
  RateLimitStage rate_limit_;
  CacheStage cache_;
  SplitStage split_;
  ShadowStage shadow_;
  AuditStage audit_;
  const std::array<Stage*, kStages> stages_{&auth_, &rate_limit_, &cache_, &split_, &shadow_, &audit_};
};

}  // namespace apigw::server
