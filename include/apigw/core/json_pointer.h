// JSON pointers (RFC 6901), as `migration.audit.ignore_fields` names fields. Pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace apigw::core {

// The reference tokens of a pointer, unescaped ("~1" → '/', "~0" → '~'): "" → {}, "/a/b~1c" → {"a", "b/c"}.
// nullopt when it is not a pointer: not empty and not starting with '/', or a '~' not followed by '0' or '1'.
std::optional<std::vector<std::string>> parse_json_pointer(std::string_view pointer);

// The pointer of `tokens`, escaped: {"a", "b/c"} → "/a/b~1c".
std::string json_pointer(const std::vector<std::string>& tokens);

}  // namespace apigw::core
