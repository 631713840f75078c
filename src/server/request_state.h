// What a client connection holds only while a request is being read or served: the read buffer, the request
// parser, the request's context and the forwarder's buffers. An idle keep-alive connection holds none of it; it is
// taken from its worker's pool when the first byte of a request arrives and given back when the response is
// written. Worker thread only.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <optional>
#include <vector>

#include <boost/beast/core/flat_buffer.hpp>

#include "apigw/proxy/forwarder.h"
#include "request_context.h"

namespace apigw::server {

struct RequestState {
  boost::beast::flat_buffer buffer;
  std::optional<proxy::RequestParser> parser;
  // The request being served: kept here rather than in the coroutine frames, so that those stay small enough for
  // malloc's per-thread cache (it keeps no block over 1,032 bytes: larger ones take malloc's slower path).
  std::optional<RequestContext> context;
  // The forwarder's heads and response reader, reused by the connection's next request.
  proxy::ExchangeBuffers exchange;
};
using RequestStatePtr = std::unique_ptr<RequestState>;

// A free list of request states, so that a busy worker reuses buffers instead of allocating one per request. It
// holds what the busiest recent moment needed, up to a bound, never a buffer per idle connection: trim() frees the
// spare states that went unused since the last trim.
class RequestStatePool {
 public:
  static constexpr std::size_t kMaxSpare = 256;
  // A buffer (or a head) that grew past this for one large request is shrunk before it is kept.
  static constexpr std::size_t kMaxKeptCapacity = 16 * 1024;
  static_assert(kMaxSpare > 0);

  RequestStatePtr acquire() {
    if (spare_.empty()) return std::make_unique<RequestState>();
    RequestStatePtr state = std::move(spare_.back());
    spare_.pop_back();
    low_water_ = std::min(low_water_, spare_.size());
    return state;
  }

  // `state`'s buffer must hold no unread bytes: they belong to the connection, which keeps the state then.
  void release(RequestStatePtr state) {
    if (spare_.size() >= kMaxSpare) return;
    state->context.reset();
    state->exchange.trim(kMaxKeptCapacity);
    state->parser.reset();
    state->buffer.clear();
    if (state->buffer.capacity() > kMaxKeptCapacity) state->buffer.shrink_to_fit();
    spare_.push_back(std::move(state));
  }

  // Frees the spare states no acquire() needed since the last trim (the worker calls it about once a second).
  void trim() {
    spare_.erase(spare_.begin(), spare_.begin() + static_cast<std::ptrdiff_t>(std::min(low_water_, spare_.size())));
    low_water_ = spare_.size();
  }

  std::size_t spare() const { return spare_.size(); }

 private:
  std::vector<RequestStatePtr> spare_;
  std::size_t low_water_ = 0;  // the fewest spare states since the last trim
};

}  // namespace apigw::server
