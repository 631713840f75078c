// Route-table checks (see route_check.h).
#include "apigw/edge/route_check.h"

#include <boost/beast/http/fields.hpp>
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>

#include "apigw/edge/edge_export.h"
#include "apigw/http/request_target.h"
#include "apigw/migration/affinity.h"
#include "apigw/migration/shadow_policy.h"
#include "edge_table.h"

namespace apigw::edge {
namespace {

constexpr std::array<std::string_view, 7> kCaseKeys{"name", "request", "host", "user", "client_ip", "headers",
                                                    "expect"};
constexpr std::array<std::string_view, 7> kExpectKeys{"route", "upstream", "site", "status", "path", "side",
                                                      "shadow"};

const std::string& upstream_name(const config::Snapshot& snapshot, std::uint32_t index) {
  return snapshot.upstreams[index].config.name;
}

std::string route_text(const config::Snapshot& snapshot, std::uint32_t route) {
  const config::RouteConfig& config = snapshot.config.routes[route];
  return fmt::format("{} ({})", config.name, position_label(snapshot.config, config.position));
}

// What the request got, for "expected X, got Y": the route that matched (with its position), or the status.
std::string got_text(const config::Snapshot& snapshot, const RouteOutcome& outcome) {
  if (outcome.route) return "route " + route_text(snapshot, *outcome.route);
  if (outcome.status == 404) return "404 (no route matches)";
  if (outcome.status == 405) return "405 (allowed: " + outcome.reason + ")";
  return fmt::format("400 ({})", outcome.reason);
}

std::string request_line(const RouteRequest& request) {
  std::string line = request.method + " " + request.target;
  if (!request.host.empty()) line += " (host " + request.host + ")";
  if (!request.user.empty()) line += " (user " + request.user + ")";
  return line;
}

std::string duration_text(std::chrono::seconds seconds) { return fmt::format("{}s", seconds.count()); }

// Error collection for a case file, with 1-based positions.
class CaseReader {
 public:
  CaseReader(std::string file, CaseFile& out) : file_(std::move(file)), out_(out) {}

  config::Position position(const YAML::Node& node) const {
    const YAML::Mark mark = node.Mark();
    return {file_, mark.line + 1, mark.column + 1};
  }

  void error(const YAML::Node& node, const std::string& message) {
    const config::Position at = position(node);
    out_.errors.push_back(fmt::format("{}:{}:{}: {}", at.file, at.line, at.column, message));
  }

  std::optional<std::string> scalar(const YAML::Node& node, std::string_view label) {
    if (node.IsScalar()) return node.Scalar();
    error(node, std::string(label) + ": expected a value");
    return std::nullopt;
  }

  void read_case(const YAML::Node& node, std::size_t index) {
    const std::string label = fmt::format("case {}", index + 1);
    if (!node.IsMap()) return error(node, label + ": expected a map with request and expect");
    RouteCase route_case;
    route_case.at = position(node);
    bool has_request = false;
    bool ok = true;
    for (const auto& entry : node) {
      const std::string key = entry.first.Scalar();
      const YAML::Node& value = entry.second;
      if (std::find(kCaseKeys.begin(), kCaseKeys.end(), key) == kCaseKeys.end()) {
        error(entry.first, fmt::format("{}: unknown key '{}' (known: name, request, host, user, client_ip, "
                                       "headers, expect)", label, key));
        ok = false;
      } else if (key == "headers") {
        ok = read_headers(value, label, route_case.request) && ok;
      } else if (key == "expect") {
        ok = read_expect(value, label, route_case) && ok;
      } else if (auto text = scalar(value, label + " " + key)) {
        if (key == "request") {
          has_request = true;
          ok = read_request_line(value, *text, label, route_case.request) && ok;
        } else if (key == "name") {
          route_case.name = *text;
        } else if (key == "host") {
          route_case.request.host = *text;
        } else if (key == "user") {
          route_case.request.user = *text;
        } else {
          route_case.request.client_ip = *text;
          if (http::parse_ip(*text).size == 0) {
            error(value, label + " client_ip: '" + *text + "' is not an IPv4 or IPv6 address");
            ok = false;
          }
        }
      } else {
        ok = false;
      }
    }
    if (!has_request) {
      error(node, label + ": needs a request (\"GET /path\")");
      ok = false;
    }
    if (route_case.expect.empty() && ok) {
      error(node, label + ": needs an expect (route, upstream, site, status, path, side or shadow)");
      ok = false;
    }
    if (route_case.name.empty()) route_case.name = request_line(route_case.request);
    if (ok) out_.cases.push_back(std::move(route_case));
  }

 private:
  bool read_request_line(const YAML::Node& node, const std::string& text, const std::string& label,
                         RouteRequest& request) {
    const auto space = text.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == text.size() ||
        text.find(' ', space + 1) != std::string::npos) {
      error(node, label + " request: expected \"METHOD /path[?query]\", got '" + text + "'");
      return false;
    }
    request.method = text.substr(0, space);
    request.target = text.substr(space + 1);
    return true;
  }

  bool read_headers(const YAML::Node& node, const std::string& label, RouteRequest& request) {
    if (!node.IsMap()) {
      error(node, label + " headers: expected a map of header names to values");
      return false;
    }
    for (const auto& entry : node) {
      const auto value = scalar(entry.second, label + " headers." + entry.first.Scalar());
      if (!value) return false;
      request.headers.emplace_back(entry.first.Scalar(), *value);
    }
    return true;
  }

  bool read_expect(const YAML::Node& node, const std::string& label, RouteCase& route_case) {
    if (!node.IsMap()) {
      error(node, label + " expect: expected a map (route, upstream, site, status, path, side, shadow)");
      return false;
    }
    bool ok = true;
    for (const auto& entry : node) {
      const std::string key = entry.first.Scalar();
      if (std::find(kExpectKeys.begin(), kExpectKeys.end(), key) == kExpectKeys.end()) {
        error(entry.first, fmt::format("{} expect: unknown key '{}' (known: route, upstream, site, status, path, "
                                       "side, shadow)", label, key));
        ok = false;
        continue;
      }
      const auto value = scalar(entry.second, label + " expect." + key);
      if (!value) {
        ok = false;
        continue;
      }
      const bool valid = key == "status"   ? *value == "404" || *value == "405" || *value == "400"
                         : key == "side"   ? *value == "old" || *value == "new"
                         : key == "shadow" ? *value == "true" || *value == "false"
                                           : true;
      if (!valid) {
        const std::string_view allowed = key == "status" ? "404, 405 or 400 (a request that is routed expects a "
                                                           "route instead)"
                                          : key == "side" ? "old or new"
                                                          : "true or false";
        error(entry.second, fmt::format("{} expect.{}: '{}' is not one of {}", label, key, *value, allowed));
        ok = false;
        continue;
      }
      route_case.expect.emplace_back(key, *value);
    }
    return ok;
  }

  std::string file_;
  CaseFile& out_;
};

}  // namespace

RouteOutcome resolve(const config::Snapshot& snapshot, const RouteRequest& request) {
  RouteOutcome outcome;
  http::RequestTarget target;
  std::string storage;
  if (const std::string_view why = http::parse_request_target(request.target, target, storage); !why.empty()) {
    outcome.status = 400;
    outcome.reason = std::string(why);
    if (snapshot.config.edge.enabled) outcome.site = snapshot.config.edge.default_site;
    return outcome;
  }
  outcome.path = std::string(target.path);
  const std::string_view host = target.authority.empty() ? std::string_view(request.host) : target.authority;
  const routing::RouteTrieMatch match = snapshot.trie->match(host, request.method, target.path);
  if (snapshot.config.edge.enabled) outcome.site = snapshot.config.edge.default_site;
  if (match.kind != routing::RouteTrieMatch::Kind::kFound) {
    outcome.status = match.kind == routing::RouteTrieMatch::Kind::kNoPath ? 404 : 405;
    outcome.reason = std::string(match.allow);
    return outcome;
  }
  outcome.route = match.route;
  for (std::size_t i = 0; i < match.param_count; ++i) {
    outcome.params.emplace_back(std::string(match.params[i].name), std::string(match.params[i].value));
  }
  const config::Route& route = snapshot.routes[match.route];
  if (snapshot.config.edge.enabled) outcome.site = route_site(snapshot.config, match.route);
  outcome.upstream = upstream_name(snapshot, route.upstream);
  outcome.upstream_path = std::string(http::strip_path_prefix(target.path, route.strip_prefix));
  if (target.has_query) outcome.upstream_path += "?" + std::string(target.query);

  boost::beast::http::fields headers;
  for (const auto& [name, value] : request.headers) headers.insert(name, value);
  const config::MigrationConfig& migration = snapshot.config.migration;
  outcome.affinity = migration::affinity_key(migration.affinity, request.user, headers, request.client_ip);
  if (outcome.affinity) outcome.bucket = migration::bucket_of(*outcome.affinity, migration.buckets);
  outcome.beta = !request.user.empty() && snapshot.beta_users.contains(request.user);
  const auto in_share = [&](std::uint32_t threshold) {
    return outcome.beta || (outcome.bucket && migration::in_share(*outcome.bucket, threshold));
  };
  if (route.split) {
    outcome.has_split = true;
    outcome.moved = in_share(route.split->threshold);
    if (outcome.moved) outcome.upstream = upstream_name(snapshot, route.split->upstream);
  }
  if (route.shadow) {
    outcome.has_shadow = true;
    if (headers.find(migration.shadow.header) != headers.end()) {
      outcome.shadow_skip = "it carries " + migration.shadow.header + " (a shadow copy is never copied)";
    } else if (!in_share(route.shadow->threshold)) {
      outcome.shadow_skip = outcome.bucket ? "its bucket is outside the shadow's share" : "no affinity key";
    } else if (migration::shadow_ignored(snapshot.shadow_ignore, request.method, target.path)) {
      outcome.shadow_skip = "it matches migration.shadow_ignore";
    } else {
      outcome.shadowed = true;
    }
  }
  return outcome;
}

std::string explain(const config::Snapshot& snapshot, const RouteRequest& request, const RouteOutcome& outcome) {
  const config::Config& config = snapshot.config;
  std::string out = request_line(request) + "\n";
  const auto line = [&](std::string_view what, const std::string& text) {
    out += fmt::format("  {:<10}{}\n", what, text);
  };
  const auto site_text = [&](const std::string& site) {
    const config::EdgeSite* found = config.edge.find(site);
    return found ? fmt::format("{} ({})", site, found->origin) : site;
  };
  if (!outcome.route) {
    if (outcome.status == 400) {
      line("status", "400: " + outcome.reason + "; never forwarded");
    } else if (outcome.status == 404) {
      line("status", fmt::format("404: no route matches {} {}", request.method, outcome.path));
    } else {
      line("status", fmt::format("405: no route for {} on {}; Allow: {}", request.method, outcome.path,
                                 outcome.reason));
    }
    if (!outcome.site.empty()) line("site", site_text(outcome.site) + ", the default site, at the edge");
    return out;
  }
  const config::RouteConfig& route = config.routes[*outcome.route];
  const config::Route& data = snapshot.routes[*outcome.route];
  std::string methods;
  for (const auto& method : route.match.methods) methods += (methods.empty() ? "" : ",") + method;
  line("route", fmt::format("{} ({}): {}{}{}", route.name, position_label(config, route.position),
                            route.match.host.empty() ? "" : route.match.host + " ", route.match.path,
                            methods.empty() ? "" : " [" + methods + "]"));
  if (!outcome.params.empty()) {
    std::string params;
    for (const auto& [name, value] : outcome.params) params += (params.empty() ? "" : " ") + name + "=" + value;
    line("params", params);
  }
  line("upstream", outcome.upstream + (outcome.moved ? " (the split's: new side)" : ""));
  line("path", outcome.upstream_path + " (sent upstream" +
                   (route.strip_prefix.empty() ? ")" : ", after strip_prefix " + route.strip_prefix + ")"));
  if (!outcome.site.empty()) line("site", site_text(outcome.site));
  line("auth", data.auth == config::RouteAuth::kRequired   ? "required"
               : data.auth == config::RouteAuth::kOptional ? "optional"
                                                           : "none");
  if (data.cache.enabled) {
    std::string cache = fmt::format("GET/HEAD cached, ttl {}, {}", duration_text(data.cache.ttl),
                                    data.cache.scope == config::CacheScope::kUser ? "per user" : "shared");
    for (const auto& tag : data.cache.tags) cache += ", tag " + tag;
    line("cache", cache);
  }
  const std::string key = outcome.affinity ? fmt::format("affinity key '{}' → bucket {} of {}", *outcome.affinity,
                                                         *outcome.bucket, config.migration.buckets)
                                           : std::string("no affinity key: a random bucket per request");
  if (outcome.has_split) {
    const config::MigrationTarget* target = config::effective_target(route.split, config.migration.split);
    line("split", fmt::format("{}% of buckets to {}: {}{} → {} side", target ? target->percent : "?",
                              upstream_name(snapshot, data.split->upstream), outcome.beta ? "beta user, " : "", key,
                              outcome.moved ? "new" : "old"));
  }
  if (outcome.has_shadow) {
    const config::MigrationTarget* target = config::effective_target(route.shadow, config.migration.shadow_target);
    line("shadow", fmt::format("{}% copied to {}: {}", target ? target->percent : "?",
                               upstream_name(snapshot, data.shadow->upstream),
                               outcome.shadowed ? "copied" : "not copied, " + outcome.shadow_skip));
  }
  return out;
}

CaseFile load_cases(std::string_view yaml, const std::string& file) {
  CaseFile out;
  CaseReader reader(file, out);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& error) {
    out.errors.push_back(fmt::format("{}:{}:{}: {}", file, error.mark.line + 1, error.mark.column + 1, error.msg));
    return out;
  }
  YAML::Node list = root;
  if (root.IsMap() && root["cases"]) list = root["cases"];
  if (!list.IsSequence()) {
    out.errors.push_back(file + ": expected a list of cases (or a map whose `cases` is one)");
    return out;
  }
  for (std::size_t i = 0; i < list.size(); ++i) reader.read_case(list[i], i);
  if (list.size() == 0) out.errors.push_back(file + ": no cases");
  return out;
}

std::vector<std::string> check_case(const config::Snapshot& snapshot, const RouteCase& route_case) {
  const RouteOutcome outcome = resolve(snapshot, route_case.request);
  std::vector<std::string> failures;
  const auto fail = [&](const std::string& key, const std::string& expected, const std::string& got) {
    failures.push_back(fmt::format("{}: expected {}, got {}", key, expected, got));
  };
  for (const auto& [key, expected] : route_case.expect) {
    if (key == "status") {
      if (outcome.route || std::to_string(outcome.status) != expected) {
        fail(key, expected, got_text(snapshot, outcome));
      }
    } else if (key == "route") {
      if (!outcome.route || snapshot.config.routes[*outcome.route].name != expected) {
        fail(key, expected, got_text(snapshot, outcome));
      }
    } else if (!outcome.route && key != "site") {
      fail(key, expected, got_text(snapshot, outcome));
    } else if (key == "upstream") {
      if (outcome.upstream != expected) fail(key, expected, outcome.upstream + " by " + got_text(snapshot, outcome));
    } else if (key == "site") {
      if (!snapshot.config.edge.enabled) {
        fail(key, expected, "no edge section in the config");
      } else if (outcome.site != expected) {
        fail(key, expected, outcome.site + (outcome.route ? " by " : " for ") + got_text(snapshot, outcome));
      }
    } else if (key == "path") {
      if (outcome.upstream_path != expected) {
        fail(key, expected, outcome.upstream_path + " by " + got_text(snapshot, outcome));
      }
    } else if (key == "side") {
      if (!outcome.has_split) {
        fail(key, expected, "no split on " + got_text(snapshot, outcome));
      } else if (!outcome.beta && !outcome.bucket) {
        fail(key, expected, "no affinity key (give user, client_ip or the affinity header): the side is drawn at "
                            "random");
      } else if ((outcome.moved ? "new" : "old") != expected) {
        fail(key, expected,
             fmt::format("{} (bucket {}, split at {} buckets) by {}", outcome.moved ? "new" : "old",
                         outcome.bucket ? std::to_string(*outcome.bucket) : "beta",
                         snapshot.routes[*outcome.route].split->threshold, got_text(snapshot, outcome)));
      }
    } else if (key == "shadow") {
      const bool expected_copy = expected == "true";
      if (outcome.shadowed != expected_copy) {
        fail(key, expected,
             fmt::format("{}{} by {}", outcome.shadowed ? "true" : "false",
                         outcome.has_shadow ? (outcome.shadowed ? "" : " (" + outcome.shadow_skip + ")")
                                            : " (no shadow on the route)",
                         got_text(snapshot, outcome)));
      }
    }
  }
  return failures;
}

}  // namespace apigw::edge
