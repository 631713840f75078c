// One connection to one Redis server, owned by one worker: commands are pipelined (sent as soon as they are
// issued, answered in order), each bounded by the timeout. The socket is Asio's; hiredis only encodes commands
// and parses replies (see docs/decisions.md). A failed or timed-out connection fails everything in flight, then
// reconnects on the next command after a backoff (100 ms doubling to 2 s); while backing off, commands fail at
// once with not_connected rather than wait.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include "apigw/core/units.h"
#include "apigw/net/pipelined_connection.h"
#include "apigw/redis/reply.h"
#include "apigw/redis/reply_reader.h"

namespace apigw::redis {

struct Result {
  boost::system::error_code error;  // timed_out, not_connected, connection_reset, ...; then `reply` is kNil
  Reply reply;                      // may be a Redis error reply (Type::kError)
};

struct ConnectionOptions {
  std::string address;  // numeric IPv4 or IPv6
  std::uint16_t port = 6379;
  std::string username;  // with a password: AUTH username password (ACL)
  std::string password;  // AUTH before any command when set
  unsigned db = 0;       // SELECT when not 0
  core::Duration timeout = std::chrono::milliseconds(50);
  std::shared_ptr<net::TlsClientContext> tls;  // TLS to the node, when set
  std::string server_name;  // sent (SNI) and verified; empty: none, and the address is verified
};

// Used from its executor's thread only (one worker's loop). in_flight(), connected() and close() are the base's.
class Connection : public net::PipelinedConnection {
 public:
  Connection(boost::asio::any_io_executor executor, ConnectionOptions options);

  // Sends `args` as one command and waits for its reply, at most the timeout.
  boost::asio::awaitable<Result> command(std::vector<std::string> args);

 private:
  struct Pending;

  void encode(const std::vector<std::string>& args);
  bool consume(const char* data, std::size_t n) override;
  void reset_parser() override;

  ConnectionOptions options_;
  ReplyReader reader_;  // reset for each connection
};

}  // namespace apigw::redis
