// A config file's text as one YAML document, with yaml-cpp's syntax errors reported at their file:line:column.
// Private to src/config; yaml-cpp is only forward-declared here.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "yaml_reader.h"

namespace apigw::config {

// The text's one document (a null node for an empty text), or nullopt after a syntax error or a second document,
// each reported through `reader`. Never hangs, whatever the text.
std::optional<YAML::Node> parse_document(YamlReader& reader, std::string_view text);

}  // namespace apigw::config
