// Cluster slot maps and redirections (see cluster_map.h).
#include "apigw/redis/cluster_map.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace apigw::redis {
namespace {

std::optional<std::uint16_t> to_port(std::string_view text) {
  unsigned value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value == 0 || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

// "host:port" or "[v6]:port" (and the bare "v6:port" Redis itself writes).
std::optional<NodeAddress> parse_node(std::string_view text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const auto port = to_port(text.substr(colon + 1));
  if (!port) return std::nullopt;
  return NodeAddress{std::string(host), *port};
}

}  // namespace

std::string NodeAddress::text() const {
  return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

std::optional<ClusterMap> ClusterMap::from_slots(const Reply& reply, std::string& why) {
  if (reply.type != Reply::Type::kArray || reply.elements.empty()) {
    why = reply.type == Reply::Type::kError ? "CLUSTER SLOTS failed: " + reply.text : "CLUSTER SLOTS: no slot ranges";
    return std::nullopt;
  }
  ClusterMap map;
  std::vector<bool> covered(kClusterSlots, false);
  for (const Reply& range : reply.elements) {
    const bool shaped = range.type == Reply::Type::kArray && range.elements.size() >= 3 &&
                        range.elements[0].type == Reply::Type::kInteger &&
                        range.elements[1].type == Reply::Type::kInteger &&
                        range.elements[2].type == Reply::Type::kArray && range.elements[2].elements.size() >= 2 &&
                        range.elements[2].elements[0].type == Reply::Type::kString &&
                        range.elements[2].elements[1].type == Reply::Type::kInteger;
    if (!shaped) {
      why = "CLUSTER SLOTS: a slot range is not [start, end, [host, port, ...], ...]";
      return std::nullopt;
    }
    const long long start = range.elements[0].integer;
    const long long end = range.elements[1].integer;
    const long long port = range.elements[2].elements[1].integer;
    if (start < 0 || end >= kClusterSlots || start > end || port <= 0 || port > 65535) {
      why = fmt::format("CLUSTER SLOTS: bad range {}-{} or port {}", start, end, port);
      return std::nullopt;
    }
    const NodeAddress node{range.elements[2].elements[0].text, static_cast<std::uint16_t>(port)};
    auto found = std::find(map.masters_.begin(), map.masters_.end(), node);
    if (found == map.masters_.end()) found = map.masters_.insert(map.masters_.end(), node);
    const auto index = static_cast<std::uint16_t>(found - map.masters_.begin());
    for (long long slot = start; slot <= end; ++slot) {
      map.owner_[static_cast<std::size_t>(slot)] = index;
      covered[static_cast<std::size_t>(slot)] = true;
    }
  }
  const auto gap = std::find(covered.begin(), covered.end(), false);
  if (gap != covered.end()) {
    why = fmt::format("CLUSTER SLOTS: slot {} has no master (the cluster is not fully covered)", gap - covered.begin());
    return std::nullopt;
  }
  return map;
}

void ClusterMap::move(std::uint16_t slot, const NodeAddress& node) {
  auto found = std::find(masters_.begin(), masters_.end(), node);
  if (found == masters_.end()) found = masters_.insert(masters_.end(), node);
  owner_[slot] = static_cast<std::uint16_t>(found - masters_.begin());
}

std::optional<Redirect> parse_redirect(std::string_view error) {
  Redirect redirect;
  if (error.starts_with("MOVED ")) {
    redirect.kind = Redirect::Kind::kMoved;
    error.remove_prefix(6);
  } else if (error.starts_with("ASK ")) {
    redirect.kind = Redirect::Kind::kAsk;
    error.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  const std::size_t space = error.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  unsigned slot = 0;
  const std::string_view slot_text = error.substr(0, space);
  const auto [end, parse_error] = std::from_chars(slot_text.data(), slot_text.data() + slot_text.size(), slot);
  if (parse_error != std::errc() || end != slot_text.data() + slot_text.size() || slot >= kClusterSlots) {
    return std::nullopt;
  }
  const auto node = parse_node(error.substr(space + 1));
  if (!node) return std::nullopt;
  redirect.slot = static_cast<std::uint16_t>(slot);
  redirect.node = *node;
  return redirect;
}

}  // namespace apigw::redis
