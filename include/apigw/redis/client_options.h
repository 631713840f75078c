// A config `redis` block (auth.redis, control.redis) with its resolved nodes, as a Client takes it.
#pragma once

#include <vector>

#include "apigw/config/config.h"
#include "apigw/config/snapshot.h"
#include "apigw/redis/client.h"

namespace apigw::redis {

// Builds the TLS context from the block's `tls` (already checked at load: throws only on a context that could
// not be built).
ClientOptions client_options(const config::RedisConfig& redis, const std::vector<config::ResolvedEndpoint>& nodes);

}  // namespace apigw::redis
