// Route tables tested before they ship (`apigw route-test`): how one request would be handled — routed or 404/405,
// the route, the upstream that serves it after the split, the path sent upstream, the edge site — decided by the
// same code as the gateway's (the trie, request-target normalisation, affinity buckets, the shadow's ignore list),
// and case files that state what each request must get. Pure: the caller reads the files.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "apigw/config/snapshot.h"

namespace apigw::edge {

struct RouteRequest {
  std::string method = "GET";
  std::string target = "/";  // as on the request line: "/users/7?x=1", or an absolute http:// URI
  std::string host;          // the Host header; empty: none (only routes for any host can match)
  std::vector<std::pair<std::string, std::string>> headers;
  std::string user;                   // the authenticated user id; empty: anonymous
  std::string client_ip = "127.0.0.1";  // the client's address, as the gateway would take it
};

struct RouteOutcome {
  unsigned status = 0;   // 0: routed; else 400 (a bad target), 404 (no route) or 405 (no route for the method)
  std::string reason;    // a 400's reason; a 405's Allow
  std::string path;      // the path routing matched (dot segments resolved)
  std::optional<std::uint32_t> route;
  std::vector<std::pair<std::string, std::string>> params;
  std::string upstream;       // that serves the request: the route's, or the split's for a moved request
  std::string upstream_path;  // the path (and "?query") sent upstream, after rewrites
  std::string site;           // the edge site; empty without an `edge` section
  // The affinity key (the first of migration.affinity's sources present) and its bucket; none: a random draw.
  std::optional<std::string> affinity;
  std::optional<std::uint32_t> bucket;
  bool beta = false;  // a beta user: always split and shadowed
  bool has_split = false;
  bool moved = false;  // served by the split's upstream (the new side)
  bool has_shadow = false;
  bool shadowed = false;
  std::string shadow_skip;  // why a route with a shadow does not copy this request, if it does not
};

RouteOutcome resolve(const config::Snapshot& snapshot, const RouteRequest& request);

// A multi-line account of how the gateway (and the edge) would handle the request, for `route-test --explain`.
std::string explain(const config::Snapshot& snapshot, const RouteRequest& request, const RouteOutcome& outcome);

// One case of a case file: a request and what it must get (each key as written: route, upstream, site, status,
// path, side, shadow).
struct RouteCase {
  std::string name;  // the case's own name, or its request line
  config::Position at;
  RouteRequest request;
  std::vector<std::pair<std::string, std::string>> expect;
};

struct CaseFile {
  std::vector<RouteCase> cases;
  std::vector<std::string> errors;  // "file:line:column: reason"
};

// A YAML list of cases, or a map whose `cases` is one. Each case: `request: "GET /path?query"` (required),
// `host`, `user`, `client_ip`, `headers` (a map), `name`, and `expect` (a map of the keys above).
CaseFile load_cases(std::string_view yaml, const std::string& file);

// What a case got wrong, one line per expectation it missed (empty when it passed); a line names the route that
// matched instead with its position in the config.
std::vector<std::string> check_case(const config::Snapshot& snapshot, const RouteCase& route_case);

}  // namespace apigw::edge
