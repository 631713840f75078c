// The shadow stage, on a route with a `shadow`: a request in the shadow's share is copied to the shadow side
// (migration::ShadowCopy, sent by the worker's migration::ShadowDispatch once the client has its answer), unless
// it is a copy itself, the split already sent it to that side, migration.shadow_ignore names it (payments,
// notifications) or its body is over migration.shadow.max_body_bytes. The audit stage may then compare the two
// answers.
#pragma once

#include "stage.h"

namespace apigw::server {

class ShadowStage final : public Stage {
 public:
  bool applies(const RequestContext& context) const override { return context.route->shadow.has_value(); }
  boost::asio::awaitable<StageResult> on_request(RequestContext& context) override;
  // The copy leaves now, whatever became of the primary exchange.
  void on_response(RequestContext& context, const proxy::ForwardResult& result) override;

 private:
  // The copy to make, or null when this request is not copied.
  std::shared_ptr<migration::ShadowCopy> plan(RequestContext& context);
};

// The audit stage, on a request the shadow stage copies: a sample of them (migration.audit.sample percent) is
// audited: the primary's answer is observed as it is relayed, and once the shadow side answered, one record
// comparing the two goes to the audit sink.
class AuditStage final : public Stage {
 public:
  bool applies(const RequestContext& context) const override {
    return context.route->shadow.has_value() && context.snapshot->config.migration.audit.enabled;
  }
  boost::asio::awaitable<StageResult> on_request(RequestContext& context) override;
};

}  // namespace apigw::server
