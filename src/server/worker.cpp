// A worker thread and its loop (see worker.h): accepting, the deadline sweeper, draining.
#include "apigw/server/worker.h"

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "apigw/server/client_session.h"

namespace apigw::server {
namespace asio = boost::asio;

namespace {
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
// How often deadlines are checked: the precision of every client-side timeout.
constexpr auto kSweepInterval = std::chrono::milliseconds(100);
constexpr int kListenBacklog = 4096;
}  // namespace

Worker::Worker(unsigned index, core::AccessLog& access_log) : index_(index), access_log_(access_log) {}

Worker::~Worker() { join(); }

void Worker::listen(const asio::ip::tcp::endpoint& endpoint) {
  auto acceptor = std::make_unique<asio::ip::tcp::acceptor>(context_);
  acceptor->open(endpoint.protocol());
  acceptor->set_option(asio::socket_base::reuse_address(true));
  // Every worker binds the same address; the kernel spreads new connections across them.
  const int one = 1;
  if (::setsockopt(acceptor->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    throw boost::system::system_error(errno, boost::system::system_category(), "SO_REUSEPORT");
  }
  acceptor->bind(endpoint);
  acceptor->listen(kListenBacklog);
  acceptors_.push_back(std::move(acceptor));
}

void Worker::start(config::SnapshotPtr snapshot) {
  snapshot_ = std::move(snapshot);
  for (const config::Upstream& upstream : snapshot_->upstreams) {
    pools_.push_back(std::make_shared<upstream::UpstreamPool>(context_.get_executor(), upstream));
  }
  for (auto& acceptor : acceptors_) asio::co_spawn(context_, accept_loop(*acceptor), asio::detached);
  schedule_sweep();
  thread_ = std::thread([this] {
    try {
      context_.run();
    } catch (const std::exception& error) {
      spdlog::critical("worker {} stopped on an unexpected error: {}", index_, error.what());
      std::abort();
    }
  });
}

void Worker::drain() {
  asio::post(context_, [this] { begin_drain(); });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::attach(ClientSession* session) { sessions_.insert(session); }

void Worker::detach(ClientSession* session) {
  sessions_.erase(session);
  if (draining_) finish_if_drained();
}

asio::awaitable<void> Worker::accept_loop(asio::ip::tcp::acceptor& acceptor) {
  for (;;) {
    auto [error, socket] = co_await acceptor.async_accept(kNoThrow);
    if (error == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (error) {
      // Out of descriptors or memory: back off briefly instead of spinning on the same error.
      spdlog::warn("worker {}: accept failed: {}", index_, error.message());
      asio::steady_timer pause(context_, std::chrono::milliseconds(50));
      co_await pause.async_wait(kNoThrow);
      continue;
    }
    asio::co_spawn(
        context_,
        [this, socket = std::move(socket)]() mutable -> asio::awaitable<void> {
          try {
            ClientSession session(*this, std::move(socket));
            co_await session.run();
          } catch (const std::exception& error) {
            spdlog::error("worker {}: client session ended on an error: {}", index_, error.what());
          }
        },
        asio::detached);
  }
}

void Worker::schedule_sweep() {
  sweep_timer_.expires_after(kSweepInterval);
  sweep_timer_.async_wait([this](const boost::system::error_code& error) {
    // A sweep already due when the drain finished still runs: it must not schedule another one, or the loop
    // would never run out of work.
    if (error || drained_) return;
    const auto now = core::Deadline::Clock::now();
    // check_deadline may end a session's operation but never detaches synchronously, so iterating is safe.
    for (ClientSession* session : sessions_) session->check_deadline(now);
    access_log_.flush();
    schedule_sweep();
  });
}

void Worker::begin_drain() {
  if (draining_) return;
  draining_ = true;
  for (auto& acceptor : acceptors_) {
    boost::system::error_code ignored;
    acceptor->close(ignored);
  }
  std::vector<ClientSession*> sessions(sessions_.begin(), sessions_.end());
  for (ClientSession* session : sessions) session->on_drain();
  drain_timer_.expires_after(snapshot_->config.server.drain_timeout);
  drain_timer_.async_wait([this](const boost::system::error_code& error) {
    if (error) return;
    if (!sessions_.empty()) spdlog::warn("worker {}: drain timeout, closing {} connections", index_, sessions_.size());
    std::vector<ClientSession*> sessions(sessions_.begin(), sessions_.end());
    for (ClientSession* session : sessions) session->force_close();
  });
  finish_if_drained();
}

void Worker::finish_if_drained() {
  if (!sessions_.empty()) return;
  drained_ = true;
  sweep_timer_.cancel();
  drain_timer_.cancel();
  access_log_.flush();
  for (auto& pool : pools_) pool->close_idle();
}

}  // namespace apigw::server
