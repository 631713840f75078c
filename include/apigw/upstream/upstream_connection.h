// One keep-alive connection to one upstream endpoint: its socket and read buffer. Owned by exactly one party at
// a time: the pool while idle, the forwarding request while leased.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "apigw/net/socket_io.h"

namespace apigw::upstream {

// Bytes read from an upstream at a time: a typical API response arrives in one read.
inline constexpr std::size_t kUpstreamReadSize = 16 * 1024;

struct UpstreamConnection : net::Connection {
  UpstreamConnection(const boost::asio::any_io_executor& executor, std::size_t endpoint_index)
      : net::Connection(executor), endpoint(endpoint_index) {
    buffer.reserve(kUpstreamReadSize);
  }

  boost::beast::flat_buffer buffer;
  std::size_t endpoint = 0;        // index into the upstream's endpoints
  std::uint64_t requests = 0;      // requests completed on this connection
  std::chrono::steady_clock::time_point idle_since{};
  bool watched = false;            // idle, with a readiness wait that notices the upstream closing it
};

// Shared only so that the idle watch can tell, through a weak reference, whether the connection still exists.
using UpstreamConnectionPtr = std::shared_ptr<UpstreamConnection>;

}  // namespace apigw::upstream
