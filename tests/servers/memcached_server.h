// Real memcached processes for a test: each on a free loopback port, TCP only, stopped (or paused) by its PID; and a
// blocking text-protocol peek at one server, to see where a key really lives.
#pragma once

#include <unistd.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "redis_server.h"  // free_port, loopback_address, ServerProcess

namespace apigw::test_servers {

class MemcachedServer {
 public:
  explicit MemcachedServer(std::vector<std::string> extra = {}, std::uint16_t port = 0)
      : port_(port ? port : free_port()), extra_(std::move(extra)) {
    start();
  }

  std::uint16_t port() const { return port_; }

  void start() {
    std::vector<std::string> args{"memcached", "-l", "127.0.0.1", "-p", std::to_string(port_), "-U", "0",
                                  "-t", "1", "-m", "64"};
    if (::geteuid() == 0) args.insert(args.end(), {"-u", "root"});  // memcached refuses root without -u
    args.insert(args.end(), extra_.begin(), extra_.end());
    process_.start(std::move(args), port_);
  }

  // SIGKILL by PID, then reap: the server dies as a crashed one would, with all its items.
  void stop() { process_.stop(); }

  // SIGSTOP: connections stay open (and new ones complete in the kernel) but nothing is answered until resume().
  // Returns once the server has stopped.
  void pause() { process_.pause(); }
  void resume() { process_.resume(); }

  // `get <key>` over a fresh blocking connection (1 s limit): the value, or nullopt on a miss. Throws when the
  // server cannot be asked.
  std::optional<std::string> peek(const std::string& key) const {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval limit{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    const sockaddr_in address = loopback_address(port_);
    const std::string request = "get " + key + "\r\n";
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
        ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
      ::close(fd);
      throw std::runtime_error("cannot ask memcached on port " + std::to_string(port_));
    }
    std::string reply;
    char buffer[4096];
    while (!reply.ends_with("END\r\n")) {
      const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      reply.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    if (reply == "END\r\n") return std::nullopt;
    // VALUE <key> <flags> <bytes>\r\n<data>\r\nEND\r\n
    const std::size_t line_end = reply.find("\r\n");
    if (!reply.starts_with("VALUE ") || line_end == std::string::npos || !reply.ends_with("\r\nEND\r\n")) {
      throw std::runtime_error("unexpected reply from memcached: " + reply.substr(0, 80));
    }
    return reply.substr(line_end + 2, reply.size() - line_end - 2 - 7);
  }

 private:
  std::uint16_t port_;
  std::vector<std::string> extra_;
  ServerProcess process_;
};

}  // namespace apigw::test_servers
