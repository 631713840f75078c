// Formats a config position as "file:line:column" (or less when line or file is unknown), for error messages
// that point at another place in the config. Private to src/config.
#pragma once

#include <string>

#include "apigw/config/config.h"

namespace apigw::config {

std::string position_text(const Position& position);

}  // namespace apigw::config
