// Once per request, when its answer went out (or the client left): the route's request metrics (by method and
// status class, and the duration) and the access log line, with any token in the query redacted.
#pragma once

#include "request_context.h"

namespace apigw::server {

void log_request(const RequestContext& context);

}  // namespace apigw::server
