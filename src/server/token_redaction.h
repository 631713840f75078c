// Tokens stay out of logs and audit records: a request target with the value of every query parameter that auth
// takes tokens from replaced by "REDACTED".
#pragma once

#include <string>
#include <string_view>

#include "apigw/config/snapshot.h"

namespace apigw::server {

// `target` redacted, or empty when there was nothing to redact (no auth section, no query, no token parameter).
std::string redact_tokens(const config::Snapshot* snapshot, std::string_view target);

}  // namespace apigw::server
