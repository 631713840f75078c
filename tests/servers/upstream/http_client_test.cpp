// The upstream HTTP/1.1 client exchange against scripted loopback upstreams: connect, send_request, ResponseReader
// (heads, interim responses, bodies by length, chunks and close, reuse) and ExchangeDeadline.
#include "apigw/upstream/http_client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>

#include "coroutine_test.h"
#include "loopback_peer.h"

namespace apigw::upstream {
namespace {
namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using boost::system::error_code;
using test_servers::listen_on_loopback;
using test_servers::run;

// What a scripted upstream does once it has written its answers.
enum class Then { kHold, kClose };

// Accepts one connection and answers each request head it reads with the next of `answers`; then holds the
// connection until the client closes it, or closes it (having read everything sent, so that the close is an
// orderly one and not a reset).
asio::awaitable<void> serve(asio::ip::tcp::acceptor& acceptor, std::vector<std::string> answers, Then then) {
  auto [accept_error, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
  if (accept_error) co_return;
  std::string pending;
  for (std::string& answer : answers) {
    if ((co_await test_servers::read_head(socket, pending)).empty()) co_return;
    if (!co_await test_servers::write_text(socket, std::move(answer))) co_return;
  }
  if (then == Then::kHold) co_await test_servers::read_until_eof(socket);
}

auto far_deadline() { return std::chrono::steady_clock::now() + std::chrono::seconds(10); }

// Sends `request` whole.
asio::awaitable<error_code> send(UpstreamConnection& connection, std::string request) {
  const asio::const_buffer buffer = asio::buffer(request);
  auto [error, n] = co_await send_request(connection, std::span<const asio::const_buffer>(&buffer, 1));
  EXPECT_EQ(n, request.size());
  co_return error;
}

// Connects to a fresh upstream that answers one GET with `answer` (then acts as `then`), and reads the head.
struct OneExchange {
  explicit OneExchange(const asio::any_io_executor& executor)
      : acceptor(listen_on_loopback(executor)), connection(executor, 0) {}

  asio::awaitable<error_code> start(std::string answer, Then then, bool head_request = false) {
    asio::co_spawn(acceptor.get_executor(), serve(acceptor, test_servers::cmd(std::move(answer)), then),
                   asio::detached);
    if (const error_code error = co_await connect(connection, acceptor.local_endpoint(), far_deadline())) {
      co_return error;
    }
    if (const error_code error = co_await send(connection, head_request ? "HEAD / HTTP/1.1\r\nHost: up\r\n\r\n"
                                                                         : "GET / HTTP/1.1\r\nHost: up\r\n\r\n")) {
      co_return error;
    }
    co_return co_await reader.read_head(connection, head_request, got_bytes);
  }

  // The rest of the body, as read_rest hands it over.
  asio::awaitable<std::string> body() {
    std::string collected;
    const error_code error =
        co_await reader.read_rest(connection, [&](std::string_view piece) { collected.append(piece); });
    EXPECT_FALSE(error) << error.message();
    co_return collected;
  }

  asio::ip::tcp::acceptor acceptor;
  UpstreamConnection connection;
  ResponseReader reader;
  bool got_bytes = false;
};

std::string field(const ResponseReader& reader, std::string_view name) {
  for (const ResponseReader::Field& f : reader.response().fields()) {
    if (boost::beast::iequals(f.name_text, name)) return std::string(f.value);
  }
  return "<absent>";
}

TEST(HttpClient, AFixedBodyThatCameWithItsHeadWaitsInTheReadBuffer) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    OneExchange exchange(executor);
    const error_code error =
        co_await exchange.start("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Up: 1\r\n\r\nhello", Then::kHold);
    CO_ASSERT_OK(error);
    asio::ip::tcp::no_delay no_delay;
    exchange.connection.socket.get_option(no_delay);
    EXPECT_TRUE(no_delay.value());
    EXPECT_TRUE(exchange.got_bytes);
    EXPECT_EQ(exchange.reader.status(), 200u);
    EXPECT_EQ(field(exchange.reader, "X-Up"), "1");
    CO_ASSERT(exchange.reader.response().content_length());
    EXPECT_EQ(*exchange.reader.response().content_length(), 5u);
    // The parser stopped at the end of the head: the body is in the buffer, as the forwarder relays it from there.
    EXPECT_FALSE(exchange.reader.done());
    EXPECT_EQ(asio::buffer_size(exchange.connection.buffer.data()), 5u);
    EXPECT_FALSE(exchange.reader.reusable(exchange.connection));
    EXPECT_EQ(co_await exchange.body(), "hello");
    EXPECT_TRUE(exchange.reader.done());
    EXPECT_TRUE(exchange.reader.reusable(exchange.connection));
  });
}

TEST(HttpClient, AChunkedBodyIsReadInPiecesAndTheNextResponseThroughASink) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto acceptor = listen_on_loopback(executor);
    std::vector<std::string> answers = test_servers::cmd(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n"
        "0\r\n\r\n",
        "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n3\r\ndef\r\n0\r\nX-Trailer: t\r\n"
        "\r\n");
    asio::co_spawn(executor, serve(acceptor, std::move(answers), Then::kHold), asio::detached);
    UpstreamConnection connection(executor, 0);
    CO_ASSERT_OK(co_await connect(connection, acceptor.local_endpoint(), far_deadline()));
    ResponseReader reader;

    CO_ASSERT_OK(co_await send(connection, "GET /first HTTP/1.1\r\nHost: up\r\n\r\n"));
    bool got_bytes = false;
    CO_ASSERT_OK(co_await reader.read_head(connection, false, got_bytes));
    EXPECT_EQ(reader.status(), 200u);
    EXPECT_FALSE(reader.response().content_length());
    std::string body;
    int pieces = 0;
    char small[3];
    while (!reader.done()) {
      std::size_t got = 0;
      const error_code error = co_await reader.read_body(connection, small, got);
      CO_ASSERT_OK(error);
      CO_ASSERT(got <= sizeof small);
      body.append(small, got);
      if (got > 0) ++pieces;
    }
    EXPECT_EQ(body, "Wikipedia in\r\n\r\nchunks.");
    EXPECT_GE(pieces, 8);  // 23 bytes through a 3-byte buffer
    EXPECT_TRUE(reader.reusable(connection));

    // The same reader and connection serve the next response.
    CO_ASSERT_OK(co_await send(connection, "GET /second HTTP/1.1\r\nHost: up\r\n\r\n"));
    got_bytes = false;
    CO_ASSERT_OK(co_await reader.read_head(connection, false, got_bytes));
    EXPECT_EQ(reader.status(), 201u);
    std::string collected;
    EXPECT_FALSE(co_await reader.read_rest(connection, [&](std::string_view piece) { collected.append(piece); }));
    EXPECT_EQ(collected, "abcdef");
    EXPECT_TRUE(reader.done());
    EXPECT_TRUE(reader.reusable(connection));
  });
}

TEST(HttpClient, ReadRestWithoutASinkReadsTheBodyAndDropsIt) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    OneExchange exchange(executor);
    CO_ASSERT_OK(co_await exchange.start(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", Then::kHold));
    EXPECT_FALSE(co_await exchange.reader.read_rest(exchange.connection, {}));
    EXPECT_TRUE(exchange.reader.done());
    EXPECT_TRUE(exchange.reader.reusable(exchange.connection));
  });
}

TEST(HttpClient, ABodyWithoutLengthEndsWithTheConnection) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    OneExchange exchange(executor);
    CO_ASSERT_OK(co_await exchange.start("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the very end",
                                         Then::kClose));
    EXPECT_EQ(co_await exchange.body(), "until the very end");
    EXPECT_TRUE(exchange.reader.done());
    EXPECT_FALSE(exchange.reader.reusable(exchange.connection));
  });
}

TEST(HttpClient, InterimResponsesAreSkippedBeforeTheFinalHead) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    OneExchange exchange(executor);
    const error_code error = co_await exchange.start(
        "HTTP/1.1 100 Continue\r\n\r\n"
        "HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\n"
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Final: yes\r\n\r\nok",
        Then::kHold);
    CO_ASSERT_OK(error);
    EXPECT_EQ(exchange.reader.status(), 200u);
    EXPECT_EQ(field(exchange.reader, "X-Final"), "yes");
    EXPECT_EQ(field(exchange.reader, "Link"), "<absent>");
    EXPECT_EQ(co_await exchange.body(), "ok");
    EXPECT_TRUE(exchange.reader.reusable(exchange.connection));
  });
}

TEST(HttpClient, SwitchingProtocolsIsRefusedAsABadStatus) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    OneExchange exchange(executor);
    const error_code error = co_await exchange.start(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", Then::kHold);
    EXPECT_EQ(error, bhttp::error::bad_status) << error.message();
    EXPECT_TRUE(exchange.got_bytes);
  });
}

TEST(HttpClient, AnUpstreamClosingInsideTheHeadGivesAPartialMessage) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    OneExchange exchange(executor);
    const error_code error = co_await exchange.start("HTTP/1.1 200 OK\r\nContent-Le", Then::kClose);
    EXPECT_EQ(error, bhttp::error::partial_message) << error.message();
    EXPECT_TRUE(exchange.got_bytes);
    EXPECT_FALSE(is_protocol_error(error));
  });
}

TEST(HttpClient, AnUpstreamClosingBeforeAnyByteLooksStale) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    OneExchange exchange(executor);
    const error_code error = co_await exchange.start("", Then::kClose);
    EXPECT_EQ(error, bhttp::error::end_of_stream) << error.message();
    EXPECT_FALSE(exchange.got_bytes);
    EXPECT_FALSE(is_protocol_error(error));
  });
}

TEST(HttpClient, BytesThatAreNotHttpAreAProtocolError) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    OneExchange exchange(executor);
    const error_code error = co_await exchange.start("SSH-2.0-OpenSSH_9.2\r\n\r\n", Then::kHold);
    EXPECT_TRUE(error);
    EXPECT_TRUE(is_protocol_error(error)) << error.message();
    EXPECT_TRUE(exchange.got_bytes);
  });
}

TEST(HttpClient, IsProtocolErrorTellsBadBytesFromFailedConnections) {
  EXPECT_TRUE(is_protocol_error(bhttp::error::bad_version));
  EXPECT_TRUE(is_protocol_error(bhttp::error::bad_chunk));
  EXPECT_FALSE(is_protocol_error(bhttp::error::partial_message));
  EXPECT_FALSE(is_protocol_error(bhttp::error::end_of_stream));
  EXPECT_FALSE(is_protocol_error(asio::error::connection_reset));
  EXPECT_FALSE(is_protocol_error(asio::error::operation_aborted));
}

TEST(HttpClient, AResponseToHeadHasNoBodyWhateverItsLength) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    OneExchange exchange(executor);
    CO_ASSERT_OK(co_await exchange.start("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", Then::kHold,
                                         /*head_request=*/true));
    EXPECT_TRUE(exchange.reader.done());
    EXPECT_TRUE(exchange.reader.reusable(exchange.connection));
  });
}

// Whether the connection can serve another request once `answer` was read whole.
asio::awaitable<bool> reusable_after(asio::any_io_executor executor, std::string answer) {
  OneExchange exchange(executor);
  const error_code error = co_await exchange.start(std::move(answer), Then::kHold);
  EXPECT_FALSE(error) << error.message();
  if (error) co_return false;
  co_await exchange.body();
  EXPECT_TRUE(exchange.reader.done());
  co_return exchange.reader.reusable(exchange.connection);
}

TEST(HttpClient, OnlyACompleteKeepAliveResponseWithNothingAfterItLeavesTheConnectionReusable) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    EXPECT_TRUE(co_await reusable_after(executor, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    EXPECT_TRUE(co_await reusable_after(
        executor, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"));
    EXPECT_FALSE(co_await reusable_after(
        executor, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"));
    EXPECT_FALSE(co_await reusable_after(executor, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    // Bytes nobody asked for after the response: the connection's state is unknown.
    EXPECT_FALSE(co_await reusable_after(
        executor, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n"));
  });
}

TEST(HttpClient, ConnectingToAClosedPortFailsAndClosesTheSocket) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    asio::ip::tcp::endpoint closed;
    {
      auto acceptor = listen_on_loopback(executor);
      closed = acceptor.local_endpoint();
    }
    UpstreamConnection connection(executor, 0);
    const error_code error = co_await connect(connection, closed, far_deadline());
    EXPECT_EQ(error, asio::error::connection_refused) << error.message();
    EXPECT_FALSE(connection.socket.is_open());
  });
}

TEST(HttpClient, AnExchangeDeadlineCancelsAReadThatGetsNoAnswer) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto acceptor = listen_on_loopback(executor);
    asio::co_spawn(executor, serve(acceptor, {}, Then::kHold), asio::detached);  // reads, never answers
    UpstreamConnection connection(executor, 0);
    CO_ASSERT_OK(co_await connect(connection, acceptor.local_endpoint(), far_deadline()));
    CO_ASSERT_OK(co_await send(connection, "GET / HTTP/1.1\r\nHost: up\r\n\r\n"));
    ExchangeDeadline deadline(executor, std::chrono::steady_clock::now() + std::chrono::milliseconds(50));
    deadline.watch(connection);
    ResponseReader reader;
    bool got_bytes = false;
    const error_code error = co_await reader.read_head(connection, false, got_bytes);
    EXPECT_EQ(error, asio::error::operation_aborted) << error.message();
    EXPECT_TRUE(deadline.expired());
    EXPECT_FALSE(got_bytes);
    deadline.unwatch();
  });
}

TEST(HttpClient, AnExchangeDeadlineThatDoesNotPassLeavesTheExchangeAlone) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    OneExchange exchange(executor);
    ExchangeDeadline deadline(executor, far_deadline());
    deadline.watch(exchange.connection);
    CO_ASSERT_OK(co_await exchange.start("HTTP/1.1 204 No Content\r\n\r\n", Then::kHold));
    EXPECT_EQ(exchange.reader.status(), 204u);
    EXPECT_TRUE(exchange.reader.done());
    EXPECT_FALSE(deadline.expired());
    deadline.unwatch();
  });
}

}  // namespace
}  // namespace apigw::upstream
