// One client connection: the HTTP/1.1 protocol and nothing else. It reads requests (keep-alive, pipelining),
// enforces the head and body limits, checks each head, hands the request to the worker's pipeline
// (src/server/pipeline.h: routing, the stages, the forwarder), writes the replies the pipeline comes to, logs
// each request, and drains. Lives on one worker thread; its
// lifetime is its shared_from_this() chain. Between two requests of a busy client it waits in its coroutine
// (hot); once quiet for two sweeps it holds its socket and one readiness wait, nothing else (cold). The read
// buffer and the parser come from the worker's pool when a request's first byte arrives. Reading
// `start()`, `on_readable()` and `serve_requests()` top to bottom (src/server/client_session.cpp) reads the
// protocol; the answers it writes are in src/server/client_replies.cpp.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "apigw/cache/cached_response.h"
#include "apigw/core/deadline.h"
#include "apigw/http/client_address.h"
#include "apigw/http/local_reply.h"
#include "apigw/net/socket_io.h"
#include "apigw/proxy/forwarder.h"

namespace apigw::server {

class Worker;
struct RequestContext;
struct RequestState;

// The client connection's peer, as the session found it when it accepted the connection.
struct ClientPeer {
  std::string address;  // text, IPv4-mapped IPv6 shown as IPv4
  http::IpBytes ip;
};

class ClientSession : public std::enable_shared_from_this<ClientSession> {
 public:
  ClientSession(Worker& worker, boost::asio::ip::tcp::socket socket);
  ~ClientSession();
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  // Waits for the first request. The session then serves requests until the client leaves, a limit or error
  // ends the connection, or the worker drains.
  void start();

  // Called by the worker's sweeper: cancels the pending operation once the deadline has passed.
  void check_deadline(core::Deadline::Clock::time_point now);
  // Called during a drain, after the idle grace: an idle connection is closed now (a busy one closes after its
  // response, which says Connection: close).
  void on_drain();
  // Called when the drain timeout ends: the connection is closed whatever it is doing.
  void force_close();

 private:
  struct HeadResult {
    enum class Kind { kHead, kReply, kClosed };
    Kind kind = Kind::kClosed;
    std::size_t length = 0;     // kHead: bytes of the head in buffer_
    unsigned status = 0;        // kReply
    std::string_view message;   // kReply
  };
  // Idle: waits for the next request's first byte with nothing allocated for it but the wait.
  void wait_idle();
  void on_readable(const boost::system::error_code& error);
  // A TLS listener's handshake, as far as the socket allows: true once it is done; otherwise it waits for the
  // socket again (or, failed, closes the connection) and returns false.
  bool continue_handshake();
  // Busy: serves the requests that arrive back to back, until the connection goes idle or ends.
  // Returns true when the connection is idle and stays open.
  boost::asio::awaitable<bool> serve_requests();
  void log_failure(const std::exception_ptr& failure);
  // Between two requests: true when the next one's bytes are here already (read without waiting).
  bool next_request_buffered();
  // Between two requests, hot: the coroutine waits for the next request's first byte, holding no request state,
  // until the sweeper finds the connection quiet for kHotSweeps sweeps and sends it cold (frameless, go_idle).
  // A busy client's next request so costs no new coroutine. Only a connection that served kHotAfter requests waits
  // hot.
  enum class HotWait { kRequest, kCold, kClosed };
  boost::asio::awaitable<HotWait> wait_hot();
  // Gives the request state back to the worker's pool and waits for the next request.
  void go_idle();
  void close();
  boost::asio::awaitable<HeadResult> read_head();
  // One request: its head read, parsed and checked, then the worker's pipeline, then the answer it came to.
  boost::asio::awaitable<bool> serve_request();
  // Parses the head (`length` bytes in the buffer) and checks it; false when it is refused (context.reply then
  // says why).
  bool parse_head(RequestContext& context, std::size_t length);
  boost::asio::awaitable<bool> finish_forwarded(RequestContext& context, const proxy::ForwardResult& result);
  // Answers with a stored response (or 304 when the request's conditions match it).
  boost::asio::awaitable<bool> send_stored(RequestContext& context, const cache::CachedResponse& stored);
  boost::asio::awaitable<void> send_reply(RequestContext& context, http::LocalReply reply);
  boost::asio::awaitable<void> close_gracefully(bool drain_input);

  Worker& worker_;
  net::Connection client_;
  std::unique_ptr<RequestState> state_;  // while a request is read or served; null while idle
  core::Deadline deadline_;
  proxy::UpstreamDeadline upstream_deadline_;  // the upstream exchange in progress, if any
  ClientPeer peer_;
  bool idle_ = false;    // waiting for the first byte of a request (or, over TLS, for the handshake)
  bool handshaking_ = false;  // a TLS listener's handshake is not done yet
  bool closed_ = false;
  bool kept_alive_ = false;  // served a request already: the next one starts under idle_timeout
  bool hot_ = false;         // waiting in wait_hot()
  bool cooling_ = false;     // the sweeper cancelled the hot wait
  unsigned hot_sweeps_ = 0;  // sweeps seen while hot
  unsigned served_ = 0;      // requests served, counted up to kHotAfter
};

}  // namespace apigw::server
