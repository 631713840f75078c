// One connection to one memcached server (>= 1.6), owned by one worker, speaking the meta protocol: commands are
// pipelined (written as soon as they are issued) and answered in order, each reply checked against the opaque
// token its request carried. Each command is bounded by the timeout. A failed or timed-out connection fails
// everything in flight, then reconnects on the next command after a backoff (100 ms doubling to 2 s); while
// backing off, commands fail at once with not_connected rather than wait. Never blocks the worker thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include "apigw/core/units.h"
#include "apigw/memcache/meta_protocol.h"
#include "apigw/net/pipelined_connection.h"

namespace apigw::memcache {

struct Item {
  std::string value;  // binary-safe
  std::uint32_t flags = 0;
  std::optional<std::chrono::seconds> ttl_left;  // nullopt: the item never expires
  std::uint64_t cas = 0;        // when asked for (GetOptions::cas)
  bool won = false;             // W: this client fills or refreshes the key (GetOptions::vivify, recache)
  bool fill_elsewhere = false;  // Z: another client does
  bool stale = false;           // X: marked stale by a delete with DeleteOptions::invalidate
};

// No error and no item: a miss.
struct GetResult {
  boost::system::error_code error;
  std::optional<Item> item;
};

struct ConnectionOptions {
  std::string address;  // numeric IPv4 or IPv6
  std::uint16_t port = 11211;
  core::Duration timeout = std::chrono::milliseconds(50);  // each command, connecting included
  std::shared_ptr<net::TlsClientContext> tls;  // TLS to the server, when set
  std::string server_name;  // sent (SNI) and verified; empty: none, and the address is verified
};

// Errors of get/set/remove:
//   invalid_argument   a key valid_key() refuses (nothing is sent), a negative ttl
//   not_connected      backing off after a failure
//   timed_out          no reply within the timeout (the connection is dropped)
//   connection_refused, connection_reset, eof, ...   the socket's own errors
//   message_size       memcached refused the item as too large (the connection stays)
//   not_enough_memory  memcached had no memory for the item (the connection stays)
//   io_error           another SERVER_ERROR, or NS (not stored) on a set
//   file_exists        add: the key is there already
//   bad_message        a reply that makes no sense (the connection is dropped)
//   operation_aborted  close() or destruction
// Used from its executor's thread only (one worker's loop). in_flight(), connected() and close() are the base's.
class Connection : public net::PipelinedConnection {
 public:
  Connection(boost::asio::any_io_executor executor, ConnectionOptions options);

  boost::asio::awaitable<GetResult> get(std::string key, GetOptions options = {});
  // Several keys in one write, answered in order; the results are in the keys' order. `first` applies to the
  // first key only.
  boost::asio::awaitable<std::vector<GetResult>> get_many(std::vector<std::string> keys, GetOptions first = {});
  // `ttl` 0 stores without expiry; more than 30 days is sent as an absolute time, as memcached requires.
  boost::asio::awaitable<boost::system::error_code> set(std::string key, std::string value, std::uint32_t flags,
                                                        std::chrono::seconds ttl);
  // Stores only when the key is absent.
  boost::asio::awaitable<boost::system::error_code> add(std::string key, std::string value, std::uint32_t flags,
                                                        std::chrono::seconds ttl);
  // A missing key is not an error; a CAS that does not match (DeleteOptions::cas) is file_exists.
  boost::asio::awaitable<boost::system::error_code> remove(std::string key, DeleteOptions options = {});

 private:
  struct Pending;
  struct Outcome {
    boost::system::error_code error;
    Reply reply;
  };

  std::uint32_t next_opaque() { return ++opaque_; }
  boost::asio::awaitable<boost::system::error_code> store(std::string key, std::string value, std::uint32_t flags,
                                                          std::chrono::seconds ttl, bool add);
  boost::asio::awaitable<Outcome> exchange(std::uint32_t opaque);
  bool consume(const char* data, std::size_t n) override;
  void reset_parser() override { in_.clear(); }

  std::string in_;  // bytes read and not yet parsed
  std::uint32_t opaque_ = 0;
};

}  // namespace apigw::memcache
