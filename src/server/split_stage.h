// The split stage, on a route with a `split`: a request in the split's share (a beta user, or its affinity bucket
// below the threshold) is served by the split's upstream instead of the route's own; the choice is sticky per
// user, as the affinity key is. Counted by side per route.
#pragma once

#include <cstdint>

#include "stage.h"

namespace apigw::server {

// Whether the request is in a migration target's share: a beta user, or its affinity bucket (computed once per
// request, from the configured affinity key, or drawn when the request has none) below `threshold`.
bool in_migration_share(RequestContext& context, std::uint32_t threshold);

class SplitStage final : public Stage {
 public:
  bool applies(const RequestContext& context) const override { return context.route->split.has_value(); }
  boost::asio::awaitable<StageResult> on_request(RequestContext& context) override;
};

}  // namespace apigw::server
