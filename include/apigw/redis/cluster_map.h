// A Redis Cluster's slot map, as `CLUSTER SLOTS` reports it, and the redirections a node answers with
// (`MOVED slot host:port`, `ASK slot host:port`). Pure: built from and applied to replies.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "apigw/redis/key_slot.h"
#include "apigw/redis/reply.h"

namespace apigw::redis {

struct NodeAddress {
  std::string host;  // as the cluster reports it (an IP, or a name with cluster-preferred-endpoint-type)
  std::uint16_t port = 0;
  std::string text() const;  // "host:port", IPv6 in brackets
  bool operator==(const NodeAddress&) const = default;
};

class ClusterMap {
 public:
  // From a `CLUSTER SLOTS` reply: [[start, end, [host, port, id, ...], replicas...], ...]. Returns nullopt with
  // `why` set when the reply is not shaped like one or leaves slots uncovered.
  static std::optional<ClusterMap> from_slots(const Reply& reply, std::string& why);

  // The master serving `slot`.
  const NodeAddress& master(std::uint16_t slot) const { return masters_[owner_[slot]]; }
  const std::vector<NodeAddress>& masters() const { return masters_; }
  // A MOVED answer: `slot` now lives at `node` (until the map is refreshed).
  void move(std::uint16_t slot, const NodeAddress& node);

 private:
  std::vector<NodeAddress> masters_;
  std::vector<std::uint16_t> owner_ = std::vector<std::uint16_t>(kClusterSlots, 0);  // slot → index in masters_
};

struct Redirect {
  enum class Kind { kMoved, kAsk };
  Kind kind = Kind::kMoved;
  std::uint16_t slot = 0;
  NodeAddress node;
};
// The redirection in an error reply's text ("MOVED 3999 127.0.0.1:6381"), or nullopt for any other error.
std::optional<Redirect> parse_redirect(std::string_view error);

}  // namespace apigw::redis
