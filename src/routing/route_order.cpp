// Route precedence as a sort (see route_order.h).
#include "apigw/routing/route_order.h"

#include <algorithm>
#include <numeric>
#include <string_view>
#include <tuple>

namespace apigw::routing {
namespace {

int host_rank(const std::string& host) { return host.empty() ? 2 : host.starts_with("*.") ? 1 : 0; }

std::vector<std::string_view> segments(std::string_view pattern) {
  std::vector<std::string_view> out;
  std::size_t at = 0;
  while (at < pattern.size()) {
    const std::size_t start = pattern[at] == '/' ? at + 1 : at;
    std::size_t end = pattern.find('/', start);
    if (end == std::string_view::npos) end = pattern.size();
    out.push_back(pattern.substr(start, end - start));
    at = end;
  }
  return out;
}

int segment_rank(std::string_view segment) {
  if (segment.starts_with(':')) return 1;
  if (segment.starts_with('*')) return 2;
  return 0;
}

// <0 when a is tried before b.
int compare_patterns(std::string_view a, std::string_view b) {
  const auto left = segments(a);
  const auto right = segments(b);
  for (std::size_t i = 0; i < std::min(left.size(), right.size()); ++i) {
    const int ra = segment_rank(left[i]);
    const int rb = segment_rank(right[i]);
    if (ra != rb) return ra - rb;
    if (ra == 0 && left[i] != right[i]) return left[i] < right[i] ? -1 : 1;
  }
  if (left.size() != right.size()) return left.size() < right.size() ? -1 : 1;
  return 0;
}

}  // namespace

std::vector<std::uint32_t> match_order(const std::vector<RouteKey>& routes) {
  std::vector<std::uint32_t> order(routes.size());
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(), [&](std::uint32_t x, std::uint32_t y) {
    const RouteKey& a = routes[x];
    const RouteKey& b = routes[y];
    if (host_rank(a.host) != host_rank(b.host)) return host_rank(a.host) < host_rank(b.host);
    if (a.host != b.host) {
      if (a.host.size() != b.host.size()) return a.host.size() > b.host.size();
      return a.host < b.host;
    }
    if (const int c = compare_patterns(a.pattern, b.pattern); c != 0) return c < 0;
    return !a.methods.empty() && b.methods.empty();
  });
  return order;
}

}  // namespace apigw::routing
