// A Redis deployment as one worker sees it, standalone or a Redis Cluster, behind one call: command(args, key).
//
// Standalone: `connections` pipelined Connections to the one node, used round robin.
// Cluster: the slot map comes from `CLUSTER SLOTS`, asked of the seed nodes and the known masters in turn; each
// master gets `connections` Connections, made on first use; a node that leaves the map has its connections closed.
// The first map is asked for at construction. A command goes to the master of its key's slot.
// `MOVED` moves the slot to the named node at once, refreshes the whole map in the background and retries there;
// `ASK` sends `ASKING` and the command back to back on one connection to the named node. A connection error,
// `CLUSTERDOWN` or `TRYAGAIN` answers the command with that error and refreshes the map (at most one refresh at a
// time, at most one per 100 ms), so a replica promoted after its master died is found without a restart. A command
// follows at most two redirects.
//
// Worker thread only. The owner calls close() before letting go (connections' reading coroutines hold them).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "apigw/core/metrics.h"
#include "apigw/core/units.h"
#include "apigw/redis/cluster_map.h"
#include "apigw/redis/connection.h"

namespace apigw::redis {

struct ClientOptions {
  std::vector<NodeAddress> nodes;  // numeric addresses; standalone uses the first, a cluster uses them as seeds
  bool cluster = false;
  std::string username;  // ACL user, with password
  std::string password;
  unsigned db = 0;  // standalone only
  core::Duration timeout = std::chrono::milliseconds(50);  // each round trip to a node
  unsigned connections = 2;                                  // per node, at least 1
  // TLS to every node, seeds and the nodes redirections lead to alike; `sni` is sent and verified for all of them
  // (empty: a node reported by name sends its name, one reported by address sends none).
  std::shared_ptr<net::TlsClientContext> tls;
  std::string sni;
};

// Counted by the client when set (the worker's metric series); any may be null.
struct ClientMetrics {
  core::Counter* moved = nullptr;         // MOVED redirects followed
  core::Counter* ask = nullptr;           // ASK redirects followed
  core::Counter* map_refreshes = nullptr; // successful CLUSTER SLOTS refreshes
};

class Client {
 public:
  // Throws std::invalid_argument when `options.nodes` is empty (start-up only).
  Client(boost::asio::any_io_executor executor, ClientOptions options, ClientMetrics metrics = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends `args` to the node serving `key` (standalone: the node) and returns its reply. Errors as
  // Connection::command reports them; a cluster with no slot map yet answers not_connected (after one refresh
  // attempt, which is bounded by the timeout per node asked). `key` is only read as the command starts.
  boost::asio::awaitable<Result> command(std::vector<std::string> args, std::string_view key);

  // Fails everything in flight and closes every connection; the client may still be used afterwards.
  void close();

  // Cluster only: the masters of the current map (empty before the first refresh), for tests and diagnostics.
  std::vector<NodeAddress> masters() const;

 private:
  struct Node;
  struct State;
  std::shared_ptr<State> state_;  // shared with background refreshes, which stop once the client is gone
};

}  // namespace apigw::redis
