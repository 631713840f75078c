// A memcached pool behind one get/set/remove (see client.h). libmemcached is used for key placement only:
// memcached_generate_hash() hashes the key and searches the ketama continuum built when the servers were added,
// with no socket and no name lookup (servers are resolved only when libmemcached itself connects, which it never
// does here).
#include "apigw/memcache/client.h"

#include <libmemcached/memcached.h>

#include <algorithm>
#include <functional>
#include <stdexcept>

#include <boost/asio/ip/address.hpp>

namespace apigw::memcache {
namespace asio = boost::asio;
using boost::system::error_code;

namespace {

std::string describe(const Server& server) { return server.address + ":" + std::to_string(server.port); }

}  // namespace

Client::Client(asio::any_io_executor executor, ClientOptions options)
    : placement_(memcached_create(nullptr), memcached_free) {
  if (options.servers.empty()) throw std::invalid_argument("memcached: no server configured");
  if (!placement_) throw std::runtime_error("memcached: out of memory");
  for (const Server& server : options.servers) {
    error_code error;
    asio::ip::make_address(server.address, error);
    if (error || server.port == 0) {
      throw std::invalid_argument("memcached: " + describe(server) + " is not a numeric address and port");
    }
    const std::string& name = server.name.empty() ? server.address : server.name;
    if (memcached_server_add(placement_.get(), name.c_str(), server.port) != MEMCACHED_SUCCESS) {
      throw std::invalid_argument("memcached: cannot add " + describe(server));
    }
  }
  memcached_behavior_set(placement_.get(), MEMCACHED_BEHAVIOR_KETAMA, 1);

  ConnectionOptions connection;
  connection.timeout = options.timeout;
  const unsigned per_server = std::max(options.connections, 1u);
  connection.tls = options.tls;
  for (const Server& server : options.servers) {
    connection.address = server.address;
    connection.port = server.port;
    connection.server_name = net::tls_server_name(options.sni, server.name.empty() ? server.address : server.name);
    Node& node = nodes_.emplace_back();
    for (unsigned i = 0; i < per_server; ++i) {
      node.connections.push_back(std::make_shared<Connection>(executor, connection));
    }
  }
}

Client::~Client() { close(); }

std::size_t Client::server_index(std::string_view key) const {
  return memcached_generate_hash(placement_.get(), key.data(), key.size());
}

std::shared_ptr<Connection> Client::connection_for(std::string_view key) {
  Node& node = nodes_[server_index(key)];
  return node.connections[node.next++ % node.connections.size()];
}

std::shared_ptr<Connection> Client::connection_placed(std::string_view placement) {
  Node& node = nodes_[server_index(placement)];
  return node.connections[std::hash<std::string_view>{}(placement) % node.connections.size()];
}

std::shared_ptr<Connection> Client::connection_for(const std::string& key, const std::string& placement) {
  return placement.empty() ? connection_for(key) : connection_placed(placement);
}

// Each picks its connection before its first suspension, so the client may go away while it waits.
asio::awaitable<GetResult> Client::get(std::string key, std::string placement, GetOptions options) {
  const std::shared_ptr<Connection> connection = connection_for(key, placement);
  co_return co_await connection->get(std::move(key), options);
}

asio::awaitable<std::vector<GetResult>> Client::get_many(std::vector<std::string> keys, std::string placement,
                                                         GetOptions first) {
  const std::shared_ptr<Connection> connection = connection_placed(placement);
  co_return co_await connection->get_many(std::move(keys), first);
}

std::shared_ptr<Connection> Client::connection_on(std::size_t server) {
  Node& node = nodes_.at(server);
  return node.connections[node.next++ % node.connections.size()];
}

asio::awaitable<error_code> Client::set_on(std::size_t server, std::string key, std::string value,
                                           std::chrono::seconds ttl) {
  const std::shared_ptr<Connection> connection = connection_on(server);
  co_return co_await connection->set(std::move(key), std::move(value), 0, ttl);
}

asio::awaitable<error_code> Client::remove_on(std::size_t server, std::string key) {
  const std::shared_ptr<Connection> connection = connection_on(server);
  co_return co_await connection->remove(std::move(key));
}

asio::awaitable<error_code> Client::set(std::string key, std::string value, std::uint32_t flags,
                                        std::chrono::seconds ttl, std::string placement) {
  const std::shared_ptr<Connection> connection = connection_for(key, placement);
  co_return co_await connection->set(std::move(key), std::move(value), flags, ttl);
}

asio::awaitable<error_code> Client::add(std::string key, std::string value, std::uint32_t flags,
                                        std::chrono::seconds ttl, std::string placement) {
  const std::shared_ptr<Connection> connection = connection_for(key, placement);
  co_return co_await connection->add(std::move(key), std::move(value), flags, ttl);
}

asio::awaitable<error_code> Client::remove(std::string key, std::string placement, DeleteOptions options) {
  const std::shared_ptr<Connection> connection = connection_for(key, placement);
  co_return co_await connection->remove(std::move(key), options);
}

void Client::close() {
  for (Node& node : nodes_) {
    for (const auto& connection : node.connections) connection->close();
  }
}

}  // namespace apigw::memcache
