// A pool of memcached servers as one worker sees it: each key lives on one server, chosen exactly as libmemcached
// chooses it with MEMCACHED_BEHAVIOR_KETAMA for the same server list in the same order, so apigw shares a pool
// with libmemcached-based clients. libmemcached only computes that placement here; every byte goes through
// `connections` pipelined memcache::Connections per server, used round robin. Never blocks the worker thread.
//
// Worker thread only. Destruction closes every connection (their reading coroutines hold them otherwise).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include "apigw/core/units.h"
#include "apigw/memcache/connection.h"

struct memcached_st;

namespace apigw::memcache {

struct Server {
  std::string address;  // numeric IPv4 or IPv6: where to connect
  std::uint16_t port = 11211;
  // What placement hashes: the host as the pool's other clients write it (a name or an address); when empty,
  // the address.
  std::string name;
};

struct ClientOptions {
  std::vector<Server> servers;  // the order matters: it is part of the placement
  core::Duration timeout = std::chrono::milliseconds(50);  // each command, connecting included
  unsigned connections = 2;                                  // per server, at least 1
  // TLS to every server; `sni` is sent and verified for all of them (empty: a server written by name sends its
  // name, one written as an address sends none).
  std::shared_ptr<net::TlsClientContext> tls;
  std::string sni;
};

class Client {
 public:
  // Throws std::invalid_argument when `options.servers` is empty or an address is not numeric (start-up only).
  Client(boost::asio::any_io_executor executor, ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // As Connection's (errors listed in connection.h); the key's server answers, on its connections in turn.
  // `placement`, when not empty, is hashed instead of the key, so that keys read together live on one server,
  // and picks one connection of that server, so that this worker's commands for it are answered in order.
  boost::asio::awaitable<GetResult> get(std::string key, std::string placement = {}, GetOptions options = {});
  // Every key from the server `placement` selects, in one write; results in the keys' order. `first` applies to
  // the first key.
  boost::asio::awaitable<std::vector<GetResult>> get_many(std::vector<std::string> keys, std::string placement,
                                                          GetOptions first = {});
  boost::asio::awaitable<boost::system::error_code> set(std::string key, std::string value, std::uint32_t flags,
                                                        std::chrono::seconds ttl, std::string placement = {});
  boost::asio::awaitable<boost::system::error_code> add(std::string key, std::string value, std::uint32_t flags,
                                                        std::chrono::seconds ttl, std::string placement = {});
  boost::asio::awaitable<boost::system::error_code> remove(std::string key, std::string placement = {},
                                                           DeleteOptions options = {});

  // A write or delete on one server, by its index in `servers` (for keys every server may hold).
  std::size_t server_count() const { return nodes_.size(); }
  boost::asio::awaitable<boost::system::error_code> set_on(std::size_t server, std::string key, std::string value,
                                                           std::chrono::seconds ttl);
  boost::asio::awaitable<boost::system::error_code> remove_on(std::size_t server, std::string key);

  // The index in `servers` of the server holding `key` (libmemcached's ketama), for tests and diagnostics.
  std::size_t server_index(std::string_view key) const;

  // Fails everything in flight and closes every connection; the client may still be used afterwards.
  void close();

 private:
  struct Node {
    std::vector<std::shared_ptr<Connection>> connections;
    std::size_t next = 0;
  };

  std::shared_ptr<Connection> connection_for(std::string_view key);
  std::shared_ptr<Connection> connection_placed(std::string_view placement);
  std::shared_ptr<Connection> connection_for(const std::string& key, const std::string& placement);
  std::shared_ptr<Connection> connection_on(std::size_t server);

  std::unique_ptr<memcached_st, void (*)(memcached_st*)> placement_;
  std::vector<Node> nodes_;  // as options.servers
};

}  // namespace apigw::memcache
