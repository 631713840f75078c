// Reading the `control` section: where the fleet's runtime overrides live (Redis), the fleet's name, the delay
// before a change takes effect, the poll interval and the state file. Private to src/config.
#pragma once

#include "apigw/config/config.h"
#include "yaml_reader.h"

namespace apigw::config {

void read_control(YamlReader& reader, const Field& field, ControlConfig& control);

}  // namespace apigw::config
