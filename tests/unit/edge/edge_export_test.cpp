// Tests for the edge export: the trie's view, each precedence rule in the JSON table and in the NGINX map's order,
// the NGINX lines against the trie itself, and the outputs' determinism and provenance.
#include "apigw/edge/edge_export.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "apigw/config/loader.h"
#include "apigw/config/snapshot.h"
#include "edge/edge_table.h"

namespace apigw::edge {
namespace {

namespace json = boost::json;

// Routes for every precedence rule: static over :param over *wildcard, explicit methods over any method, exact
// host over wildcard host (longest first) over any host.
constexpr std::string_view kConfig = R"(edge:
  sites:
    onprem: https://onprem.example.com
    cloud: http://127.0.0.1:8080
  default: onprem
upstreams:
  svc: { endpoints: [127.0.0.1:9001] }
routes:
  - { name: user-me, match: { path: /users/me }, upstream: svc, site: cloud }
  - { name: user, match: { path: /users/:id }, upstream: svc }
  - { name: user-files, match: { path: /users/:id/files/*rest }, upstream: svc, site: cloud }
  - { name: user-write, match: { path: /users/:id, methods: [PUT, DELETE] }, upstream: svc, site: cloud }
  - { name: static-any, match: { path: /static/*path }, upstream: svc, site: cloud }
  - { name: exact-host, match: { path: /users/:id, host: api.example.com }, upstream: svc, site: cloud }
  - { name: wild-short, match: { path: /h, host: "*.example.com" }, upstream: svc }
  - { name: wild-long, match: { path: /h, host: "*.eu.example.com" }, upstream: svc, site: cloud }
  - { name: dotted, match: { path: "/v1.0/a+b" }, upstream: svc, site: cloud }
)";

config::SnapshotPtr snapshot_of(std::string_view yaml, const std::string& name = "/etc/apigw/apigw.yaml") {
  const config::LoadResult loaded = config::load_string(yaml, name);
  EXPECT_TRUE(loaded.config) << (loaded.errors.empty() ? "" : loaded.errors.front().text());
  if (!loaded.config) return nullptr;
  config::SnapshotResult built = config::build_snapshot(*loaded.config, 1);
  EXPECT_TRUE(built.snapshot);
  return built.snapshot;
}

const ExportSource kSource{"apigw.yaml", std::string(64, 'a'), "apigw 0.1.0"};

json::object exported_json(const config::Snapshot& snapshot) {
  return json::parse(export_table(snapshot, kSource, Format::kJson)).as_object();
}

std::string route_name(const json::object& table, const json::value& index) {
  return std::string(table.at("routes").as_array().at(index.to_number<std::size_t>()).at("name").as_string());
}

const json::object& table_of_kind(const json::object& document, std::string_view kind, std::string_view host = "") {
  for (const auto& table : document.at("tables").as_array()) {
    const auto& object = table.as_object();
    if (object.at("kind").as_string() == kind && (host.empty() || object.at("host").as_string() == host)) {
      return object;
    }
  }
  ADD_FAILURE() << "no table " << kind << " " << host;
  static const json::object none;
  return none;
}

TEST(TrieView, TablesInMatchOrder) {
  const auto snapshot = snapshot_of(kConfig);
  ASSERT_TRUE(snapshot);
  const auto tables = snapshot->trie->tables();
  ASSERT_EQ(tables.size(), 4u);
  EXPECT_EQ(tables[0].kind, routing::TrieTableView::Kind::kExactHost);
  EXPECT_EQ(tables[0].host, "api.example.com");
  EXPECT_EQ(tables[1].kind, routing::TrieTableView::Kind::kWildcardHost);
  EXPECT_EQ(tables[1].host, ".eu.example.com");  // longest suffix first
  EXPECT_EQ(tables[2].host, ".example.com");
  EXPECT_EQ(tables[3].kind, routing::TrieTableView::Kind::kAnyHost);
}

TEST(TrieView, StaticsSortedParamAndWildcardBelow) {
  routing::RouteTrie trie;
  ASSERT_FALSE(trie.add("", "/b/:id", {}, 0));
  ASSERT_FALSE(trie.add("", "/a/*rest", {"GET"}, 1));
  ASSERT_FALSE(trie.add("", "/a/x", {"POST", "GET"}, 2));
  ASSERT_FALSE(trie.add("", "/a/x", {}, 3));
  const auto tables = trie.tables();
  ASSERT_EQ(tables.size(), 1u);
  const routing::TrieNodeView& root = tables[0].root;
  ASSERT_EQ(root.statics.size(), 1u);
  const routing::TrieNodeView& slash = root.statics[0];
  EXPECT_EQ(slash.prefix, "/");
  ASSERT_EQ(slash.statics.size(), 2u);
  EXPECT_EQ(slash.statics[0].prefix, "a/");
  EXPECT_EQ(slash.statics[1].prefix, "b/");
  const routing::TrieNodeView& a = slash.statics[0];
  ASSERT_EQ(a.wildcard.size(), 1u);
  EXPECT_TRUE(a.wildcard[0].terminal());
  ASSERT_EQ(a.statics.size(), 1u);
  const routing::TrieNodeView& x = a.statics[0];
  ASSERT_EQ(x.methods.size(), 1u);
  EXPECT_EQ(x.methods[0].methods, (std::vector<std::string>{"GET", "POST"}));
  EXPECT_EQ(x.methods[0].route, 2u);
  EXPECT_EQ(x.any_method, 3u);
  ASSERT_EQ(slash.statics[1].param.size(), 1u);
  EXPECT_EQ(slash.statics[1].param[0].any_method, 0u);
}

TEST(EdgeJson, DocumentSaysWhereItCameFrom) {
  const auto snapshot = snapshot_of(kConfig);
  ASSERT_TRUE(snapshot);
  const json::object document = exported_json(*snapshot);
  EXPECT_EQ(document.at("format").as_string(), "apigw-edge-table");
  EXPECT_EQ(document.at("format_version").as_int64(), 1);
  EXPECT_EQ(document.at("generated_by").as_string(), "apigw 0.1.0");
  EXPECT_EQ(document.at("config").as_string(), "apigw.yaml");
  EXPECT_EQ(document.at("config_sha256").as_string(), std::string(64, 'a'));
  EXPECT_EQ(document.at("table_version").as_string(), table_version(*snapshot));
  EXPECT_EQ(document.at("table_version").as_string().size(), 16u);
  EXPECT_EQ(document.at("header").as_string(), "X-Apigw-Site");
  EXPECT_EQ(document.at("default").as_string(), "onprem");
  EXPECT_EQ(document.at("sites").as_object().at("cloud").as_string(), "http://127.0.0.1:8080");
  const auto& routes = document.at("routes").as_array();
  ASSERT_EQ(routes.size(), 9u);
  EXPECT_EQ(routes[0].at("name").as_string(), "user-me");
  EXPECT_EQ(routes[0].at("site").as_string(), "cloud");
  EXPECT_EQ(routes[1].at("site").as_string(), "onprem");  // edge.default
  EXPECT_EQ(routes[1].at("at").as_string(), "apigw.yaml:10:5");
  EXPECT_EQ(routes[3].at("methods").as_array().size(), 2u);
}

// The JSON node of `path`'s static text below `node`, following "p" prefixes.
const json::object* static_child(const json::object& node, std::string_view prefix) {
  if (!node.contains("s")) return nullptr;
  for (const auto& child : node.at("s").as_array()) {
    if (child.at("p").as_string() == prefix) return &child.as_object();
  }
  return nullptr;
}

TEST(EdgeJson, StaticParamAndWildcardAreSeparateChoices) {
  const auto snapshot = snapshot_of(kConfig);
  ASSERT_TRUE(snapshot);
  const json::object document = exported_json(*snapshot);
  const json::object& root = table_of_kind(document, "any").at("root").as_object();
  const json::object* slash = static_child(root, "/");
  ASSERT_NE(slash, nullptr);
  const json::object* users = static_child(*slash, "users/");
  ASSERT_NE(users, nullptr);
  // "/users/me" is a static child, ":id" the param child beside it.
  const json::object* me = static_child(*users, "me");
  ASSERT_NE(me, nullptr);
  EXPECT_EQ(route_name(document, me->at("a")), "user-me");
  ASSERT_TRUE(users->contains(":"));
  const json::object& id = users->at(":").as_object();
  EXPECT_EQ(route_name(document, id.at("a")), "user");
  // Explicit methods beside the any-method route of the same pattern.
  EXPECT_EQ(route_name(document, id.at("m").at("PUT")), "user-write");
  EXPECT_EQ(route_name(document, id.at("m").at("DELETE")), "user-write");
  const json::object* files = static_child(id, "/files/");
  ASSERT_NE(files, nullptr);
  EXPECT_EQ(route_name(document, files->at("*").at("a")), "user-files");
}

TEST(EdgeJson, HostTablesMostSpecificFirst) {
  const auto snapshot = snapshot_of(kConfig);
  ASSERT_TRUE(snapshot);
  const json::object document = exported_json(*snapshot);
  const auto& tables = document.at("tables").as_array();
  ASSERT_EQ(tables.size(), 4u);
  EXPECT_EQ(tables[0].at("kind").as_string(), "exact");
  EXPECT_EQ(tables[0].at("host").as_string(), "api.example.com");
  EXPECT_EQ(tables[1].at("kind").as_string(), "wildcard");
  EXPECT_EQ(tables[1].at("host").as_string(), ".eu.example.com");
  EXPECT_EQ(tables[2].at("host").as_string(), ".example.com");
  EXPECT_EQ(tables[3].at("kind").as_string(), "any");
  EXPECT_FALSE(tables[3].as_object().contains("host"));
}

TEST(EdgeExport, SameYamlSameBytes) {
  const auto first = snapshot_of(kConfig);
  const auto second = snapshot_of(kConfig);
  ASSERT_TRUE(first && second);
  for (const Format format : {Format::kJson, Format::kWorker, Format::kNginx}) {
    EXPECT_EQ(export_table(*first, kSource, format), export_table(*second, kSource, format));
  }
}

TEST(EdgeExport, TableVersionFollowsRoutingOnly) {
  const auto base = snapshot_of(kConfig);
  ASSERT_TRUE(base);
  // A comment, an upstream's endpoint and the file's name change nothing the edge decides.
  std::string same(kConfig);
  same.replace(same.find("127.0.0.1:9001"), 14, "127.0.0.1:9009");
  const auto unchanged = snapshot_of("# a comment\n" + same, "/srv/other.yaml");
  ASSERT_TRUE(unchanged);
  EXPECT_EQ(table_version(*base), table_version(*unchanged));
  // Moving one route to the other site does.
  std::string moved(kConfig);
  moved.replace(moved.find("upstream: svc }\n  - { name: user-files"), 15, "upstream: svc, site: cloud }");
  const auto changed = snapshot_of(moved);
  ASSERT_TRUE(changed);
  EXPECT_NE(table_version(*base), table_version(*changed));
}

TEST(EdgeWorker, ModuleHoldsTheTableAndTheHandler) {
  const auto snapshot = snapshot_of(kConfig);
  ASSERT_TRUE(snapshot);
  const std::string worker = export_table(*snapshot, kSource, Format::kWorker);
  EXPECT_TRUE(worker.starts_with("// apigw edge routing, generated by apigw 0.1.0 (edge-export) from apigw.yaml\n"));
  EXPECT_NE(worker.find("table version " + table_version(*snapshot)), std::string::npos);
  EXPECT_NE(worker.find("const TABLE = {\n"), std::string::npos);
  EXPECT_NE(worker.find("export function siteFor("), std::string::npos);
  EXPECT_NE(worker.find("export default {"), std::string::npos);
  EXPECT_NE(worker.find("async fetch(request)"), std::string::npos);
  // The table is the JSON document itself.
  const auto begin = worker.find("const TABLE = ") + 14;
  const auto end = worker.find(";\n", begin);
  const json::value table = json::parse(std::string_view(worker).substr(begin, end - begin));
  EXPECT_EQ(table.as_object(), exported_json(*snapshot));
}

TEST(RegexLiteral, EscapesAllButPlainCharacters) {
  EXPECT_EQ(regex_literal("/users/me_2-x"), "/users/me_2-x");
  EXPECT_EQ(regex_literal("/v1.0/a+b"), "/v1\\x2e0/a\\x2bb");
  EXPECT_EQ(regex_literal("$x\\\" ;{}"), "\\x24x\\x5c\\x22\\x20\\x3b\\x7b\\x7d");
}

// The NGINX map's lines as (route name, pattern) in file order.
std::vector<std::pair<std::string, std::string>> nginx_lines(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> lines;
  static const std::regex line(R"re(^    "~\^(.*)\$" ([a-z]+);  # ([a-z-]+) \(.*\)$)re");
  std::size_t begin = 0;
  while (begin < text.size()) {
    const std::size_t end = text.find('\n', begin);
    const std::string one = text.substr(begin, end - begin);
    std::smatch match;
    if (std::regex_match(one, match, line)) lines.emplace_back(match[3], match[1]);
    begin = end == std::string::npos ? text.size() : end + 1;
  }
  return lines;
}

TEST(EdgeNginx, LinesInTheTriesOrder) {
  const auto snapshot = snapshot_of(kConfig);
  ASSERT_TRUE(snapshot);
  const std::string nginx = export_table(*snapshot, kSource, Format::kNginx);
  const auto lines = nginx_lines(nginx);
  std::vector<std::string> names;
  for (const auto& [name, pattern] : lines) names.push_back(name);
  // Exact host, wildcard hosts longest first, any host; within a table: a path ending at a node (explicit methods
  // before any method), then static text, then :param, then *wildcard.
  // Static children in the order of their text ("static/" < "users/" < "v1.0/"): at most one of them can match.
  EXPECT_EQ(names, (std::vector<std::string>{"exact-host", "wild-long", "wild-short", "static-any", "user-me",
                                             "user-write", "user", "user-files", "dotted"}));
  ASSERT_EQ(lines.size(), 9u);
  EXPECT_EQ(lines[0].second, "api\\x2eexample\\x2ecom [^ ]+ /users/[^/]+");
  EXPECT_EQ(lines[1].second, "[^ ]+\\x2eeu\\x2eexample\\x2ecom [^ ]+ /h");
  EXPECT_EQ(lines[3].second, "[^ ]* [^ ]+ /static/.*");
  EXPECT_EQ(lines[5].second, "[^ ]* (?:DELETE|PUT) /users/[^/]+");
  EXPECT_EQ(lines[7].second, "[^ ]* [^ ]+ /users/[^/]+/files/.*");
  EXPECT_EQ(lines[8].second, "[^ ]* [^ ]+ /v1\\x2e0/a\\x2bb");
  EXPECT_NE(nginx.find("    default onprem;\n"), std::string::npos);
  EXPECT_NE(nginx.find("    cloud http://apigw_edge_cloud;\n"), std::string::npos);
  EXPECT_NE(nginx.find("    onprem https://apigw_edge_onprem;\n"), std::string::npos);
  EXPECT_NE(nginx.find("upstream apigw_edge_onprem {\n    server onprem.example.com:443;\n"), std::string::npos);
  EXPECT_NE(nginx.find("upstream apigw_edge_cloud {\n    server 127.0.0.1:8080;\n"), std::string::npos);
  EXPECT_NE(nginx.find("# user (apigw.yaml:10:5)"), std::string::npos);
}

// The site the NGINX map chooses for "host method path": the first line that matches, as NGINX tries them.
std::string nginx_site(const std::vector<std::pair<std::string, std::string>>& lines, const config::Snapshot& snapshot,
                       const std::string& subject) {
  for (const auto& [name, pattern] : lines) {
    if (std::regex_match(subject, std::regex(pattern))) {
      for (std::size_t i = 0; i < snapshot.config.routes.size(); ++i) {
        if (snapshot.config.routes[i].name == name) return route_site(snapshot.config, i);
      }
    }
  }
  return snapshot.config.edge.default_site;
}

TEST(EdgeNginx, MapAgreesWithTheTrie) {
  const auto snapshot = snapshot_of(kConfig);
  ASSERT_TRUE(snapshot);
  const auto lines = nginx_lines(export_table(*snapshot, kSource, Format::kNginx));
  const std::vector<std::string> hosts{"api.example.com", "x.example.com", "a.eu.example.com", "eu.example.com",
                                       "example.com", "other.test"};
  const std::vector<std::string> methods{"GET", "PUT", "DELETE", "POST"};
  const std::vector<std::string> paths{"/users/me",     "/users/7",          "/users/7/files/a/b", "/users/7/files/",
                                       "/users/",       "/users/me/files/x", "/static/",           "/static",
                                       "/h",            "/v1.0/a+b",         "/v1x0/a+b",          "/",
                                       "/users/7/more", "/static/a/b.css"};
  int checked = 0;
  for (const auto& host : hosts) {
    for (const auto& method : methods) {
      for (const auto& path : paths) {
        const auto match = snapshot->trie->match(host, method, path);
        const std::string expected = match.kind == routing::RouteTrieMatch::Kind::kFound
                                         ? route_site(snapshot->config, match.route)
                                         : snapshot->config.edge.default_site;
        EXPECT_EQ(nginx_site(lines, *snapshot, host + " " + method + " " + path), expected)
            << host << " " << method << " " << path;
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 6 * 4 * 14);
}

}  // namespace
}  // namespace apigw::edge
