// What a pipelined connection to one key-value server (Redis, memcached) does whatever its protocol: requests are
// written as soon as they are issued and answered in order, each bounded by the timeout. A failed or timed-out
// connection fails everything in flight, then reconnects on the next request after a backoff (100 ms doubling to
// 2 s); while backing off, requests fail at once with not_connected rather than wait. Never blocks the worker
// thread. A derived class encodes requests into out() and parses what is read in consume(). With `Peer::tls`, each
// connection runs a TLS handshake (within the same timeout) before its first request, resuming the session the
// server gave the previous one.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include "apigw/core/units.h"
#include "apigw/net/socket_io.h"
#include "apigw/net/tls.h"

namespace apigw::net {

// Used from its executor's thread only (one worker's loop).
class PipelinedConnection : public std::enable_shared_from_this<PipelinedConnection> {
 public:
  virtual ~PipelinedConnection();
  PipelinedConnection(const PipelinedConnection&) = delete;
  PipelinedConnection& operator=(const PipelinedConnection&) = delete;

  // Requests waiting for their reply.
  std::size_t in_flight() const { return pending_.size(); }
  bool connected() const { return state_ == State::kReady; }
  // Fails what is in flight and closes; the next request reconnects (without backoff). The reading coroutine
  // holds the connection alive while it is open: the owner closes it before letting go.
  void close();

 protected:
  struct Peer {
    const char* label;       // the server's kind, first in log lines: "redis"
    std::string address;     // numeric IPv4 or IPv6
    std::uint16_t port;
    core::Duration timeout;  // each request, connecting included
    std::size_t read_size;   // bytes read at a time
    std::shared_ptr<TlsClientContext> tls = {};  // TLS to the server, when set
    std::string server_name = {};  // sent (SNI) and verified; empty: none, and `address` is verified
  };
  // One request's wait for its reply; a derived class's extends it with the reply.
  struct Waiter {
    explicit Waiter(const boost::asio::any_io_executor& executor) : timer(executor) {}
    boost::asio::steady_timer timer;
    boost::system::error_code error;  // why the connection failed it
    bool done = false;
  };

  PipelinedConnection(boost::asio::any_io_executor executor, Peer peer);

  const boost::asio::any_io_executor& executor() const { return executor_; }
  const Peer& peer() const { return peer_; }
  // Requests go in this, encoded, each with its waiter enqueued in the same order.
  std::string& out() { return out_; }
  // False while backing off: the request fails with not_connected, before anything is encoded.
  bool accepting();
  // The next await_reply opens a new connection: what is enqueued before it goes first on that connection.
  bool starting() const { return state_ == State::kIdle; }
  // A request nobody awaits (a handshake step): consume() answers it like any other.
  void enqueue(std::shared_ptr<Waiter> waiter);
  // Enqueues `waiter`, whose request is in out(), sends it (connecting first if needed) and waits until consume()
  // finishes it, the connection fails it, or the timeout, which fails the connection (with backoff).
  boost::asio::awaitable<void> await_reply(std::shared_ptr<Waiter> waiter);
  bool has_waiters() const { return !pending_.empty(); }
  // The oldest request's waiter, which the next reply answers.
  Waiter& front() { return *pending_.front(); }
  std::shared_ptr<Waiter> take_front();
  // Wakes the waiter of a request that got its reply.
  static void finish(Waiter& waiter);
  // Closes, fails every waiter with `error` and, with `backoff`, refuses requests for a while.
  void fail(const boost::system::error_code& error, bool backoff);

  // Parses `n` bytes read: finishes the waiters whose replies are complete, or fails the connection and returns
  // false.
  virtual bool consume(const char* data, std::size_t n) = 0;
  // Forgets what was left unparsed, for a new connection.
  virtual void reset_parser() = 0;

 private:
  enum class State { kIdle, kConnecting, kReady, kBackoff };

  boost::asio::awaitable<void> connect_and_read(std::shared_ptr<PipelinedConnection> self);
  boost::asio::awaitable<void> write_loop(std::shared_ptr<PipelinedConnection> self);

  boost::asio::any_io_executor executor_;
  Peer peer_;
  // The current connection. The reading and writing coroutines hold it too, so that a failed one, closed here,
  // lives until their cancelled operations have ended.
  std::shared_ptr<Connection> connection_;
  std::shared_ptr<TlsSessionCache> sessions_;  // the server's latest session, for the next connection
  State state_ = State::kIdle;
  std::uint64_t epoch_ = 0;  // a new one per connection, so that stale coroutines of an old one stop
  std::deque<std::shared_ptr<Waiter>> pending_;  // in send order
  std::string out_;                              // encoded requests not yet written
  bool writing_ = false;
  std::chrono::steady_clock::time_point retry_at_{};
  std::chrono::milliseconds backoff_{0};
};

}  // namespace apigw::net
