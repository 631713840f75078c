// A sampled request's spans, exported once it is answered: the gateway's span for the request (its stages as
// events) and, when it was forwarded, the upstream exchange's span, the parent the upstream was told of.
#pragma once

#include "request_context.h"

namespace apigw::server {

// Only for a request whose spans are exported (context.spans).
void export_request_spans(const RequestContext& context);

}  // namespace apigw::server
