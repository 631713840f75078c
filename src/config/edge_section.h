// Reading the `edge` section (the deployments an edge chooses between) and checking every route's `site` against
// it once all files are read. Private to src/config.
#pragma once

#include <vector>

#include "apigw/config/config.h"
#include "route_checks.h"
#include "yaml_reader.h"

namespace apigw::config {

void read_edge(YamlReader& reader, const Field& field, EdgeConfig& edge, Position& default_at);

// Each route's `site` names a site of `edge.sites` (and needs the section); `edge.default` does too.
void check_edge(const Config& config, const Position& default_at, const std::vector<RouteSource>& sources,
                std::vector<ConfigError>& errors);

// Site names: letters, digits, '_' and '-', starting with a letter, at most 32 characters.
std::optional<std::string> parse_site_name(std::string_view text, std::string& why);

// "https://host[:port]" or "http://host[:port]", an optional trailing '/' and nothing after it: the origin alone,
// since the edge sends the request's own path and query there.
std::optional<EdgeSite> parse_edge_origin(std::string_view text, std::string& why);

}  // namespace apigw::config
