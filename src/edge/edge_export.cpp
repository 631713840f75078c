// The edge table and its JSON and JavaScript forms (see edge_export.h).
#include "apigw/edge/edge_export.h"

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <fmt/format.h>

#include <filesystem>

#include "apigw/core/digest.h"
#include "edge_table.h"

namespace apigw::edge {
namespace json = boost::json;

namespace {

constexpr int kFormatVersion = 1;

// A trie node in the edge's compact encoding: "p" prefix, "s" static children, ":" the param child, "*" the wildcard
// child, "m" {method: route} and "a" the any-method route; empty parts left out.
json::object node_object(const routing::TrieNodeView& node) {
  json::object out;
  if (!node.prefix.empty()) out["p"] = node.prefix;
  if (!node.statics.empty()) {
    json::array statics;
    for (const auto& child : node.statics) statics.push_back(node_object(child));
    out["s"] = std::move(statics);
  }
  if (!node.param.empty()) out[":"] = node_object(node.param.front());
  if (!node.wildcard.empty()) out["*"] = node_object(node.wildcard.front());
  if (!node.methods.empty()) {
    json::object methods;
    for (const auto& entry : node.methods) {
      for (const auto& method : entry.methods) methods[method] = entry.route;
    }
    out["m"] = std::move(methods);
  }
  if (node.any_method) out["a"] = *node.any_method;
  return out;
}

std::string_view kind_name(routing::TrieTableView::Kind kind) {
  switch (kind) {
    case routing::TrieTableView::Kind::kExactHost:
      return "exact";
    case routing::TrieTableView::Kind::kWildcardHost:
      return "wildcard";
    case routing::TrieTableView::Kind::kAnyHost:
      break;
  }
  return "any";
}

// Objects and arrays down to `depth` 1 one member per line; deeper values on the line of their member.
void write_pretty(const json::value& value, int depth, std::string& out) {
  const bool nested = value.is_object() ? !value.get_object().empty() : value.is_array() && !value.get_array().empty();
  if (depth > 1 || !nested) {
    out += json::serialize(value);
    return;
  }
  const std::string indent(static_cast<std::size_t>(depth + 1) * 2, ' ');
  const std::string closing_indent(static_cast<std::size_t>(depth) * 2, ' ');
  bool first = true;
  if (value.is_object()) {
    out += "{\n";
    for (const auto& member : value.get_object()) {
      out += first ? "" : ",\n";
      first = false;
      out += indent + json::serialize(json::string(member.key())) + ": ";
      write_pretty(member.value(), depth + 1, out);
    }
    out += "\n" + closing_indent + "}";
    return;
  }
  out += "[\n";
  for (const auto& item : value.get_array()) {
    out += first ? "" : ",\n";
    first = false;
    out += indent;
    write_pretty(item, depth + 1, out);
  }
  out += "\n" + closing_indent + "]";
}

std::string pretty(const json::value& value) {
  std::string out;
  write_pretty(value, 0, out);
  return out;
}

// The worker's code after its table: apigw's matching (RouteTrie::match) over the table, and the fetch handler.
constexpr std::string_view kWorkerCode = R"JS(
const EXACT_HOSTS = new Map(TABLE.tables.filter((t) => t.kind === "exact").map((t) => [t.host, t.root]));
const WILDCARD_HOSTS = TABLE.tables.filter((t) => t.kind === "wildcard");  // longest suffix first
const ANY_HOST = TABLE.tables.find((t) => t.kind === "any").root;

// The route of a terminal node for `method`: its explicit methods first, then its any-method route; -1 for none.
function accept(node, method) {
  if (node.m !== undefined && Object.hasOwn(node.m, method)) return node.m[method];
  return node.a !== undefined ? node.a : -1;
}

// Depth first, as apigw walks its trie: static text before a `:param` segment before a `*wildcard` rest, a dead end
// (or a path whose methods do not fit) going back to the next choice.
function visit(node, rest, method) {
  if (rest === "") {
    const route = accept(node, method);
    if (route >= 0) return route;
  } else {
    if (node.s !== undefined) {
      for (const child of node.s) {
        if (child.p[0] !== rest[0]) continue;
        if (rest.startsWith(child.p)) {
          const route = visit(child, rest.slice(child.p.length), method);
          if (route >= 0) return route;
        }
        break;  // static children start with distinct characters
      }
    }
    const slash = rest.indexOf("/");
    const segment = slash < 0 ? rest : rest.slice(0, slash);
    if (node[":"] !== undefined && segment !== "") {
      const route = visit(node[":"], rest.slice(segment.length), method);
      if (route >= 0) return route;
    }
  }
  return node["*"] !== undefined ? accept(node["*"], method) : -1;
}

// The index of the route apigw would choose, or -1 where it would answer 404 or 405. `hostname` without its port
// (URL.hostname), `path` normalised as URL.pathname gives it (dot segments resolved, still percent-encoded).
export function routeFor(method, hostname, path) {
  let host = hostname.toLowerCase();
  if (host.endsWith(".")) host = host.slice(0, -1);
  if (host.length <= 255) {
    const exact = EXACT_HOSTS.get(host);
    if (exact !== undefined) {
      const route = visit(exact, path, method);
      if (route >= 0) return route;
    }
    for (const table of WILDCARD_HOSTS) {
      if (host.length > table.host.length && host.endsWith(table.host)) {
        const route = visit(table.root, path, method);
        if (route >= 0) return route;
      }
    }
  }
  return visit(ANY_HOST, path, method);
}

// The site that serves a request: its route's, else the default site.
export function siteFor(method, hostname, path) {
  const route = routeFor(method, hostname, path);
  return route >= 0 ? TABLE.routes[route].site : TABLE.default;
}

export const table = TABLE;

// Hop-by-hop fields (RFC 9110 7.6.1) belong to one connection: a proxy never forwards them.
const HOP_BY_HOP = ["connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade"];

export default {
  // The request goes to its site's origin unchanged (method, path, query, end-to-end headers, body), with the site
  // named in TABLE.header and the host the client asked for in X-Forwarded-Host (the runtime sets Host to the
  // origin's).
  async fetch(request) {
    const url = new URL(request.url);
    const site = siteFor(request.method, url.hostname, url.pathname);
    const headers = new Headers(request.headers);
    for (const listed of (headers.get("connection") || "").split(",")) {
      const name = listed.trim();
      if (/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) headers.delete(name);
    }
    for (const name of HOP_BY_HOP) headers.delete(name);
    headers.delete("host");
    headers.set(TABLE.header, site);
    headers.set("X-Forwarded-Host", url.host);
    headers.set("X-Forwarded-Proto", url.protocol.slice(0, -1));
    const init = { method: request.method, headers, redirect: "manual" };
    if (request.body !== null) {
      init.body = request.body;
      init.duplex = "half";
    }
    return fetch(TABLE.sites[site] + url.pathname + url.search, init);
  },
};
)JS";

std::string banner(const config::Snapshot& snapshot, const ExportSource& source, std::string_view comment) {
  return fmt::format(
      "{0} apigw edge routing, generated by {1} (edge-export) from {2}\n"
      "{0} (sha256 {3}), table version {4}. Do not edit: regenerate it from the YAML.\n",
      comment, source.generator, source.config, source.config_sha256, table_version(snapshot));
}

}  // namespace

const std::string& route_site(const config::Config& config, std::size_t route) {
  const std::string& own = config.routes[route].site;
  return own.empty() ? config.edge.default_site : own;
}

std::string position_label(const config::Config& config, const config::Position& position) {
  namespace fs = std::filesystem;
  const fs::path base = fs::path(config.source_file).parent_path();
  fs::path file(position.file);
  if (!base.empty()) {
    const fs::path relative = file.lexically_relative(base);
    if (!relative.empty()) file = relative;
  } else if (file.is_absolute()) {
    file = file.filename();
  }
  return fmt::format("{}:{}:{}", file.string(), position.line, position.column);
}

json::object table_object(const config::Snapshot& snapshot, bool positions) {
  const config::Config& config = snapshot.config;
  json::object sites;
  for (const config::EdgeSite& site : config.edge.sites) sites[site.name] = site.origin;
  json::array routes;
  for (std::size_t i = 0; i < config.routes.size(); ++i) {
    const config::RouteConfig& route = config.routes[i];
    json::array methods;
    for (const auto& method : route.match.methods) methods.emplace_back(method);
    json::object item{{"name", route.name},           {"site", route_site(config, i)},
                      {"host", route.match.host},     {"path", route.match.path},
                      {"methods", std::move(methods)}};
    if (positions) item["at"] = position_label(config, route.position);
    routes.push_back(std::move(item));
  }
  json::array tables;
  for (const routing::TrieTableView& table : snapshot.trie->tables()) {
    json::object item{{"kind", kind_name(table.kind)}};
    if (table.kind != routing::TrieTableView::Kind::kAnyHost) item["host"] = table.host;
    item["root"] = node_object(table.root);
    tables.push_back(std::move(item));
  }
  return json::object{{"header", config.edge.header},
                      {"default", config.edge.default_site},
                      {"sites", std::move(sites)},
                      {"routes", std::move(routes)},
                      {"tables", std::move(tables)}};
}

std::string table_version(const config::Snapshot& snapshot) {
  return core::sha256_hex(json::serialize(table_object(snapshot, false))).substr(0, 16);
}

std::string export_table(const config::Snapshot& snapshot, const ExportSource& source, Format format) {
  if (format == Format::kNginx) return export_nginx(snapshot, banner(snapshot, source, "#"));
  json::object document{{"format", "apigw-edge-table"},
                        {"format_version", kFormatVersion},
                        {"generated_by", source.generator},
                        {"config", source.config},
                        {"config_sha256", source.config_sha256},
                        {"table_version", table_version(snapshot)}};
  for (auto& member : table_object(snapshot, true)) document.emplace(member.key(), std::move(member.value()));
  if (format == Format::kJson) return pretty(document) + "\n";
  std::string out = banner(snapshot, source, "//");
  out +=
      "//\n"
      "// An edge worker module (the fetch(request) handler of Cloudflare Workers and the runtimes that share it):\n"
      "// each request goes, unchanged, to the origin of the site its apigw route names; a request that matches no\n"
      "// route (apigw would answer 404 or 405) goes to the default site.\n\n"
      "const TABLE = ";
  out += pretty(document);
  out += ";\n";
  out += kWorkerCode;
  return out;
}

}  // namespace apigw::edge
