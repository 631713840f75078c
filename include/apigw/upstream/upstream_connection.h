// One keep-alive connection to one upstream endpoint: its stream and read buffer. Owned by exactly one party at
// a time: the pool while idle, the forwarding request while leased.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

namespace apigw::upstream {

struct UpstreamConnection {
  explicit UpstreamConnection(const boost::asio::any_io_executor& executor, std::size_t endpoint_index)
      : stream(executor), endpoint(endpoint_index) {}

  boost::beast::tcp_stream stream;
  boost::beast::flat_buffer buffer;
  std::size_t endpoint = 0;        // index into the upstream's endpoints
  std::uint64_t requests = 0;      // requests completed on this connection
  std::chrono::steady_clock::time_point idle_since{};
};

using UpstreamConnectionPtr = std::unique_ptr<UpstreamConnection>;

}  // namespace apigw::upstream
