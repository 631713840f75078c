// Which requests the shadow must never copy (pure).
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "apigw/routing/request_pattern.h"

namespace apigw::migration {

// Whether a request matches one of `ignore` (migration.shadow_ignore). The path is the one routing matched
// (dot segments resolved, without the query); it is compared in the form an upstream would most likely read it:
// runs of '/' collapsed to one, and %XX escapes of unreserved characters (letters, digits, "-._~") decoded, so that
// "//payments" and "/pay%6Dents" are "/payments" here as they are to most servers.
bool shadow_ignored(std::span<const routing::RequestPattern> ignore, std::string_view method, std::string_view path);

// `path` in that form; `storage` holds it when it differs from `path`.
std::string_view comparable_path(std::string_view path, std::string& storage);

}  // namespace apigw::migration
