// One request's state on its way through the pipeline (see pipeline.h): what the session read (the head, the
// checked target, the request id), what each stage decided (route, user, cache state, affinity bucket, the
// upstream that serves it, the shadow copy), what the forwarder is given (observers), and what the access log
// line reports. Lives in the request's pooled RequestState (request_state.h) for the length of one request.
#pragma once

#include <array>
#include <cassert>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "apigw/core/deadline.h"
#include "apigw/http/client_address.h"
#include "apigw/http/local_reply.h"
#include "apigw/http/request_checks.h"
#include "apigw/http/request_id.h"
#include "apigw/migration/shadow_copy.h"
#include "apigw/proxy/forwarder.h"
#include "apigw/routing/route_trie.h"
#include "apigw/server/client_session.h"
#include "apigw/server/worker.h"
#include "apigw/tracing/request_trace.h"
#include "cache_fill.h"

namespace apigw::server {

// The response observers of one request, in stage order: at most one per stage, which the capacity covers.
class ObserverList {
 public:
  void add(proxy::ResponseObserver* observer) {
    assert(size_ < items_.size());
    if (observer != nullptr) items_[size_++] = observer;
  }
  std::span<proxy::ResponseObserver* const> view() const { return {items_.data(), size_}; }

 private:
  std::array<proxy::ResponseObserver*, 4> items_{};
  std::size_t size_ = 0;
};

struct RequestContext {
  RequestContext(Worker& owner, const ClientPeer& client_peer, proxy::ExchangeBuffers& buffers)
      : worker(owner), peer(client_peer), exchange_buffers(buffers) {}
  RequestContext(const RequestContext&) = delete;
  RequestContext& operator=(const RequestContext&) = delete;

  Worker& worker;
  const ClientPeer& peer;
  core::Deadline::Clock::time_point start = core::Deadline::Clock::now();
  GenerationPtr generation;  // what the request is served with, whatever reloads happen meanwhile
  const config::Snapshot* snapshot = nullptr;

  // The session: the head as read and checked.
  http::RequestId request_id;
  std::string_view method = "-";
  std::string_view target = "-";
  http::CheckedRequest checked;
  std::optional<proxy::ClientSide> client;  // once the head is parsed and checked

  // Routing: the route, and the upstream that serves the request (the route's, or the split's).
  const config::Route* route = nullptr;
  std::uint32_t route_index = 0;
  std::array<routing::PathParam, routing::kMaxParams> params{};  // the route's path parameters (views of the path)
  std::size_t param_count = 0;
  std::size_t serving = 0;     // snapshot upstream index
  std::string_view upstream;   // its name

  // Stages.
  std::string user;      // the user id auth resolved; empty when anonymous
  std::string token_id;  // the token's fingerprint, for the log
  std::optional<std::uint32_t> bucket;  // the affinity bucket, once a migration stage needed it
  std::optional<bool> split_moved;      // set by the split stage: served by the split's upstream, or the route's
  CacheState cache;
  std::shared_ptr<const cache::CachedResponse> stored;  // the cache's answer
  std::shared_ptr<migration::ShadowCopy> shadow;       // the copy for the shadow side
  ObserverList observers;
  std::string rate_limit_headers;  // RateLimit and RateLimit-Policy lines for the answer (the rate-limit stage)
  proxy::RequestObserver* request_observer = nullptr;

  // The forward: what the forwarder is given, and the forwarder (kept here for the frame sizes, see RequestState).
  proxy::ForwardRequest forward;
  std::optional<proxy::Forwarder> forwarder;
  proxy::ExchangeBuffers& exchange_buffers;  // the forwarder's, kept by the request state between requests

  // A reply that ended the way in, and the text behind its message.
  http::LocalReply reply;
  std::string reply_message;

  // Tracing (a `tracing` section): the request's trace and, for a sampled request whose spans are exported, when
  // each stage it went through was done and when the forward ran.
  tracing::RequestTrace trace;
  bool spans = false;  // the request's spans are exported
  struct StageMark {
    std::string_view stage;
    core::Deadline::Clock::time_point done;
  };
  std::array<StageMark, 8> stage_marks{};
  std::size_t stage_mark_count = 0;
  core::Deadline::Clock::time_point forward_start{};
  core::Deadline::Clock::time_point forward_end{};

  // What the access log line reports.
  unsigned status = 0;
  std::string_view error;  // the "error" code of a reply apigw made itself
  std::uint64_t bytes = 0;
  std::string_view endpoint;

  const proxy::RequestParser& parser() const { return client->parser; }
  const proxy::RequestParser::value_type& request() const { return client->parser.get(); }
  std::string_view path() const { return checked.target.path; }
  RouteStats& route_stats() const { return *generation->route_stats[route_index]; }
  upstream::UpstreamPool& pool() const { return *generation->pools[serving]; }
};

// The client's address: the one a trusted proxy forwarded (X-Forwarded-For, X-Real-IP), else the TCP peer's.
inline std::string client_address(const RequestContext& context) {
  std::string client;
  if (context.snapshot->trusted_proxies.contains(context.peer.ip)) client = http::forwarded_client(context.request());
  if (client.empty()) client = context.peer.address;
  return client;
}

}  // namespace apigw::server
