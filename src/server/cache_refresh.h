// The background refresh of a stale cache entry (stale-while-revalidate, RFC 5861 §3): the request that was
// answered stale hands a copy of its head (without its conditional headers) to a fetch of its own, which goes to
// the route's upstream while the client already has its answer, and stores a storable response under the entry's
// key as a fill does. Bounded by the upstream's timeout; counted in apigw_cache_refreshes_total.
#pragma once

#include "request_context.h"

namespace apigw::server {

// Starts the refresh of context.cache.key (a GET), whose resource has version `version`; `shared_authorization`
// as for a fill (see CacheFill::Options).
void start_refresh(RequestContext& context, std::uint64_t version, bool shared_authorization);

}  // namespace apigw::server
