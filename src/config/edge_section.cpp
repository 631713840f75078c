// The `edge` section (see edge_section.h).
#include "edge_section.h"

#include <algorithm>
#include <array>

#include "position_text.h"
#include "value_parsers.h"

namespace apigw::config {
namespace {

constexpr std::array<std::string_view, 3> kEdgeKeys{"sites", "default", "header"};
constexpr std::size_t kMaxSiteNameBytes = 32;

std::string site_names(const EdgeConfig& edge) {
  std::string names;
  for (const EdgeSite& site : edge.sites) names += (names.empty() ? "" : ", ") + site.name;
  return names.empty() ? "none" : names;
}

}  // namespace

std::optional<std::string> parse_site_name(std::string_view text, std::string& why) {
  const auto ok = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  };
  const bool letter_first = !text.empty() && ((text[0] >= 'a' && text[0] <= 'z') || (text[0] >= 'A' && text[0] <= 'Z'));
  if (letter_first && text.size() <= kMaxSiteNameBytes && std::all_of(text.begin(), text.end(), ok)) {
    return std::string(text);
  }
  why = "bad site name '" + std::string(text) + "': a letter, then letters, digits, '_' or '-', at most " +
        std::to_string(kMaxSiteNameBytes) + " characters";
  return std::nullopt;
}

std::optional<EdgeSite> parse_edge_origin(std::string_view text, std::string& why) {
  EdgeSite site;
  std::string_view rest;
  if (text.starts_with("https://")) {
    site.tls = true;
    rest = text.substr(8);
  } else if (text.starts_with("http://")) {
    rest = text.substr(7);
  } else {
    why = "expected an origin such as https://api-cloud.example.com, got '" + std::string(text) + "'";
    return std::nullopt;
  }
  if (rest.ends_with('/')) rest.remove_suffix(1);
  if (rest.find_first_of("/?#@") != std::string_view::npos) {
    why = "'" + std::string(text) + "' must be an origin alone (scheme, host, optional port): the edge sends each "
          "request's own path and query there";
    return std::nullopt;
  }
  // The port is optional here; endpoints require one, so the scheme's is added before they check the rest.
  const bool bracketed = rest.starts_with('[');
  const auto close = bracketed ? rest.find(']') : std::string_view::npos;
  const bool has_port = bracketed ? close != std::string_view::npos && close + 1 < rest.size()
                                  : rest.find(':') != std::string_view::npos;
  const std::string authority = std::string(rest) + (has_port ? "" : site.tls ? ":443" : ":80");
  std::string endpoint_why;
  const auto endpoint = parse_endpoint(authority, endpoint_why);
  if (!endpoint) {
    why = "bad origin '" + std::string(text) + "': " + endpoint_why;
    return std::nullopt;
  }
  site.origin = std::string(text.substr(0, text.size() - (text.ends_with('/') ? 1 : 0)));
  site.host = endpoint->host;
  site.port = endpoint->port;
  return site;
}

void read_edge(YamlReader& reader, const Field& field, EdgeConfig& edge, Position& default_at) {
  edge.enabled = true;
  std::size_t sites_written = 0;
  bool sites_malformed = false;  // already reported
  reader.for_each_field(field, kEdgeKeys, [&](std::string_view key, const Field& value) {
    if (key == "default") {
      default_at = value.position;
      return assign(edge.default_site, reader.value(value, parse_site_name));
    }
    if (key == "header") return assign(edge.header, reader.value(value, parse_shadow_header));
    if (reader.is_null(value)) return;
    if (!reader.expect_map(value)) {
      sites_malformed = true;
      return;
    }
    reader.for_each_field(value, {}, [&](std::string_view name, const Field& origin) {
      ++sites_written;
      std::string why;
      const auto valid_name = parse_site_name(name, why);
      if (!valid_name) reader.error(origin.key, "edge.sites: " + why);
      auto site = reader.value(origin, parse_edge_origin);
      if (!valid_name || !site) return;
      site->name = *valid_name;
      site->position = origin.key;
      edge.sites.push_back(std::move(*site));
    });
  });
  if (edge.default_site.empty() && default_at.line == 0 && edge.sites.size() == 1) {
    edge.default_site = edge.sites.front().name;
  }
  if (sites_written == 0 && !sites_malformed) {
    reader.error(field.position, "edge: needs sites (a name and an origin for each deployment)");
  }
}

void check_edge(const Config& config, const Position& default_at, const std::vector<RouteSource>& sources,
                std::vector<ConfigError>& errors) {
  const EdgeConfig& edge = config.edge;
  if (edge.enabled && !edge.sites.empty()) {
    if (edge.default_site.empty() && default_at.line == 0) {
      if (edge.sites.size() > 1) {
        errors.push_back({edge.sites.front().position,
                          "edge: needs a default (the site of routes without one, and of requests that match no "
                          "route): one of " + site_names(edge)});
      }
    } else if (!edge.default_site.empty() && edge.find(edge.default_site) == nullptr) {
      errors.push_back({default_at, "edge.default: site '" + edge.default_site + "' is not in edge.sites (" +
                                        site_names(edge) + ")"});
    }
  }
  for (std::size_t i = 0; i < config.routes.size(); ++i) {
    const RouteConfig& route = config.routes[i];
    if (route.site.empty()) continue;
    if (!edge.enabled) {
      errors.push_back({sources[i].site, route_label(config, i) + " site: there is no edge section to name sites"});
    } else if (edge.find(route.site) == nullptr) {
      errors.push_back({sources[i].site, route_label(config, i) + " site: '" + route.site +
                                             "' is not in edge.sites (" + site_names(edge) + ")"});
    }
  }
}

}  // namespace apigw::config
