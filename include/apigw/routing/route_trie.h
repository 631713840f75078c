// The route table as a radix trie: host, then path pattern, then method. Pure: no I/O, no allocation on match.
// Precedence is static segment over `:param` over `*wildcard`, with backtracking, independent of insertion order.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace apigw::routing {

// One captured path parameter; views point into the matched path.
struct PathParam {
  std::string_view name;
  std::string_view value;
};

inline constexpr std::size_t kMaxParams = 8;  // per pattern; more is a config error

struct RouteTrieMatch {
  enum class Kind { kFound, kNoPath, kNoMethod };
  Kind kind = Kind::kNoPath;
  std::uint32_t route = 0;  // with kFound: the index given to add()
  std::string_view allow;   // with kNoMethod: the Allow header value, e.g. "GET, HEAD"
  std::array<PathParam, kMaxParams> params{};
  std::size_t param_count = 0;
};

struct RouteTrieError {
  std::string message;                  // "conflicts with ...", "':' needs a name", ...
  std::optional<std::uint32_t> other;   // the already added route it conflicts with, if any
};

// The trie's structure as plain data, for exporting it to other routers (apigw edge-export): what match() walks.
struct TrieNodeView {
  struct MethodRoute {
    std::vector<std::string> methods;  // sorted
    std::uint32_t route = 0;
  };
  std::string prefix;                  // static text consumed on the edge into this node; empty for roots, captures
  std::vector<TrieNodeView> statics;   // sorted by prefix; their first characters are distinct
  std::vector<TrieNodeView> param;     // none or one: the `:param` child (one non-empty segment)
  std::vector<TrieNodeView> wildcard;  // none or one: the `*wildcard` child (the rest of the path, maybe empty)
  std::vector<MethodRoute> methods;    // a terminal's routes for explicit methods (which never overlap)
  std::optional<std::uint32_t> any_method;  // a terminal's route for every other method
  bool terminal() const { return !methods.empty() || any_method.has_value(); }
};

struct TrieTableView {
  enum class Kind { kExactHost, kWildcardHost, kAnyHost };
  Kind kind = Kind::kAnyHost;
  std::string host;  // kExactHost: the lower-case name; kWildcardHost: the suffix with its dot (".example.com")
  TrieNodeView root;
};

class RouteTrie {
 public:
  RouteTrie();
  ~RouteTrie();
  RouteTrie(RouteTrie&&) noexcept;
  RouteTrie& operator=(RouteTrie&&) noexcept;

  // Adds a route. `host` is empty (any host), an exact name, or "*.suffix"; `methods` are upper case, empty = any.
  // A pattern is '/'-separated: static segments, `:name` (one segment), `*name` (the rest, last only).
  // Errors: a malformed pattern, or the same pattern shape on the same host with overlapping methods.
  // A route with explicit methods and one with none may share a pattern: the explicit one wins for its methods.
  std::optional<RouteTrieError> add(std::string_view host, std::string_view pattern,
                                    const std::vector<std::string>& methods, std::uint32_t route);

  // Matches a request. `host` is the raw Host header value (case and a ":port" suffix are ignored).
  // Host tables are tried most specific first (exact, then wildcard, then any host); the first table with a
  // path and method match wins; otherwise the first table whose paths matched gives kNoMethod with its Allow.
  RouteTrieMatch match(std::string_view host, std::string_view method, std::string_view path) const;

  // Every host table in the order match() tries them: exact hosts (by name; at most one can match), wildcard hosts
  // (longest suffix first), then the any-host table (always present, maybe empty).
  std::vector<TrieTableView> tables() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace apigw::routing
