// RouteTrie: one radix trie over path patterns per host table. add() validates and builds once at config load;
// match() runs on every request and must never allocate.
#include "apigw/routing/route_trie.h"

#include <algorithm>
#include <cassert>
#include <functional>
#include <unordered_map>
#include <utility>

#include "apigw/http/text.h"

namespace apigw::routing {
namespace {

// DNS names are at most 253 characters plus a trailing dot; longer Host values can only hit the any-host table.
constexpr std::size_t kMaxHostLength = 255;
using HostBuffer = std::array<char, kMaxHostLength>;

// ---- pattern parsing -------------------------------------------------------------------------------------------

// One piece of a pattern: static text (may span several segments), a `:param` or a `*wildcard`.
struct PatternToken {
  enum class Kind { kStatic, kParam, kWildcard };
  Kind kind;
  std::string_view text;  // the static text, or the capture's name
};

struct ParsedPattern {
  std::vector<PatternToken> tokens;
  std::vector<std::string> param_names;  // in capture order
};

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// Checks one '/'-delimited segment; `last` allows the empty segment that a trailing slash leaves.
std::optional<std::string> check_segment(std::string_view segment, bool last) {
  if (segment.empty()) {
    return last ? std::nullopt : std::optional<std::string>("empty segment ('//')");
  }
  if (segment == "." || segment == "..") return "'" + std::string(segment) + "' segment";
  const auto marker = segment.find_first_of(":*", 1);
  if (marker != std::string_view::npos) {
    return "'" + std::string(1, segment[marker]) + "' must start a segment (in '" + std::string(segment) + "')";
  }
  if (segment[0] != ':' && segment[0] != '*') return std::nullopt;
  const std::string_view name = segment.substr(1);
  if (name.empty()) return "'" + std::string(1, segment[0]) + "' needs a name";
  if (!std::all_of(name.begin(), name.end(), is_name_char)) {
    return "invalid name '" + std::string(name) + "': use only [A-Za-z0-9_]";
  }
  if (segment[0] == '*' && !last) return "'" + std::string(segment) + "' must be the last segment";
  return std::nullopt;
}

std::optional<std::string> parse_pattern(std::string_view pattern, ParsedPattern& out) {
  if (pattern.empty() || pattern[0] != '/') return "must start with '/'";
  if (pattern.find_first_of("?#") != std::string_view::npos) return "must not contain '?' or '#'";
  std::size_t static_begin = 0;
  std::size_t segment_begin = 1;
  for (;;) {
    const std::size_t slash = pattern.find('/', segment_begin);
    const std::size_t segment_end = slash == std::string_view::npos ? pattern.size() : slash;
    const bool last = segment_end == pattern.size();
    const std::string_view segment = pattern.substr(segment_begin, segment_end - segment_begin);
    if (auto error = check_segment(segment, last)) return error;
    if (!segment.empty() && (segment[0] == ':' || segment[0] == '*')) {
      const std::string_view name = segment.substr(1);
      if (std::find(out.param_names.begin(), out.param_names.end(), name) != out.param_names.end()) {
        return "duplicate parameter name '" + std::string(name) + "'";
      }
      if (out.param_names.size() == kMaxParams) {
        return "more than " + std::to_string(kMaxParams) + " parameters";
      }
      out.param_names.emplace_back(name);
      out.tokens.push_back({PatternToken::Kind::kStatic, pattern.substr(static_begin, segment_begin - static_begin)});
      const auto kind = segment[0] == ':' ? PatternToken::Kind::kParam : PatternToken::Kind::kWildcard;
      out.tokens.push_back({kind, name});
      static_begin = segment_end;
    }
    if (last) break;
    segment_begin = segment_end + 1;
  }
  if (static_begin < pattern.size()) {
    out.tokens.push_back({PatternToken::Kind::kStatic, pattern.substr(static_begin)});
  }
  return std::nullopt;
}

// RFC 9110 token characters, minus lower case: methods are case-sensitive and configured in upper case.
bool is_method_char(char c) { return http::is_tchar(c) && !(c >= 'a' && c <= 'z'); }

std::optional<std::string> check_methods(const std::vector<std::string>& methods) {
  for (const auto& method : methods) {
    if (method.empty() || !std::all_of(method.begin(), method.end(), is_method_char)) {
      return "invalid method '" + method + "': expected an upper-case HTTP token";
    }
  }
  return std::nullopt;
}

// ---- host names -----------------------------------------------------------------------------------------------

// Drops a ":port" suffix; a bracketed IPv6 literal keeps its brackets, a bare one (several colons) is left whole.
std::string_view strip_port(std::string_view host) {
  if (!host.empty() && host[0] == '[') {
    const auto close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(0, close + 1);
  }
  const auto colon = host.find(':');
  if (colon == std::string_view::npos || host.find(':', colon + 1) != std::string_view::npos) return host;
  return host.substr(0, colon);
}

// The canonical host (lower case, no port, no trailing dot), written into `buffer` so that match() needn't allocate.
std::optional<std::string_view> normalize_host(std::string_view raw, HostBuffer& buffer) {
  std::string_view host = strip_port(raw);
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.size() > buffer.size()) return std::nullopt;
  std::transform(host.begin(), host.end(), buffer.begin(), http::ascii_lower);
  return std::string_view(buffer.data(), host.size());
}

std::optional<std::string> check_config_host(std::string_view host) {
  if (host.size() > kMaxHostLength) return "host is longer than " + std::to_string(kMaxHostLength) + " characters";
  const auto star = host.find('*');
  if (star != std::string_view::npos &&
      (star != 0 || host.size() < 3 || host[1] != '.' || host.find('*', 1) != std::string_view::npos)) {
    return "host '" + std::string(host) + "': '*' is only allowed as a leading '*.' label";
  }
  if (strip_port(host) != host) return "host '" + std::string(host) + "' must not carry a port";
  if (host == ".") return "host '.' names no host";
  return std::nullopt;
}

// Transparent hashing lets match() look exact hosts up by string_view without building a std::string.
struct HostHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view host) const { return std::hash<std::string_view>{}(host); }
};

// ---- the trie -------------------------------------------------------------------------------------------------

struct RouteEntry {
  std::uint32_t route = 0;
  std::vector<std::string> methods;      // sorted, unique; empty = any method
  std::vector<std::string> param_names;  // this route's own names; routes sharing a terminal may differ
};

// The routes of one pattern shape. Entries never overlap in methods; add() refuses overlaps.
struct Terminal {
  std::optional<RouteEntry> any_method;
  std::vector<RouteEntry> explicit_methods;
  std::string allow;  // every explicit method, sorted and joined by ", "

  const RouteEntry* select(std::string_view method) const {
    for (const auto& entry : explicit_methods) {
      if (std::binary_search(entry.methods.begin(), entry.methods.end(), method)) return &entry;
    }
    return any_method ? &*any_method : nullptr;
  }
};

struct Node {
  std::string prefix;  // static text consumed on the edge into this node; empty for roots and captures
  std::vector<std::unique_ptr<Node>> static_children;  // first characters of their prefixes are distinct
  std::unique_ptr<Node> param_child;
  std::unique_ptr<Node> wildcard_child;
  std::unique_ptr<Terminal> terminal;

  Node* find_static(char first) const {
    for (const auto& child : static_children) {
      if (child->prefix.front() == first) return child.get();
    }
    return nullptr;
  }
};

// Cuts `node`'s edge after `length` characters, moving everything below into a new child.
void split_edge(Node& node, std::size_t length) {
  auto tail = std::make_unique<Node>();
  tail->prefix = node.prefix.substr(length);
  tail->static_children = std::move(node.static_children);
  tail->param_child = std::move(node.param_child);
  tail->wildcard_child = std::move(node.wildcard_child);
  tail->terminal = std::move(node.terminal);
  node.prefix.resize(length);
  node.static_children.clear();
  node.static_children.push_back(std::move(tail));
}

Node& insert_static(Node& start, std::string_view text) {
  Node* node = &start;
  while (!text.empty()) {
    Node* child = node->find_static(text.front());
    if (child == nullptr) {
      node->static_children.push_back(std::make_unique<Node>());
      node->static_children.back()->prefix = std::string(text);
      return *node->static_children.back();
    }
    const auto mismatch = std::mismatch(child->prefix.begin(), child->prefix.end(), text.begin(), text.end());
    const auto common = static_cast<std::size_t>(mismatch.first - child->prefix.begin());
    if (common < child->prefix.size()) split_edge(*child, common);
    text.remove_prefix(common);
    node = child;
  }
  return *node;
}

Node& insert_pattern(Node& root, const ParsedPattern& pattern) {
  Node* node = &root;
  for (const auto& token : pattern.tokens) {
    if (token.kind == PatternToken::Kind::kStatic) {
      node = &insert_static(*node, token.text);
      continue;
    }
    auto& child = token.kind == PatternToken::Kind::kParam ? node->param_child : node->wildcard_child;
    if (!child) child = std::make_unique<Node>();
    node = child.get();
  }
  return *node;
}

std::string join_allow(const Terminal& terminal) {
  std::vector<std::string_view> methods;
  for (const auto& entry : terminal.explicit_methods) {
    methods.insert(methods.end(), entry.methods.begin(), entry.methods.end());
  }
  std::sort(methods.begin(), methods.end());
  std::string allow;
  for (const auto method : methods) {
    if (!allow.empty()) allow += ", ";
    allow += method;
  }
  return allow;
}

std::optional<RouteTrieError> add_entry(Terminal& terminal, RouteEntry entry, std::string_view pattern) {
  const auto conflict = [&](const RouteEntry& other, const std::string& why) {
    return RouteTrieError{"pattern '" + std::string(pattern) + "' conflicts with route #" +
                              std::to_string(other.route) + " (" + why + ")",
                          other.route};
  };
  if (entry.methods.empty()) {
    if (terminal.any_method) return conflict(*terminal.any_method, "same pattern shape, both for any method");
    terminal.any_method = std::move(entry);
    return std::nullopt;
  }
  for (const auto& other : terminal.explicit_methods) {
    for (const auto& method : entry.methods) {
      if (std::binary_search(other.methods.begin(), other.methods.end(), method)) {
        return conflict(other, "same pattern shape, both for " + method);
      }
    }
  }
  terminal.explicit_methods.push_back(std::move(entry));
  terminal.allow = join_allow(terminal);
  return std::nullopt;
}

// ---- matching -------------------------------------------------------------------------------------------------

// A depth-first walk of one table; static beats param beats wildcard, and a dead end backtracks to the next.
// A path match whose method fails keeps the walk going, so a less specific route can still serve the method.
class PathSearch {
 public:
  explicit PathSearch(std::string_view method) : method_(method) {}

  // `node`'s own prefix is already consumed; `depth` is the number of captures made so far.
  bool visit(const Node& node, std::string_view rest, std::size_t depth) {
    if (rest.empty() && node.terminal && accept(*node.terminal, depth)) return true;
    if (!rest.empty()) {
      const Node* child = node.find_static(rest.front());
      if (child != nullptr && rest.starts_with(child->prefix) &&
          visit(*child, rest.substr(child->prefix.size()), depth)) {
        return true;
      }
      const std::string_view segment = rest.substr(0, rest.find('/'));
      if (node.param_child && !segment.empty()) {
        assert(depth < kMaxParams);  // add() caps captures per pattern
        values_[depth] = segment;
        if (visit(*node.param_child, rest.substr(segment.size()), depth + 1)) return true;
      }
    }
    if (node.wildcard_child && node.wildcard_child->terminal) {
      assert(depth < kMaxParams);
      values_[depth] = rest;
      if (accept(*node.wildcard_child->terminal, depth + 1)) return true;
    }
    return false;
  }

  const RouteEntry* found() const { return found_; }
  const Terminal* first_path_match() const { return first_path_match_; }

  void fill(RouteTrieMatch& match) const {
    match.kind = RouteTrieMatch::Kind::kFound;
    match.route = found_->route;
    match.param_count = found_depth_;
    for (std::size_t i = 0; i < found_depth_; ++i) match.params[i] = {found_->param_names[i], values_[i]};
  }

 private:
  bool accept(const Terminal& terminal, std::size_t depth) {
    if (const RouteEntry* entry = terminal.select(method_)) {
      found_ = entry;
      found_depth_ = depth;
      return true;
    }
    if (first_path_match_ == nullptr) first_path_match_ = &terminal;
    return false;
  }

  std::string_view method_;
  std::array<std::string_view, kMaxParams> values_{};
  const RouteEntry* found_ = nullptr;
  std::size_t found_depth_ = 0;
  const Terminal* first_path_match_ = nullptr;
};

TrieNodeView view_of(const Node& node) {
  TrieNodeView view;
  view.prefix = node.prefix;
  for (const auto& child : node.static_children) view.statics.push_back(view_of(*child));
  std::sort(view.statics.begin(), view.statics.end(),
            [](const TrieNodeView& a, const TrieNodeView& b) { return a.prefix < b.prefix; });
  if (node.param_child) view.param.push_back(view_of(*node.param_child));
  if (node.wildcard_child) view.wildcard.push_back(view_of(*node.wildcard_child));
  if (node.terminal) {
    for (const auto& entry : node.terminal->explicit_methods) view.methods.push_back({entry.methods, entry.route});
    if (node.terminal->any_method) view.any_method = node.terminal->any_method->route;
  }
  return view;
}

struct WildcardHost {
  std::string suffix;  // ".example.com" for "*.example.com"
  Node root;
};

}  // namespace

struct RouteTrie::Impl {
  std::unordered_map<std::string, Node, HostHash, std::equal_to<>> exact_hosts_;
  std::vector<WildcardHost> wildcard_hosts_;  // longest suffix first: the most specific wins
  Node any_host_;

  Node& table_for(std::string_view host) {
    if (host.empty()) return any_host_;
    if (!host.starts_with("*.")) return exact_hosts_[std::string(host)];
    const std::string_view suffix = host.substr(1);
    const auto same = std::find_if(wildcard_hosts_.begin(), wildcard_hosts_.end(),
                                   [&](const WildcardHost& table) { return table.suffix == suffix; });
    if (same != wildcard_hosts_.end()) return same->root;
    const auto shorter = std::find_if(wildcard_hosts_.begin(), wildcard_hosts_.end(),
                                      [&](const WildcardHost& table) { return table.suffix.size() < suffix.size(); });
    return wildcard_hosts_.insert(shorter, WildcardHost{std::string(suffix), Node{}})->root;
  }
};

RouteTrie::RouteTrie() : impl_(std::make_unique<Impl>()) {}
RouteTrie::~RouteTrie() = default;
RouteTrie::RouteTrie(RouteTrie&&) noexcept = default;
RouteTrie& RouteTrie::operator=(RouteTrie&&) noexcept = default;

std::optional<RouteTrieError> RouteTrie::add(std::string_view host, std::string_view pattern,
                                             const std::vector<std::string>& methods, std::uint32_t route) {
  ParsedPattern parsed;
  if (auto error = parse_pattern(pattern, parsed)) {
    return RouteTrieError{"pattern '" + std::string(pattern) + "': " + *error, std::nullopt};
  }
  if (auto error = check_methods(methods)) return RouteTrieError{std::move(*error), std::nullopt};
  if (auto error = check_config_host(host)) return RouteTrieError{std::move(*error), std::nullopt};

  HostBuffer buffer;
  const std::string_view host_key = *normalize_host(host, buffer);  // length was checked above
  Node& node = insert_pattern(impl_->table_for(host_key), parsed);
  if (!node.terminal) node.terminal = std::make_unique<Terminal>();

  RouteEntry entry{route, methods, std::move(parsed.param_names)};
  std::sort(entry.methods.begin(), entry.methods.end());
  entry.methods.erase(std::unique(entry.methods.begin(), entry.methods.end()), entry.methods.end());
  return add_entry(*node.terminal, std::move(entry), pattern);
}

RouteTrieMatch RouteTrie::match(std::string_view host, std::string_view method, std::string_view path) const {
  RouteTrieMatch result;
  const Terminal* no_method = nullptr;
  const auto try_table = [&](const Node& root) {
    PathSearch search(method);
    if (search.visit(root, path, 0)) {
      search.fill(result);
      return true;
    }
    if (no_method == nullptr) no_method = search.first_path_match();
    return false;
  };

  HostBuffer buffer;
  if (const auto key = normalize_host(host, buffer)) {
    const auto exact = impl_->exact_hosts_.find(*key);
    if (exact != impl_->exact_hosts_.end() && try_table(exact->second)) return result;
    for (const auto& table : impl_->wildcard_hosts_) {
      if (key->size() > table.suffix.size() && key->ends_with(table.suffix) && try_table(table.root)) return result;
    }
  }
  if (try_table(impl_->any_host_)) return result;
  if (no_method != nullptr) {
    result.kind = RouteTrieMatch::Kind::kNoMethod;
    result.allow = no_method->allow;
  }
  return result;
}

std::vector<TrieTableView> RouteTrie::tables() const {
  std::vector<TrieTableView> tables;
  for (const auto& [host, root] : impl_->exact_hosts_) {
    tables.push_back({TrieTableView::Kind::kExactHost, host, view_of(root)});
  }
  std::sort(tables.begin(), tables.end(),
            [](const TrieTableView& a, const TrieTableView& b) { return a.host < b.host; });
  for (const auto& table : impl_->wildcard_hosts_) {
    tables.push_back({TrieTableView::Kind::kWildcardHost, table.suffix, view_of(table.root)});
  }
  tables.push_back({TrieTableView::Kind::kAnyHost, "", view_of(impl_->any_host_)});
  return tables;
}

}  // namespace apigw::routing
