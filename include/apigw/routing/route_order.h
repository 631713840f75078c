// The order in which the trie tries routes, as a list: for views such as the admin `/routes`. Pure.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace apigw::routing {

struct RouteKey {
  std::string host;                  // "" (any), "api.example.com", "*.example.com"
  std::string pattern;               // "/users/:id"
  std::vector<std::string> methods;  // empty = any
};

// Indexes of `routes` in match precedence: exact hosts, then wildcard hosts (longer suffix first), then any host;
// within a host, segment by segment static before `:param` before `*rest`, static segments alphabetically;
// routes with explicit methods before a route without; ties keep their order.
std::vector<std::uint32_t> match_order(const std::vector<RouteKey>& routes);

}  // namespace apigw::routing
