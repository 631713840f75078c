// The loader's checks of the migration values that fleet control may also change at runtime (a route's split and
// shadow percent, a beta user, a shadow_ignore pattern), so that a runtime change is refused in the loader's own
// words and by its exact thresholds.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace apigw::config {

// A percent as `split.percent` and `shadow.percent` take it, and the buckets it covers out of `buckets`; nullopt,
// with the loader's reason in `why`, when it is not a percent or not a whole number of buckets.
std::optional<std::uint32_t> migration_threshold(std::string_view percent, std::uint32_t buckets, std::string& why);

// A `migration.beta_users` item; false with the loader's reason.
bool valid_beta_user(std::string_view user, std::string& why);

// A `migration.shadow_ignore` item ("[METHOD ]/path/pattern"); false with the loader's reason.
bool valid_shadow_ignore(std::string_view pattern, std::string& why);

}  // namespace apigw::config
