// Starting, reloading and draining the workers (see gateway.h).
#include "apigw/server/gateway.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include <atomic>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "apigw/net/endpoint.h"

namespace apigw::server {
namespace asio = boost::asio;

unsigned effective_workers(unsigned configured) {
  if (configured > 0) return configured;
  const unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : cores;
}

Gateway::Gateway(const config::SnapshotPtr& snapshot, core::AccessLog& access_log, upstream::HealthTable& health,
                 migration::AuditSink& audit_sink, tracing::SpanExporter& spans, std::vector<int> inherited)
    : snapshot_(snapshot),
      inherited_(std::move(inherited)),
      count_(effective_workers(snapshot->config.server.workers)) {
  std::vector<ListenSocket> sockets = bind_all(snapshot_->config.server.listen);
  for (std::size_t i = 0; i < count_; ++i) {
    auto worker = std::make_unique<Worker>(static_cast<unsigned>(i), access_log, health, audit_sink, spans);
    worker->listen(sockets[i]);
    workers_.push_back(std::move(worker));
  }
}

Gateway::~Gateway() { drain_and_join(); }

namespace {

// SO_REUSEPORT would let the workers bind beside another process's listener and silently split the traffic with
// it; a socket bound without it finds that listener (or an overlapping wildcard one) first.
void refuse_address_in_use(const asio::ip::tcp::endpoint& endpoint, std::string_view text) {
  asio::io_context scratch;
  asio::ip::tcp::acceptor probe(scratch);
  boost::system::error_code error;
  probe.open(endpoint.protocol(), error);
  if (!error) probe.set_option(asio::socket_base::reuse_address(true), error);
  if (!error) probe.bind(endpoint, error);
  if (error == asio::error::address_in_use) {
    throw std::runtime_error(
        fmt::format("cannot listen on {}: the address is already in use by another process", text));
  }
  // Any other error is the real bind's to report.
}

}  // namespace

std::vector<ListenSocket> Gateway::bind_all(const config::Endpoint& listen) const {
  const asio::ip::tcp::endpoint endpoint = net::tcp_endpoint(listen);
  std::vector<ListenSocket> sockets;
  for (const int fd : inherited_) {
    if (listening_address(fd) != endpoint) continue;
    // Every worker accepts from the one inherited socket, through a descriptor of its own.
    spdlog::info("listening on {} through the socket passed by the service manager", listen.text());
    for (std::size_t i = 0; i < count_; ++i) {
      const int own = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
      if (own < 0) {
        for (const ListenSocket& socket : sockets) ::close(socket.fd);
        throw std::runtime_error(fmt::format("cannot use the socket for {}: {}", listen.text(), std::strerror(errno)));
      }
      sockets.push_back(ListenSocket{endpoint.protocol(), own});
    }
    return sockets;
  }
  refuse_address_in_use(endpoint, listen.text());
  try {
    for (std::size_t i = 0; i < count_; ++i) sockets.push_back(open_listen_socket(endpoint));
  } catch (const boost::system::system_error& bind_error) {
    for (const ListenSocket& socket : sockets) ::close(socket.fd);
    throw std::runtime_error(fmt::format("cannot listen on {}: {}", listen.text(), bind_error.code().message()));
  }
  return sockets;
}

void Gateway::start() {
  for (auto& worker : workers_) worker->start(snapshot_);
}

void Gateway::apply(const config::SnapshotPtr& snapshot, std::function<void()> applied) {
  const config::ServerConfig& now = snapshot_->config.server;
  const config::ServerConfig& next = snapshot->config.server;
  std::vector<ListenSocket> sockets;
  if (!(next.listen == now.listen)) sockets = bind_all(next.listen);
  if (effective_workers(next.workers) != count_) {
    spdlog::warn("server.workers changed to {}: a new worker count takes a restart; keeping {}", next.workers,
                 count_);
  }
  snapshot_ = snapshot;
  auto remaining = std::make_shared<std::atomic<std::size_t>>(workers_.size());
  auto done = std::make_shared<std::function<void()>>(std::move(applied));
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    std::vector<ListenSocket> own;
    if (!sockets.empty()) own.push_back(sockets[i]);
    workers_[i]->apply(snapshot, std::move(own), [remaining, done] {
      if (remaining->fetch_sub(1) == 1 && *done) (*done)();
    });
  }
}

void Gateway::drain_and_join() {
  drain();
  join();
}

void Gateway::drain() {
  for (auto& worker : workers_) worker->drain();
}

bool Gateway::exited() const {
  for (const auto& worker : workers_) {
    if (!worker->exited()) return false;
  }
  return true;
}

void Gateway::join() {
  for (auto& worker : workers_) worker->join();
}

}  // namespace apigw::server
