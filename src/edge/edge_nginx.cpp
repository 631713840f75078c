// The edge table as an include file for an NGINX front: the trie flattened into one `map` of regular expressions
// over "host method path", tried in order, so that the first to match is the route the trie would choose.
#include <fmt/format.h>

#include "apigw/edge/edge_export.h"
#include "edge_table.h"

namespace apigw::edge {
namespace {

bool plain(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' || c == '_' ||
         c == '-';
}

void flatten(const routing::TrieTableView& table, const routing::TrieNodeView& node, std::string path,
             std::vector<PrecedenceLine>& lines) {
  path += regex_literal(node.prefix);
  // The order of RouteTrie's walk: a path that ends here, then longer static text, then a segment, then the rest.
  for (const auto& entry : node.methods) lines.push_back({&table, entry.methods, path, entry.route});
  if (node.any_method) lines.push_back({&table, {}, path, *node.any_method});
  for (const auto& child : node.statics) flatten(table, child, path, lines);
  if (!node.param.empty()) flatten(table, node.param.front(), path + "[^/]+", lines);
  if (!node.wildcard.empty()) flatten(table, node.wildcard.front(), path + ".*", lines);
}

std::string host_regex(const routing::TrieTableView& table) {
  switch (table.kind) {
    case routing::TrieTableView::Kind::kExactHost:
      return regex_literal(table.host);
    case routing::TrieTableView::Kind::kWildcardHost:
      return "[^ ]+" + regex_literal(table.host);  // a name longer than the suffix, as the trie asks
    case routing::TrieTableView::Kind::kAnyHost:
      break;
  }
  return "[^ ]*";
}

std::string methods_regex(const std::vector<std::string>& methods) {
  if (methods.empty()) return "[^ ]+";
  std::string out = "(?:";
  for (std::size_t i = 0; i < methods.size(); ++i) out += (i ? "|" : "") + regex_literal(methods[i]);
  return out + ")";
}

}  // namespace

std::string regex_literal(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (plain(c)) {
      out += c;
    } else {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    }
  }
  return out;
}

std::vector<PrecedenceLine> precedence(const std::vector<routing::TrieTableView>& tables) {
  std::vector<PrecedenceLine> lines;
  for (const auto& table : tables) flatten(table, table.root, "", lines);
  return lines;
}

std::string export_nginx(const config::Snapshot& snapshot, const std::string& banner) {
  const config::Config& config = snapshot.config;
  const config::EdgeConfig& edge = config.edge;
  std::string out = banner;
  out += fmt::format(
      "#\n"
      "# Include it in NGINX's http {{}} block. It sets $apigw_edge_site (the site that serves the request),\n"
      "# $apigw_edge_pass (its upstream, for proxy_pass) and $apigw_edge_tls_name (its origin's name, for TLS),\n"
      "# and defines one upstream per site. In the server {{}} in front of the sites:\n"
      "#\n"
      "#     location / {{\n"
      "#         proxy_pass $apigw_edge_pass;\n"
      "#         proxy_set_header {} $apigw_edge_site;\n"
      "#         proxy_set_header Host $host;\n"
      "#         proxy_ssl_server_name on;\n"
      "#         proxy_ssl_name $apigw_edge_tls_name;\n"
      "#         proxy_http_version 1.1;\n"
      "#         proxy_set_header Connection \"\";\n"
      "#         # ... the other proxy_* settings of config/nginx-apigw.conf\n"
      "#     }}\n"
      "#\n"
      "# Routes are matched as apigw matches them: on the lower-case host without its port, the method, and the\n"
      "# path as sent (percent-encoded, without the query); a path with dot segments on the path NGINX resolved.\n\n",
      edge.header);
  out +=
      "map $request_uri $apigw_edge_raw_path {\n"
      "    \"~^(?<apigw_edge_raw>[^?]*)\" $apigw_edge_raw;\n"
      "}\n\n"
      "map $apigw_edge_raw_path $apigw_edge_path {\n"
      "    \"~*(?:^|/)(?:\\.|%2e){1,2}(?:/|$)\" $uri;\n"
      "    default $apigw_edge_raw_path;\n"
      "}\n\n";
  out += "# Routes in the order apigw's trie tries them; the first that matches decides.\n";
  out += "map \"$host $request_method $apigw_edge_path\" $apigw_edge_site {\n";
  out += fmt::format("    default {};\n", edge.default_site);
  const std::vector<routing::TrieTableView> tables = snapshot.trie->tables();
  for (const PrecedenceLine& line : precedence(tables)) {
    const config::RouteConfig& route = config.routes[line.route];
    out += fmt::format("    \"~^{} {} {}$\" {};  # {} ({})\n", host_regex(*line.table), methods_regex(line.methods),
                       line.path_regex, route_site(config, line.route), route.name,
                       position_label(config, route.position));
  }
  out += "}\n\n";
  out += "map $apigw_edge_site $apigw_edge_pass {\n";
  for (const config::EdgeSite& site : edge.sites) {
    out += fmt::format("    {} {}://apigw_edge_{};\n", site.name, site.tls ? "https" : "http", site.name);
  }
  out += "}\n\n";
  out += "map $apigw_edge_site $apigw_edge_tls_name {\n";
  for (const config::EdgeSite& site : edge.sites) out += fmt::format("    {} {};\n", site.name, site.host);
  out += "}\n";
  for (const config::EdgeSite& site : edge.sites) {
    const bool v6 = site.host.find(':') != std::string::npos;
    out += fmt::format(
        "\n# {}: {}\n"
        "upstream apigw_edge_{} {{\n"
        "    server {}{}{}:{};\n"
        "    keepalive 64;\n"
        "}}\n",
        site.name, site.origin, site.name, v6 ? "[" : "", site.host, v6 ? "]" : "", site.port);
  }
  return out;
}

}  // namespace apigw::edge
