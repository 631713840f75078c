// A step of a request's way through the gateway (see pipeline.h). A stage is one object per worker; what it
// decides for one request goes in that request's RequestContext. The way in runs the stages in order, each one
// only when it applies to the request's route; the way out (after the forward, whatever its outcome) runs the
// stages that took part, in reverse order.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "apigw/proxy/forward_request.h"
#include "request_context.h"

namespace apigw::server {

enum class StageResult {
  kContinue,  // on to the next stage
  kReply,     // the way in ends with context.reply
  kStored,    // the way in ends with context.stored, the cache's answer
};

class Stage {
 public:
  virtual ~Stage() = default;

  // Whether the stage takes part in this request: its route's config (and the sections it needs) switch it on.
  virtual bool applies(const RequestContext& context) const = 0;
  // The way in.
  virtual boost::asio::awaitable<StageResult> on_request(RequestContext& context) = 0;
  // The way out, once the forwarder is done.
  virtual void on_response(RequestContext& context, const proxy::ForwardResult& result) {
    (void)context;
    (void)result;
  }
};

}  // namespace apigw::server
