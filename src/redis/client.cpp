// A standalone Redis or a Redis Cluster behind one command() (see client.h). Never blocks the worker thread: every
// wait is an Asio operation, and a background map refresh stops once the client is closed or gone.
#include "apigw/redis/client.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <tuple>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "apigw/net/no_throw.h"

namespace apigw::redis {
namespace asio = boost::asio;
using boost::system::error_code;

namespace {

using net::kNoThrow;
constexpr int kMaxRedirects = 2;
constexpr auto kRefreshInterval = std::chrono::milliseconds(100);  // at most one CLUSTER SLOTS per interval

// Built outside the coroutines (g++ 12 mishandles braced lists of string literals inside them).
std::vector<std::string> cluster_slots_command() { return {"CLUSTER", "SLOTS"}; }
std::vector<std::string> asking_command() { return {"ASKING"}; }

// The node may be gone, or replaced by a promoted replica: worth a fresh map.
bool node_unreachable(const error_code& error) {
  return error == asio::error::not_connected || error == asio::error::connection_refused ||
         error == asio::error::connection_reset || error == asio::error::timed_out || error == asio::error::eof ||
         error == asio::error::broken_pipe || error == asio::error::connection_aborted ||
         error == asio::error::host_unreachable || error == asio::error::network_unreachable;
}

// The cluster is failing over or resharding: the answer is the caller's, the map is ours to refresh.
bool cluster_unsettled(const Reply& reply) {
  return reply.type == Reply::Type::kError &&
         (reply.text.starts_with("CLUSTERDOWN") || reply.text.starts_with("TRYAGAIN"));
}

// Orders nodes by host, then port: a map lookup per command with no text formatted.
struct AddressLess {
  bool operator()(const NodeAddress& a, const NodeAddress& b) const {
    return std::tie(a.host, a.port) < std::tie(b.host, b.port);
  }
};

void count(core::Counter* counter) {
  if (counter != nullptr) counter->add();
}

}  // namespace

// One node's connections, used round robin.
struct Client::Node {
  std::vector<std::shared_ptr<Connection>> connections;
  std::size_t next = 0;

  std::shared_ptr<Connection> pick() { return connections[next++ % connections.size()]; }
  bool busy() const {
    return std::any_of(connections.begin(), connections.end(), [](const auto& c) { return c->in_flight() > 0; });
  }
  void close() {
    for (const auto& connection : connections) connection->close();
  }
};

struct Client::State : std::enable_shared_from_this<State> {
  State(asio::any_io_executor executor_in, ClientOptions options_in, ClientMetrics metrics_in)
      : executor(std::move(executor_in)),
        options(std::move(options_in)),
        metrics(metrics_in),
        refresh_delay(executor),
        attempt_done(new_attempt_timer()) {}

  std::shared_ptr<asio::steady_timer> new_attempt_timer() {
    return std::make_shared<asio::steady_timer>(executor, asio::steady_timer::time_point::max());
  }

  std::shared_ptr<Connection> connection_to(const NodeAddress& address);
  asio::awaitable<Result> cluster_command(std::vector<std::string> args, std::uint16_t slot);
  asio::awaitable<Result> send(std::shared_ptr<Connection> connection, const std::vector<std::string>& args,
                               bool asking);
  asio::awaitable<bool> first_map();
  void request_refresh();
  asio::awaitable<void> refresh(std::shared_ptr<State> self, std::uint64_t started);
  asio::awaitable<void> fetch_map(std::uint64_t started);
  void install(ClusterMap fresh);
  void end_attempt();
  void close();

  asio::any_io_executor executor;
  const ClientOptions options;
  const ClientMetrics metrics;
  bool alive = true;                  // false once the Client is destroyed
  std::uint64_t epoch = 0;            // bumped by close(): background work of an older epoch stops
  std::map<NodeAddress, Node, AddressLess> nodes;  // made on first use
  std::optional<ClusterMap> map;

  bool refreshing = false;     // a refresh coroutine runs (single flight)
  bool refresh_again = false;  // asked for while one ran: it goes once more
  bool refresh_failing = false;
  std::chrono::steady_clock::time_point next_refresh{};
  asio::steady_timer refresh_delay;
  std::shared_ptr<asio::steady_timer> attempt_done;  // cancelled, then replaced, when a refresh attempt ends
};

std::shared_ptr<Connection> Client::State::connection_to(const NodeAddress& address) {
  auto [found, made] = nodes.try_emplace(address);
  if (made) {
    ConnectionOptions connection;
    connection.address = address.host;
    connection.port = address.port;
    connection.username = options.username;
    connection.password = options.password;
    connection.db = options.cluster ? 0 : options.db;
    connection.timeout = options.timeout;
    connection.tls = options.tls;
    connection.server_name = net::tls_server_name(options.sni, address.host);
    for (unsigned i = 0; i < options.connections; ++i) {
      found->second.connections.push_back(std::make_shared<Connection>(executor, connection));
    }
  }
  return found->second.pick();
}

asio::awaitable<Result> Client::State::cluster_command(std::vector<std::string> args, std::uint16_t slot) {
  if (!map) {
    const std::uint64_t started = epoch;
    const bool mapped = co_await first_map();
    if (epoch != started) co_return Result{asio::error::operation_aborted, {}};  // closed meanwhile
    if (!mapped) co_return Result{asio::error::not_connected, {}};
  }
  NodeAddress target = map->master(slot);
  bool asking = false;
  for (int redirects = 0;; ++redirects) {
    if (!alive) co_return Result{asio::error::operation_aborted, {}};
    Result result = co_await send(connection_to(target), args, asking);
    if (result.error) {
      if (node_unreachable(result.error)) request_refresh();
      co_return result;
    }
    if (cluster_unsettled(result.reply)) request_refresh();
    if (result.reply.type != Reply::Type::kError || redirects == kMaxRedirects) co_return result;
    const std::optional<Redirect> redirect = parse_redirect(result.reply.text);
    if (!redirect) co_return result;
    target = redirect->node;
    asking = redirect->kind == Redirect::Kind::kAsk;
    if (asking) {
      count(metrics.ask);
    } else {
      count(metrics.moved);
      if (map) map->move(redirect->slot, target);
      request_refresh();
    }
  }
}

asio::awaitable<Result> Client::State::send(std::shared_ptr<Connection> connection,
                                            const std::vector<std::string>& args, bool asking) {
  if (!asking) co_return co_await connection->command(args);
  // ASKING holds for the connection's next command only: both are queued back to back, in this order, before
  // anything else can use the connection (each command queues before its first suspension, and the two are
  // started in order without yielding in between).
  using namespace asio::experimental::awaitable_operators;
  auto replies = co_await (connection->command(asking_command()) && connection->command(args));
  co_return std::move(std::get<1>(replies));
}

asio::awaitable<bool> Client::State::first_map() {
  if (!refreshing) {
    const bool failed_just_now = std::chrono::steady_clock::now() < next_refresh;
    request_refresh();
    // The last attempt failed moments ago: that was this command's attempt.
    if (failed_just_now) co_return false;
  }
  // Waits for the attempt under way (asking for another one would only repeat it).
  const std::shared_ptr<asio::steady_timer> done = attempt_done;
  co_await done->async_wait(kNoThrow);
  co_return map.has_value();
}

void Client::State::request_refresh() {
  if (!alive || !options.cluster) return;
  if (refreshing) {
    refresh_again = true;
    return;
  }
  refreshing = true;
  asio::co_spawn(executor, refresh(shared_from_this(), epoch), asio::detached);
}

asio::awaitable<void> Client::State::refresh(std::shared_ptr<State> self, std::uint64_t started) {
  // After close() (epoch moved on) this coroutine returns at once: close() has reset the refresh state.
  do {
    refresh_again = false;
    if (std::chrono::steady_clock::now() < next_refresh) {
      refresh_delay.expires_at(next_refresh);
      co_await refresh_delay.async_wait(kNoThrow);
      if (epoch != started) co_return;
    }
    next_refresh = std::chrono::steady_clock::now() + kRefreshInterval;
    co_await fetch_map(started);
    if (epoch != started) co_return;
    end_attempt();
  } while (refresh_again);
  refreshing = false;
}

asio::awaitable<void> Client::State::fetch_map(std::uint64_t started) {
  std::vector<NodeAddress> candidates = options.nodes;
  if (map) {
    for (const NodeAddress& master : map->masters()) {
      if (std::find(candidates.begin(), candidates.end(), master) == candidates.end()) candidates.push_back(master);
    }
  }
  std::string why = "no node to ask";
  for (const NodeAddress& node : candidates) {
    const Result result = co_await connection_to(node)->command(cluster_slots_command());
    if (epoch != started) co_return;
    std::optional<ClusterMap> fresh;
    if (result.error) {
      why = node.text() + ": " + result.error.message();
    } else {
      fresh = ClusterMap::from_slots(result.reply, why);
    }
    if (fresh) {
      install(std::move(*fresh));
      co_return;
    }
    spdlog::debug("redis cluster: no slot map from {}: {}", node.text(), why);
  }
  // Logged once per outage: refreshes repeat up to ten times a second while the cluster is unreachable.
  if (!refresh_failing) spdlog::warn("redis cluster: slot map refresh failed ({}); retrying on errors", why);
  refresh_failing = true;
}

void Client::State::install(ClusterMap fresh) {
  const bool changed = !map || map->masters() != fresh.masters();
  map = std::move(fresh);
  refresh_failing = false;
  count(metrics.map_refreshes);
  const std::set<NodeAddress, AddressLess> serving(map->masters().begin(), map->masters().end());
  if (changed) spdlog::info("redis cluster: slot map with {} masters", serving.size());
  // A node out of the map is closed; one still answering commands goes at a later refresh.
  for (auto node = nodes.begin(); node != nodes.end();) {
    if (serving.contains(node->first) || node->second.busy()) {
      ++node;
    } else {
      node->second.close();
      node = nodes.erase(node);
    }
  }
}

void Client::State::end_attempt() {
  const std::shared_ptr<asio::steady_timer> done = std::exchange(attempt_done, new_attempt_timer());
  done->cancel();
}

void Client::State::close() {
  ++epoch;
  refreshing = false;
  refresh_again = false;
  refresh_delay.cancel();
  end_attempt();
  for (auto& [address, node] : nodes) node.close();
  nodes.clear();
}

Client::Client(asio::any_io_executor executor, ClientOptions options, ClientMetrics metrics) {
  if (options.nodes.empty()) throw std::invalid_argument("redis: no node address configured");
  options.connections = std::max(options.connections, 1u);
  state_ = std::make_shared<State>(std::move(executor), std::move(options), metrics);
  // The first map is fetched at once, so that the first command rarely waits for it.
  state_->request_refresh();
}

Client::~Client() {
  state_->alive = false;
  state_->close();
}

asio::awaitable<Result> Client::command(std::vector<std::string> args, std::string_view key) {
  const std::shared_ptr<State> state = state_;  // the client may be destroyed while this waits
  if (!state->options.cluster) {
    co_return co_await state->connection_to(state->options.nodes.front())->command(std::move(args));
  }
  co_return co_await state->cluster_command(std::move(args), key_slot(key));
}

void Client::close() { state_->close(); }

std::vector<NodeAddress> Client::masters() const {
  return state_->map ? state_->map->masters() : std::vector<NodeAddress>{};
}

}  // namespace apigw::redis
