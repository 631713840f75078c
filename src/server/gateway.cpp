// Starting and draining the workers (see gateway.h).
#include "apigw/server/gateway.h"

#include <stdexcept>
#include <thread>

#include <boost/asio/ip/address.hpp>
#include <fmt/format.h>

namespace apigw::server {
namespace asio = boost::asio;

unsigned effective_workers(unsigned configured) {
  if (configured > 0) return configured;
  const unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : cores;
}

Gateway::Gateway(const config::SnapshotPtr& snapshot, core::AccessLog& access_log) : snapshot_(snapshot) {
  const config::ServerConfig& server = snapshot_->config.server;
  boost::system::error_code error;
  std::string host = server.listen.host;
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  const auto address = asio::ip::make_address(host, error);
  if (error) throw std::runtime_error(fmt::format("server.listen: '{}' is not an IP address", server.listen.host));
  const asio::ip::tcp::endpoint endpoint(address, server.listen.port);
  const unsigned count = effective_workers(server.workers);
  for (unsigned i = 0; i < count; ++i) {
    auto worker = std::make_unique<Worker>(i, access_log);
    try {
      worker->listen(endpoint);
    } catch (const boost::system::system_error& bind_error) {
      throw std::runtime_error(
          fmt::format("cannot listen on {}: {}", server.listen.text(), bind_error.code().message()));
    }
    workers_.push_back(std::move(worker));
  }
}

Gateway::~Gateway() { drain_and_join(); }

void Gateway::start() {
  for (auto& worker : workers_) worker->start(snapshot_);
}

void Gateway::drain_and_join() {
  for (auto& worker : workers_) worker->drain();
  for (auto& worker : workers_) worker->join();
}

}  // namespace apigw::server
