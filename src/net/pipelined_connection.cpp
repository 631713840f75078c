// The connection machinery of the Redis and memcached connections (see pipelined_connection.h).
#include "apigw/net/pipelined_connection.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <tuple>
#include <vector>

#include "apigw/net/no_throw.h"
#include "tls_io.h"

namespace apigw::net {
namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr auto kFirstBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::milliseconds(2000);

}  // namespace

PipelinedConnection::PipelinedConnection(asio::any_io_executor executor, Peer peer)
    : executor_(std::move(executor)),
      peer_(std::move(peer)),
      sessions_(peer_.tls ? std::make_shared<TlsSessionCache>() : nullptr) {}

PipelinedConnection::~PipelinedConnection() { fail(asio::error::operation_aborted, false); }

void PipelinedConnection::close() { fail(asio::error::operation_aborted, false); }

bool PipelinedConnection::accepting() {
  if (state_ != State::kBackoff) return true;
  if (std::chrono::steady_clock::now() < retry_at_) return false;
  state_ = State::kIdle;
  return true;
}

void PipelinedConnection::enqueue(std::shared_ptr<Waiter> waiter) { pending_.push_back(std::move(waiter)); }

asio::awaitable<void> PipelinedConnection::await_reply(std::shared_ptr<Waiter> waiter) {
  enqueue(waiter);
  if (state_ == State::kIdle) {
    state_ = State::kConnecting;
    asio::co_spawn(executor_, connect_and_read(shared_from_this()), asio::detached);
  } else if (state_ == State::kReady && !writing_) {
    asio::co_spawn(executor_, write_loop(shared_from_this()), asio::detached);
  }
  if (!waiter->done) {  // a connection that failed at once has answered already
    waiter->timer.expires_after(peer_.timeout);
    co_await waiter->timer.async_wait(kNoThrow);
  }
  if (!waiter->done) {
    // No answer in time: the connection is not trusted any more (later replies would be late too).
    spdlog::warn("{} {}:{}: no reply within {} ms; reconnecting", peer_.label, peer_.address, peer_.port,
                 peer_.timeout.count());
    fail(asio::error::timed_out, true);
  }
}

std::shared_ptr<PipelinedConnection::Waiter> PipelinedConnection::take_front() {
  std::shared_ptr<Waiter> waiter = std::move(pending_.front());
  pending_.pop_front();
  return waiter;
}

void PipelinedConnection::finish(Waiter& waiter) {
  waiter.done = true;
  waiter.timer.cancel();
}

asio::awaitable<void> PipelinedConnection::connect_and_read(std::shared_ptr<PipelinedConnection> self) {
  using namespace asio::experimental::awaitable_operators;
  const std::uint64_t epoch = ++epoch_;
  error_code error;
  const auto address = asio::ip::make_address(peer_.address, error);
  if (error) {
    fail(error, true);
    co_return;
  }
  const auto connection = std::make_shared<Connection>(executor_);
  connection_ = connection;
  asio::steady_timer timer(executor_);
  timer.expires_after(peer_.timeout);
  const asio::ip::tcp::endpoint server(address, peer_.port);
  auto outcome = co_await (connection->socket.async_connect(server, kNoThrow) || timer.async_wait(kNoThrow));
  if (epoch != epoch_) co_return;  // closed meanwhile
  if (outcome.index() == 1) {
    fail(asio::error::timed_out, true);
    co_return;
  }
  if (const error_code connect_error = std::get<0>(std::get<0>(outcome))) {
    fail(connect_error, true);
    co_return;
  }
  connection->socket.set_option(asio::ip::tcp::no_delay(true), error);
  if (peer_.tls) {
    std::string failure;
    auto handshake = co_await (tls_handshake(*connection, peer_.tls, {peer_.server_name, peer_.address}, sessions_,
                                             failure) ||
                               timer.async_wait(kNoThrow));
    if (epoch != epoch_) co_return;
    const error_code handshake_error =
        handshake.index() == 1 ? error_code(asio::error::timed_out) : std::get<0>(handshake);
    if (handshake_error) {
      // The backoff (100 ms doubling to 2 s) bounds how often this is said.
      spdlog::warn("{} {}:{}: TLS handshake failed: {}", peer_.label, peer_.address, peer_.port,
                   handshake.index() == 1 ? std::string("timed out") : failure);
      fail(handshake_error, true);
      co_return;
    }
  }
  reset_parser();
  state_ = State::kReady;
  backoff_ = std::chrono::milliseconds(0);
  if (!writing_ && !out_.empty()) asio::co_spawn(executor_, write_loop(self), asio::detached);

  std::vector<char> buffer(peer_.read_size);
  for (;;) {
    error_code read_error;
    std::size_t n = 0;
    if (connection->tls) {
      std::tie(read_error, n) = co_await detail::tls_read_some(*connection, asio::buffer(buffer));
    } else {
      std::tie(read_error, n) = co_await connection->socket.async_read_some(asio::buffer(buffer), kNoThrow);
    }
    if (epoch != epoch_) co_return;
    if (read_error) {
      fail(read_error, true);
      co_return;
    }
    if (!consume(buffer.data(), n)) co_return;
  }
}

asio::awaitable<void> PipelinedConnection::write_loop(std::shared_ptr<PipelinedConnection> self) {
  const std::uint64_t epoch = epoch_;
  const std::shared_ptr<Connection> connection = connection_;
  if (!connection) co_return;  // failed before this writer started
  writing_ = true;
  while (!out_.empty()) {
    std::string chunk;
    chunk.swap(out_);
    error_code error;
    if (connection->tls) {
      const asio::const_buffer piece = asio::buffer(chunk);
      std::tie(error, std::ignore) = co_await detail::tls_write(*connection, {&piece, 1}, 0);
    } else {
      std::tie(error, std::ignore) = co_await asio::async_write(connection->socket, asio::buffer(chunk), kNoThrow);
    }
    if (epoch != epoch_) co_return;  // fail() already reset the writer state
    if (error) {
      fail(error, true);
      co_return;
    }
  }
  writing_ = false;
}

void PipelinedConnection::fail(const error_code& error, bool backoff) {
  ++epoch_;
  if (connection_) {
    error_code ignored;
    connection_->socket.close(ignored);
    connection_.reset();
  }
  out_.clear();
  writing_ = false;
  state_ = backoff ? State::kBackoff : State::kIdle;
  if (backoff) {
    backoff_ = backoff_.count() == 0 ? kFirstBackoff : std::min(backoff_ * 2, kMaxBackoff);
    retry_at_ = std::chrono::steady_clock::now() + backoff_;
  }
  std::deque<std::shared_ptr<Waiter>> failed;
  failed.swap(pending_);
  for (const auto& waiter : failed) {
    if (waiter->done) continue;
    waiter->error = error;
    finish(*waiter);
  }
}

}  // namespace apigw::net
