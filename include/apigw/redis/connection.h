// One connection to one Redis server, owned by one worker: commands are pipelined (sent as soon as they are
// issued, answered in order), each bounded by the timeout. The socket is Asio's; hiredis only encodes commands
// and parses replies (see docs/decisions.md). A failed or timed-out connection fails everything in flight, then
// reconnects on the next command after a backoff (100 ms doubling to 2 s); while backing off, commands fail at
// once with not_connected rather than wait.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include "apigw/core/units.h"
#include "apigw/redis/reply.h"

struct redisReader;

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
};

// Used from its executor's thread only (one worker's loop).
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(boost::asio::any_io_executor executor, ConnectionOptions options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Sends `args` as one command and waits for its reply, at most the timeout.
  boost::asio::awaitable<Result> command(std::vector<std::string> args);
  // Commands waiting for their reply.
  std::size_t in_flight() const { return pending_.size(); }
  bool connected() const { return state_ == State::kReady; }
  // Fails what is in flight and closes; the next command reconnects (without backoff). The reading coroutine
  // holds the connection alive while it is open: the owner closes it before letting go.
  void close();

 private:
  enum class State { kIdle, kConnecting, kReady, kBackoff };
  struct Pending;

  void queue(const std::vector<std::string>& args, const std::shared_ptr<Pending>& pending);
  boost::asio::awaitable<void> connect_and_read(std::shared_ptr<Connection> self);
  boost::asio::awaitable<void> write_loop(std::shared_ptr<Connection> self);
  void fail(const boost::system::error_code& error, bool backoff);
  void complete(Reply reply);

  boost::asio::any_io_executor executor_;
  ConnectionOptions options_;
  boost::asio::ip::tcp::socket socket_;
  std::unique_ptr<redisReader, void (*)(redisReader*)> reader_;
  State state_ = State::kIdle;
  std::uint64_t epoch_ = 0;  // a new one per connection, so that stale coroutines of an old one stop
  std::deque<std::shared_ptr<Pending>> pending_;  // in send order
  std::string out_;          // encoded commands not yet written
  bool writing_ = false;
  std::chrono::steady_clock::time_point retry_at_{};
  std::chrono::milliseconds backoff_{0};
};

}  // namespace apigw::redis
