// Forwarder::run between a loopback client connection and a loopback upstream: responses relayed whole, streamed
// and re-chunked, request bodies held whole and streamed, the observers, keep-alive and drains, the retries, and
// upstreams that cannot be reached, do not answer in time, answer 101 or fail mid-body.
#include "apigw/proxy/forwarder.h"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include "apigw/config/config.h"
#include "apigw/config/snapshot.h"
#include "apigw/core/metrics.h"
#include "apigw/net/socket_io.h"
#include "apigw/upstream/health.h"
#include "apigw/upstream/upstream_pool.h"
#include "apigw/upstream/upstream_stats.h"
#include "coroutine_test.h"
#include "loopback_peer.h"

namespace apigw::proxy {
namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using boost::system::error_code;
using test_servers::listen_on_loopback;
using test_servers::run;
using test_servers::wait_until;
using tcp = asio::ip::tcp;

// --- the upstream ---

struct Received {
  bhttp::request<bhttp::string_body> message;
  bool chunked = false;
};

// What the upstream sends back for one request, and what it does to the connection then.
struct Answer {
  std::string bytes;
  bool close = false;                 // an orderly close after the bytes
  bool hold = false;                  // nothing more: the connection stays open until either end closes it
  std::function<bool()> reset_when;  // once this holds, the connection is reset
};

// An upstream on loopback that parses every request on every connection it accepts and answers each one as the
// test says. Its state is shared with its coroutines, which may run after the test's frame is gone.
class Upstream {
 public:
  explicit Upstream(const asio::any_io_executor& executor, std::function<Answer(const Received&)> answer)
      : state_(std::make_shared<State>(listen_on_loopback(executor), std::move(answer))) {
    asio::co_spawn(executor, accept_loop(state_), asio::detached);
  }
  ~Upstream() {
    error_code ignored;
    state_->acceptor.close(ignored);
    for (const auto& socket : state_->connections) socket->close(ignored);
  }

  tcp::endpoint endpoint() const { return state_->acceptor.local_endpoint(); }
  std::size_t accepted() const { return state_->connections.size(); }
  const std::vector<Received>& requests() const { return state_->requests; }
  // Closes the upstream's end of an accepted connection.
  void close_connection(std::size_t index) { state_->connections.at(index)->close(); }

 private:
  struct State {
    State(tcp::acceptor a, std::function<Answer(const Received&)> f) : acceptor(std::move(a)), answer(std::move(f)) {}
    tcp::acceptor acceptor;
    std::function<Answer(const Received&)> answer;
    std::vector<std::shared_ptr<tcp::socket>> connections;
    std::vector<Received> requests;
  };

  static asio::awaitable<void> accept_loop(std::shared_ptr<State> state) {
    for (;;) {
      auto [error, socket] = co_await state->acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (error) co_return;
      state->connections.push_back(std::make_shared<tcp::socket>(std::move(socket)));
      asio::co_spawn(state->acceptor.get_executor(), serve(state, state->connections.back()), asio::detached);
    }
  }

  static asio::awaitable<void> serve(std::shared_ptr<State> state, std::shared_ptr<tcp::socket> socket) {
    beast::flat_buffer buffer;
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(16 * 1024 * 1024);
      auto [error, n] = co_await bhttp::async_read(*socket, buffer, parser, asio::as_tuple(asio::use_awaitable));
      if (error) co_return;
      Received received;
      received.chunked = parser.chunked();
      received.message = parser.release();
      state->requests.push_back(std::move(received));
      const Answer answer = state->answer(state->requests.back());
      if (!co_await test_servers::write_text(*socket, answer.bytes)) co_return;
      if (answer.reset_when) {
        co_await wait_until(socket->get_executor(), answer.reset_when);
        test_servers::reset(*socket);
        co_return;
      }
      if (answer.close) {
        socket->close();
        co_return;
      }
      if (answer.hold) {
        co_await test_servers::read_until_eof(*socket);
        co_return;
      }
    }
  }

  std::shared_ptr<State> state_;
};

std::function<Answer(const Received&)> always(std::string bytes) {
  return [bytes](const Received&) {
    Answer answer;
    answer.bytes = bytes;
    return answer;
  };
}

// --- the observers ---

class RecordingObserver final : public ResponseObserver {
 public:
  void on_head(unsigned s, std::span<const http::ResponseParser::Field> fields) override {
    status = s;
    ++heads;
    field_count = fields.size();
  }
  void on_body(std::string_view bytes) override { body.append(bytes); }
  void on_complete() override { ++completes; }

  unsigned status = 0;
  int heads = 0;
  std::size_t field_count = 0;
  std::string body;
  int completes = 0;
};

class RecordingRequestObserver final : public RequestObserver {
 public:
  void on_request_body(std::string_view bytes) override { body.append(bytes); }
  void on_request_sent(std::string_view head) override { sent_heads.emplace_back(head); }

  std::string body;
  std::vector<std::string> sent_heads;
};

// --- the gateway ---

struct ClientResponse {
  error_code error;
  std::size_t bytes = 0;  // the response's bytes, head and body
  bhttp::response<bhttp::string_body> message;
  bool chunked = false;
};

// One client connection through the gateway to a pool over `upstream`, as a session drives the Forwarder: the
// gateway's end of the client connection with its buffer, parser and deadlines, and the client's end.
class Gateway {
 public:
  Gateway(const asio::any_io_executor& executor, const std::vector<tcp::endpoint>& endpoints)
      : listener_(listen_on_loopback(executor)), client(executor), gateway_(executor) {
    upstream_.config.name = "backend";
    upstream_.config.connect_timeout = std::chrono::seconds(5);
    for (const tcp::endpoint& endpoint : endpoints) {
      config::ResolvedEndpoint resolved;
      resolved.address = endpoint.address().to_string();
      resolved.port = endpoint.port();
      resolved.host = resolved.address;
      resolved.text = resolved.address + ":" + std::to_string(resolved.port);
      upstream_.endpoints.push_back(resolved);
      health_.push_back(std::make_shared<upstream::EndpointHealth>("backend", resolved.text));
    }
    pool = std::make_unique<upstream::UpstreamPool>(executor, upstream_, health_, stats);
    route_.name = "items";
  }

  asio::awaitable<void> connect() {
    co_await client.async_connect(listener_.local_endpoint(), asio::use_awaitable);
    gateway_.socket = co_await listener_.async_accept(asio::use_awaitable);
  }

  // The client sends `request` (from another coroutine when `concurrently`: a body larger than the socket buffers
  // can only go while the gateway reads it); the gateway parses its head and forwards it. `before_run` runs just
  // before the Forwarder does, with no turn of the loop in between.
  asio::awaitable<ForwardResult> forward(std::string request, bool concurrently = false,
                                         std::function<void()> before_run = {}) {
    if (concurrently) {
      asio::co_spawn(client.get_executor(), test_servers::write_text(client, std::move(request)), asio::detached);
    } else {
      EXPECT_TRUE(co_await test_servers::write_text(client, std::move(request)));
    }
    parser_.emplace();
    while (!parser_->is_header_done()) {
      if (const error_code error = co_await net::parse_some(gateway_, buffer_, *parser_, 16 * 1024)) {
        ADD_FAILURE() << "request head: " << error.message();
        co_return ForwardResult{};
      }
    }
    const auto& request_head = parser_->get();
    const std::string_view target = request_head.target();
    forward_ = ForwardRequest{};
    forward_.route = &route_;
    forward_.request_id = "gw-request-1";
    forward_.path = target.substr(0, target.find('?'));
    forward_.has_query = target.find('?') != std::string_view::npos;
    if (forward_.has_query) forward_.query = target.substr(target.find('?') + 1);
    if (const auto host = request_head.find(bhttp::field::host); host != request_head.end()) {
      forward_.host = host->value();
    }
    forward_.peer_address = "127.0.0.1";
    forward_.keep_alive = request_head.keep_alive();
    forward_.observers = std::span<ResponseObserver* const>(observers_.data(), observers_.size());
    forward_.request_observer = &request_observer;
    Forwarder forwarder(ClientSide{gateway_, buffer_, *parser_, deadline_, std::chrono::seconds(10),
                                   std::chrono::seconds(10), 16 * 1024, upstream_deadline_, draining_, closed_},
                        forward_, *pool, exchange_buffers_);
    if (before_run) before_run();
    co_return co_await forwarder.run();
  }

  // Reads one response at the client.
  asio::awaitable<ClientResponse> response(bool head_request = false) {
    ClientResponse out;
    bhttp::response_parser<bhttp::string_body> parser;
    if (head_request) parser.skip(true);
    std::tie(out.error, out.bytes) =
        co_await bhttp::async_read(client, client_buffer_, parser, asio::as_tuple(asio::use_awaitable));
    out.chunked = parser.is_header_done() && parser.chunked();
    out.message = parser.release();
    co_return out;
  }

  // The worker begins to drain.
  void start_draining() { draining_ = true; }
  // The session's client connection was closed under the exchange (the drain timeout).
  void mark_closed() { closed_ = true; }

  // What the worker's sweeper does at `now`: an upstream wait past its deadline is cancelled.
  void sweep(core::Deadline::Clock::time_point now) { upstream_deadline_.check(now); }


  // Everything the client receives until the gateway's end closes.
  asio::awaitable<std::string> client_bytes() {
    std::string out(static_cast<const char*>(client_buffer_.data().data()), client_buffer_.size());
    client_buffer_.clear();
    for (;;) {
      char bytes[4096];
      auto [error, n] = co_await client.async_read_some(asio::buffer(bytes), asio::as_tuple(asio::use_awaitable));
      if (error) co_return out;
      out.append(bytes, n);
    }
  }

  // The gateway ends the client connection, as the session does after a response without keep-alive.
  void close_client_side() {
    error_code ignored;
    gateway_.socket.shutdown(tcp::socket::shutdown_send, ignored);
  }

  std::uint64_t errors(upstream::UpstreamError kind) const {
    return stats.errors[static_cast<std::size_t>(kind)]->value();
  }

  core::MetricsRegistry registry;
  upstream::UpstreamStats stats{registry, "backend"};
  RecordingObserver observer;
  RecordingRequestObserver request_observer;

 private:
  config::Upstream upstream_;
  std::vector<upstream::EndpointHealthPtr> health_;
  config::Route route_;
  tcp::acceptor listener_;

 public:
  std::unique_ptr<upstream::UpstreamPool> pool;
  tcp::socket client;

 private:
  net::Connection gateway_;
  beast::flat_buffer buffer_;
  std::optional<RequestParser> parser_;
  core::Deadline deadline_;
  UpstreamDeadline upstream_deadline_;
  bool draining_ = false;
  bool closed_ = false;
  std::array<ResponseObserver*, 1> observers_{&observer};
  ForwardRequest forward_;
  ExchangeBuffers exchange_buffers_;  // shared by the fixture's forwards, as a connection's requests share them
  beast::flat_buffer client_buffer_;
};

std::string header(const ClientResponse& response, std::string_view name) {
  const auto it = response.message.find(name);
  return it == response.message.end() ? "<absent>" : std::string(it->value());
}

std::string header(const Received& request, std::string_view name) {
  const auto it = request.message.find(name);
  return it == request.message.end() ? "<absent>" : std::string(it->value());
}

TEST(Forwarder, ASmallGetIsRelayedWholeAndTheUpstreamConnectionKept) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    Upstream upstream(executor, always("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n"
                                       "X-Request-Id: from-upstream\r\n\r\nhello"));
    Gateway gateway(executor, {upstream.endpoint()});
    co_await gateway.connect();

    const ForwardResult result =
        co_await gateway.forward("GET /items?page=2 HTTP/1.1\r\nHost: api.example.com\r\nX-Request-Id: mine\r\n\r\n");
    EXPECT_EQ(result.kind, ForwardResult::Kind::kResponded);
    EXPECT_EQ(result.status, 200u);
    EXPECT_TRUE(result.keep_alive);
    EXPECT_EQ(result.endpoint, "127.0.0.1:" + std::to_string(upstream.endpoint().port()));
    const ClientResponse response = co_await gateway.response();
    CO_ASSERT_OK(response.error);
    EXPECT_EQ(result.bytes, response.bytes);
    EXPECT_EQ(response.message.result_int(), 200);
    EXPECT_EQ(response.message.body(), "hello");
    EXPECT_EQ(header(response, "X-Request-Id"), "gw-request-1");
    EXPECT_EQ(header(response, "Content-Length"), "5");
    EXPECT_EQ(header(response, "Content-Type"), "text/plain");
    EXPECT_EQ(header(response, "X-Apigw-Route"), "items");
    EXPECT_TRUE(response.message.keep_alive());

    CO_ASSERT(upstream.requests().size() == 1);
    const Received& sent = upstream.requests()[0];
    EXPECT_EQ(sent.message.target(), "/items?page=2");
    EXPECT_EQ(header(sent, "X-Request-Id"), "gw-request-1");
    EXPECT_EQ(header(sent, "X-Forwarded-For"), "127.0.0.1");
    EXPECT_EQ(header(sent, "Host"), "api.example.com");

    EXPECT_EQ(gateway.observer.status, 200u);
    EXPECT_EQ(gateway.observer.heads, 1);
    EXPECT_EQ(gateway.observer.field_count, 3u);  // the upstream's own fields
    EXPECT_EQ(gateway.observer.body, "hello");
    EXPECT_EQ(gateway.observer.completes, 1);
    CO_ASSERT(gateway.request_observer.sent_heads.size() == 1);
    EXPECT_EQ(gateway.request_observer.sent_heads[0].rfind("GET /items?page=2 HTTP/1.1\r\n", 0), 0u);
    EXPECT_EQ(gateway.request_observer.body, "");

    // The next request on the client connection goes over the same upstream connection, and its heads (built in
    // the buffers the first one used) carry nothing of the first.
    const ForwardResult again = co_await gateway.forward("GET /items HTTP/1.1\r\nHost: api.example.com\r\n\r\n");
    EXPECT_EQ(again.kind, ForwardResult::Kind::kResponded);
    const ClientResponse second = co_await gateway.response();
    EXPECT_EQ(second.message.body(), "hello");
    EXPECT_EQ(second.message.count("X-Request-Id"), 1u);
    EXPECT_EQ(second.message.count("Content-Length"), 1u);
    CO_ASSERT(upstream.requests().size() == 2);
    EXPECT_EQ(upstream.accepted(), 1u);
    const Received& next = upstream.requests()[1];
    EXPECT_EQ(next.message.target(), "/items");
    EXPECT_EQ(next.message.count("X-Forwarded-For"), 1u);
    EXPECT_EQ(next.message.count("Host"), 1u);
  });
}

TEST(Forwarder, ADrainThatBeganDuringTheRequestEndsTheClientConnectionAfterTheResponse) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    Upstream upstream(executor, always("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    Gateway gateway(executor, {upstream.endpoint()});
    co_await gateway.connect();
    const ForwardResult result = co_await gateway.forward("GET /a HTTP/1.1\r\nHost: a\r\n\r\n", false,
                                                          [&] { gateway.start_draining(); });
    EXPECT_EQ(result.kind, ForwardResult::Kind::kResponded);
    EXPECT_FALSE(result.keep_alive);
    const ClientResponse response = co_await gateway.response();
    CO_ASSERT_OK(response.error);
    EXPECT_EQ(header(response, "Connection"), "close");
    EXPECT_EQ(response.message.body(), "ok");
    // The upstream connection does not depend on the client's: it stays in the pool.
    EXPECT_EQ(gateway.stats.connections.value(), 1);
  });
}

TEST(Forwarder, AClientClosedWhileAConnectionWasFoundSendsNothingUpstream) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    Upstream upstream(executor, always("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    Gateway gateway(executor, {upstream.endpoint()});
    co_await gateway.connect();
    const ForwardResult result = co_await gateway.forward("GET /a HTTP/1.1\r\nHost: a\r\n\r\n", false,
                                                          [&] { gateway.mark_closed(); });
    EXPECT_EQ(result.kind, ForwardResult::Kind::kAbort);
    EXPECT_EQ(result.bytes, 0u);
    EXPECT_EQ(gateway.observer.heads, 0);
    EXPECT_TRUE(gateway.request_observer.sent_heads.empty());
    // The unused connection went back to the pool, open.
    EXPECT_EQ(gateway.stats.connections.value(), 1);
    EXPECT_FALSE(gateway.pool->lease_idle().pending());
    EXPECT_TRUE(upstream.requests().empty());
  });
}

TEST(Forwarder, AChunkedUpstreamResponseIsRechunkedForAnHttp11Client) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    Upstream upstream(executor, always("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                       "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n"));
    Gateway gateway(executor, {upstream.endpoint()});
    co_await gateway.connect();
    const ForwardResult result = co_await gateway.forward("GET /stream HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(result.kind, ForwardResult::Kind::kResponded);
    EXPECT_TRUE(result.keep_alive);
    const ClientResponse response = co_await gateway.response();
    CO_ASSERT_OK(response.error);
    EXPECT_TRUE(response.chunked);
    EXPECT_EQ(response.message.body(), "hello world");
    EXPECT_EQ(result.bytes, response.bytes);
    EXPECT_EQ(gateway.observer.body, "hello world");
    EXPECT_EQ(gateway.observer.completes, 1);

    // Read to its end, the chunked response left the upstream connection reusable.
    co_await gateway.forward("GET /stream HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ((co_await gateway.response()).message.body(), "hello world");
    EXPECT_EQ(upstream.accepted(), 1u);
  });
}

TEST(Forwarder, ABodyEndedByTheUpstreamsCloseIsRechunkedForAnHttp11Client) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    Upstream upstream(executor, [](const Received&) {
      Answer answer;
      answer.bytes = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the upstream closes";
      answer.close = true;
      return answer;
    });
    Gateway gateway(executor, {upstream.endpoint()});
    co_await gateway.connect();
    const ForwardResult result = co_await gateway.forward("GET /close HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(result.kind, ForwardResult::Kind::kResponded);
    EXPECT_TRUE(result.keep_alive);  // the client's connection does not end with the upstream's
    const ClientResponse response = co_await gateway.response();
    CO_ASSERT_OK(response.error);
    EXPECT_TRUE(response.chunked);
    EXPECT_EQ(response.message.body(), "until the upstream closes");
    EXPECT_EQ(gateway.observer.body, "until the upstream closes");
    EXPECT_EQ(gateway.observer.completes, 1);
    EXPECT_EQ(gateway.stats.connections.value(), 0);
  });
}

TEST(Forwarder, ABodyWithoutLengthEndsAnHttp10ClientsConnection) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    Upstream upstream(executor, always("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                       "5\r\nhello\r\n0\r\n\r\n"));
    Gateway gateway(executor, {upstream.endpoint()});
    co_await gateway.connect();
    const ForwardResult result =
        co_await gateway.forward("GET /old HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n");
    EXPECT_EQ(result.kind, ForwardResult::Kind::kResponded);
    EXPECT_FALSE(result.keep_alive);
    gateway.close_client_side();
    const ClientResponse response = co_await gateway.response();
    CO_ASSERT_OK(response.error);
    EXPECT_FALSE(response.chunked);
    EXPECT_EQ(header(response, "Connection"), "close");
    EXPECT_EQ(header(response, "Content-Length"), "<absent>");
    EXPECT_EQ(response.message.body(), "hello");
  });
}

TEST(Forwarder, AResponseToHeadKeepsItsLengthAndHasNoBody) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    Upstream upstream(executor, always("HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n"));
    Gateway gateway(executor, {upstream.endpoint()});
    co_await gateway.connect();
    const ForwardResult result = co_await gateway.forward("HEAD /items HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(result.kind, ForwardResult::Kind::kResponded);
    EXPECT_TRUE(result.keep_alive);
    const ClientResponse response = co_await gateway.response(/*head_request=*/true);
    CO_ASSERT_OK(response.error);
    EXPECT_EQ(header(response, "Content-Length"), "42");
    EXPECT_EQ(result.bytes, response.bytes);
    EXPECT_EQ(gateway.observer.completes, 1);
    co_await gateway.forward("HEAD /items HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ((co_await gateway.response(true)).message.result_int(), 200);
    EXPECT_EQ(upstream.accepted(), 1u);
  });
}

TEST(Forwarder, APostWithASmallBodyReachesTheUpstreamWhole) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    Upstream upstream(executor, always("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"));
    Gateway gateway(executor, {upstream.endpoint()});
    co_await gateway.connect();
    const std::string body = R"({"name":"widget","size":3})";
    const ForwardResult result = co_await gateway.forward(
        "POST /items HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body);
    EXPECT_EQ(result.kind, ForwardResult::Kind::kResponded);
    EXPECT_EQ(result.status, 201u);
    EXPECT_TRUE(result.body_consumed);
    CO_ASSERT_OK((co_await gateway.response()).error);
    CO_ASSERT(upstream.requests().size() == 1);
    const Received& sent = upstream.requests()[0];
    EXPECT_EQ(sent.message.method(), bhttp::verb::post);
    EXPECT_FALSE(sent.chunked);
    EXPECT_EQ(header(sent, "Content-Length"), std::to_string(body.size()));
    EXPECT_EQ(header(sent, "Content-Type"), "application/json");
    EXPECT_EQ(sent.message.body(), body);
    EXPECT_EQ(gateway.request_observer.body, body);
    CO_ASSERT(gateway.request_observer.sent_heads.size() == 1);
    // The shadow's copy of the head leaves out the framing.
    EXPECT_EQ(gateway.request_observer.sent_heads[0].find("Content-Length"), std::string::npos);
    EXPECT_EQ(gateway.request_observer.sent_heads[0].find("\r\n\r\n"), std::string::npos);
  });
}

TEST(Forwarder, ExpectContinueIsAnsweredByTheGatewayAndTheBodyForwarded) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    Upstream upstream(executor, always("HTTP/1.1 204 No Content\r\n\r\n"));
    Gateway gateway(executor, {upstream.endpoint()});
    co_await gateway.connect();
    const ForwardResult result = co_await gateway.forward(
        "PUT /items/7 HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello");
    EXPECT_EQ(result.kind, ForwardResult::Kind::kResponded);
    EXPECT_EQ(result.status, 204u);
    const ClientResponse interim = co_await gateway.response();
    CO_ASSERT_OK(interim.error);
    EXPECT_EQ(interim.message.result_int(), 100);
    const ClientResponse final_response = co_await gateway.response();
    CO_ASSERT_OK(final_response.error);
    EXPECT_EQ(final_response.message.result_int(), 204);
    CO_ASSERT(upstream.requests().size() == 1);
    EXPECT_EQ(header(upstream.requests()[0], "Expect"), "<absent>");
    EXPECT_EQ(upstream.requests()[0].message.body(), "hello");
  });
}

// `count` chunks of `size` bytes, each of one letter, chunk-framed; `plain` gets the body without the framing.
std::string chunked_body(int count, std::size_t size, std::string& plain) {
  std::string framed;
  for (int i = 0; i < count; ++i) {
    const std::string chunk(size, static_cast<char>('a' + i % 26));
    plain += chunk;
    char size_line[32];
    std::snprintf(size_line, sizeof size_line, "%zx\r\n", size);
    framed += size_line + chunk + "\r\n";
  }
  return framed + "0\r\n\r\n";
}

TEST(Forwarder, AChunkedRequestBodyIsStreamedToTheUpstream) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    Upstream upstream(executor, always("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    Gateway gateway(executor, {upstream.endpoint()});
    co_await gateway.connect();
    std::string body;
    const std::string framed = chunked_body(20, 10000, body);  // more than one relay buffer
    const ForwardResult result = co_await gateway.forward(
        "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + framed, /*concurrently=*/true);
    EXPECT_EQ(result.kind, ForwardResult::Kind::kResponded);
    EXPECT_TRUE(result.body_consumed);
    const ClientResponse response = co_await gateway.response();
    CO_ASSERT_OK(response.error);
    EXPECT_EQ(response.message.body(), "ok");
    CO_ASSERT(upstream.requests().size() == 1);
    const Received& sent = upstream.requests()[0];
    EXPECT_TRUE(sent.chunked);
    EXPECT_EQ(header(sent, "Content-Length"), "<absent>");
    EXPECT_EQ(sent.message.body().size(), body.size());
    EXPECT_TRUE(sent.message.body() == body);
    EXPECT_TRUE(gateway.request_observer.body == body);
    CO_ASSERT(gateway.request_observer.sent_heads.size() == 1);
    EXPECT_EQ(gateway.request_observer.sent_heads[0].find("Transfer-Encoding"), std::string::npos);
  });
}

TEST(Forwarder, ALargeBodyWithALengthIsStreamedWithItsLength) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    Upstream upstream(executor, always("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    Gateway gateway(executor, {upstream.endpoint()});
    co_await gateway.connect();
    std::string body;
    for (int i = 0; body.size() < 100000; ++i) body += std::to_string(i) + ",";
    const ForwardResult result = co_await gateway.forward(
        "PUT /blob HTTP/1.1\r\nHost: a\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body,
        /*concurrently=*/true);
    EXPECT_EQ(result.kind, ForwardResult::Kind::kResponded);
    CO_ASSERT_OK((co_await gateway.response()).error);
    CO_ASSERT(upstream.requests().size() == 1);
    const Received& sent = upstream.requests()[0];
    EXPECT_FALSE(sent.chunked);
    EXPECT_EQ(header(sent, "Content-Length"), std::to_string(body.size()));
    EXPECT_TRUE(sent.message.body() == body);
  });
}

TEST(Forwarder, AStaleKeepAliveConnectionIsRetriedOnAFreshOneForGet) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    Upstream upstream(executor, always("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    Gateway gateway(executor, {upstream.endpoint()});
    co_await gateway.connect();
    EXPECT_EQ((co_await gateway.forward("GET /a HTTP/1.1\r\nHost: a\r\n\r\n")).kind, ForwardResult::Kind::kResponded);
    CO_ASSERT_OK((co_await gateway.response()).error);
    CO_ASSERT(upstream.accepted() == 1);
    // The upstream closes the idle connection just before the request is forwarded: the pool's watch has no turn
    // of the loop to notice, so the request goes out on the stale connection and fails without a response byte.
    const ForwardResult result = co_await gateway.forward("GET /b HTTP/1.1\r\nHost: a\r\n\r\n", false,
                                                          [&] { upstream.close_connection(0); });
    EXPECT_EQ(result.kind, ForwardResult::Kind::kResponded);
    EXPECT_EQ(result.status, 200u);
    const ClientResponse response = co_await gateway.response();
    CO_ASSERT_OK(response.error);
    EXPECT_EQ(response.message.body(), "ok");
    EXPECT_EQ(upstream.accepted(), 2u);
    CO_ASSERT(upstream.requests().size() == 2);
    EXPECT_EQ(upstream.requests()[1].message.target(), "/b");
    EXPECT_EQ(gateway.errors(upstream::UpstreamError::kReset), 1u);
  });
}

TEST(Forwarder, AStaleKeepAliveConnectionIsNotRetriedForPost) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    Upstream upstream(executor, always("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    Gateway gateway(executor, {upstream.endpoint()});
    co_await gateway.connect();
    EXPECT_EQ((co_await gateway.forward("GET /a HTTP/1.1\r\nHost: a\r\n\r\n")).kind, ForwardResult::Kind::kResponded);
    CO_ASSERT_OK((co_await gateway.response()).error);
    const ForwardResult result = co_await gateway.forward(
        "POST /orders HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", false,
        [&] { upstream.close_connection(0); });
    EXPECT_EQ(result.kind, ForwardResult::Kind::kLocalReply);
    EXPECT_EQ(result.status, 502u);
    EXPECT_TRUE(result.body_consumed);
    EXPECT_EQ(upstream.accepted(), 1u);
    EXPECT_EQ(upstream.requests().size(), 1u);
  });
}

TEST(Forwarder, AnUpstreamThatCannotBeReachedGetsA502AfterTheRetryBudget) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    tcp::endpoint closed;
    {
      auto listener = listen_on_loopback(executor);
      closed = listener.local_endpoint();
    }
    Gateway gateway(executor, {closed});
    co_await gateway.connect();
    const ForwardResult result = co_await gateway.forward("GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(result.kind, ForwardResult::Kind::kLocalReply);
    EXPECT_EQ(result.status, 502u);
    EXPECT_NE(result.message.find("cannot connect"), std::string::npos) << result.message;
    // retry_attempts is 1: the first try and one more, on the only endpoint there is.
    EXPECT_EQ(gateway.errors(upstream::UpstreamError::kConnect), 2u);
    EXPECT_EQ(gateway.observer.heads, 0);
  });
}

TEST(Forwarder, AnUpstreamResettingMidBodyAbortsTheClientResponse) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    std::unique_ptr<Gateway> gateway;
    // The reset waits until the gateway has the head, so that it cuts the body and not the head.
    Upstream upstream(executor, [&](const Received&) {
      Answer answer;
      answer.bytes = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + std::string(1000, 'x');
      answer.reset_when = [&] { return gateway->observer.heads == 1; };
      return answer;
    });
    gateway = std::make_unique<Gateway>(executor, std::vector<tcp::endpoint>{upstream.endpoint()});
    co_await gateway->connect();
    const ForwardResult result = co_await gateway->forward("GET /big HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(result.kind, ForwardResult::Kind::kAbort);
    EXPECT_EQ(result.status, 200u);
    EXPECT_EQ(gateway->observer.heads, 1);
    EXPECT_EQ(gateway->observer.completes, 0);
    EXPECT_LT(gateway->observer.body.size(), 100000u);
    EXPECT_EQ(gateway->errors(upstream::UpstreamError::kReset), 1u);
    EXPECT_EQ(gateway->stats.connections.value(), 0);
    // What reached the client is a head and a cut body, never a whole response.
    gateway->close_client_side();
    const ClientResponse response = co_await gateway->response();
    EXPECT_EQ(response.error, bhttp::error::partial_message) << response.error.message();
    gateway.reset();
  });
}

// An hour on: past any upstream deadline.
core::Deadline::Clock::time_point much_later() { return core::Deadline::Clock::now() + std::chrono::hours(1); }

// An answer that never comes: the upstream reads the request and holds the connection.
Answer silence() {
  Answer answer;
  answer.hold = true;
  return answer;
}

// An upstream that closes the connection without answering.
Answer hang_up() {
  Answer answer;
  answer.close = true;
  return answer;
}

constexpr const char* kSwitchingProtocols =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
// A request whose body streams (chunked), so it can be sent only once.
constexpr const char* kChunkedUpload =
    "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";

// What the worker's sweeper does once the upstream has the request and its timeout passes: the forwarder's wait
// for the answer is cancelled.
asio::awaitable<void> sweep_once_sent(asio::any_io_executor executor, Upstream& upstream, Gateway& gateway) {
  co_await wait_until(executor, [&] { return upstream.requests().size() == 1; });
  gateway.sweep(much_later());
}

TEST(Forwarder, AnUpstreamThatDoesNotAnswerInTimeGetsA504WithoutARetry) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    Upstream upstream(executor, [](const Received&) { return silence(); });
    Gateway gateway(executor, {upstream.endpoint()});
    co_await gateway.connect();
    asio::co_spawn(executor, sweep_once_sent(executor, upstream, gateway), asio::detached);
    const ForwardResult result = co_await gateway.forward("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(result.kind, ForwardResult::Kind::kLocalReply);
    EXPECT_EQ(result.status, 504u);
    EXPECT_EQ(upstream.accepted(), 1u);
    EXPECT_EQ(gateway.errors(upstream::UpstreamError::kTimeout), 1u);
    upstream.close_connection(0);
  });
}

TEST(Forwarder, SwitchingProtocolsFromTheUpstreamIsNeverRelayed) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    Upstream upstream(executor, always(kSwitchingProtocols));
    Gateway gateway(executor, {upstream.endpoint()});
    co_await gateway.connect();
    const ForwardResult result = co_await gateway.forward("GET /ws HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(result.kind, ForwardResult::Kind::kLocalReply);
    EXPECT_EQ(result.status, 502u);
    EXPECT_EQ(gateway.observer.heads, 0);
    EXPECT_EQ(upstream.accepted(), 2u);  // a GET is tried once more
    EXPECT_EQ(gateway.errors(upstream::UpstreamError::kBadResponse), 2u);
  });
}

TEST(Forwarder, AHeldBodysUpstreamClosingWithoutAnAnswerGetsA502) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    Upstream upstream(executor, [](const Received&) { return hang_up(); });
    Gateway gateway(executor, {upstream.endpoint()});
    co_await gateway.connect();
    const ForwardResult result =
        co_await gateway.forward("POST /orders HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc");
    EXPECT_EQ(result.kind, ForwardResult::Kind::kLocalReply);
    EXPECT_EQ(result.status, 502u);
    EXPECT_TRUE(result.body_consumed);
    EXPECT_EQ(gateway.observer.heads, 0);
  });
}

// With a streamed request body, a response head that then failed once came back as a response to relay (the
// outcome the body's streaming left in the attempt): these three keep it a failed attempt.
TEST(Forwarder, AStreamedBodysUpstreamClosingWithoutAnAnswerGetsA502) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    Upstream upstream(executor, [](const Received&) { return hang_up(); });
    Gateway gateway(executor, {upstream.endpoint()});
    co_await gateway.connect();
    const ForwardResult result = co_await gateway.forward(kChunkedUpload);
    EXPECT_EQ(result.kind, ForwardResult::Kind::kLocalReply);
    EXPECT_EQ(result.status, 502u);
    EXPECT_TRUE(result.body_consumed);
    EXPECT_EQ(gateway.observer.heads, 0) << "observers saw a head with status " << gateway.observer.status;
  });
}

TEST(Forwarder, AStreamedBodysUpstreamAnswering101GetsA502) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    Upstream upstream(executor, always(kSwitchingProtocols));
    Gateway gateway(executor, {upstream.endpoint()});
    co_await gateway.connect();
    const ForwardResult result = co_await gateway.forward(kChunkedUpload);
    EXPECT_EQ(result.kind, ForwardResult::Kind::kLocalReply);
    EXPECT_EQ(result.status, 502u);
    EXPECT_EQ(gateway.observer.heads, 0) << "observers saw a head with status " << gateway.observer.status;
    gateway.close_client_side();
    const std::string relayed = co_await gateway.client_bytes();
    EXPECT_EQ(relayed, "") << "the client got:\n" << relayed;
  });
}

TEST(Forwarder, AStreamedBodysUpstreamThatDoesNotAnswerInTimeGetsA504) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    Upstream upstream(executor, [](const Received&) { return silence(); });
    Gateway gateway(executor, {upstream.endpoint()});
    co_await gateway.connect();
    asio::co_spawn(executor, sweep_once_sent(executor, upstream, gateway), asio::detached);
    const ForwardResult result = co_await gateway.forward(kChunkedUpload);
    EXPECT_EQ(result.kind, ForwardResult::Kind::kLocalReply);
    EXPECT_EQ(result.status, 504u);
    EXPECT_EQ(gateway.errors(upstream::UpstreamError::kTimeout), 1u);
    upstream.close_connection(0);
  });
}

}  // namespace
}  // namespace apigw::proxy
