// Data-plane socket I/O against a connected loopback pair: reads that wait for readiness only when the last read
// left the socket empty, writes that go straight to the socket and wait only when it is full, parse steps that
// read only when the buffered bytes are not enough.
#include "apigw/net/socket_io.h"

#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>

#include "coroutine_test.h"
#include "loopback_peer.h"

namespace apigw::net {
namespace {
namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using boost::system::error_code;
using test_servers::run;

// A connected pair: `ours` as the data plane holds it, `peer` the other end.
struct Pair {
  explicit Pair(const asio::any_io_executor& executor) : ours(executor), peer(executor) {}

  asio::awaitable<void> connect() {
    asio::ip::tcp::acceptor acceptor = test_servers::listen_on_loopback(ours.socket.get_executor());
    co_await ours.socket.async_connect(acceptor.local_endpoint(), asio::use_awaitable);
    peer = co_await acceptor.async_accept(asio::use_awaitable);
  }

  Connection ours;
  asio::ip::tcp::socket peer;
};

TEST(SocketIo, ReadNowTakesWhatIsThereAndReportsAnEmptySocketWithoutError) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    Pair pair(executor);
    co_await pair.connect();
    std::array<char, 64> bytes{};
    error_code error;
    EXPECT_EQ(read_now(pair.ours, asio::buffer(bytes), error), 0u);
    EXPECT_FALSE(error) << "nothing there is not an error";
    EXPECT_TRUE(co_await test_servers::write_text(pair.peer, "hello"));
    co_await test_servers::wait_until(executor, [&] {
      error = {};
      return read_now(pair.ours, asio::buffer(bytes), error) == 5 || error;
    });
    EXPECT_FALSE(error);
    EXPECT_EQ(std::string(bytes.data(), 5), "hello");
  });
}

TEST(SocketIo, ReadSomeWaitsForBytesAndReportsTheEndOfStream) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    Pair pair(executor);
    co_await pair.connect();
    asio::co_spawn(executor, test_servers::write_text(pair.peer, "later"), asio::detached);
    std::array<char, 64> bytes{};
    auto [error, n] = co_await read_some(pair.ours, asio::buffer(bytes));
    EXPECT_FALSE(error);
    EXPECT_EQ(std::string(bytes.data(), n), "later");
    pair.peer.shutdown(asio::socket_base::shutdown_send);
    auto [end, none] = co_await read_some(pair.ours, asio::buffer(bytes));
    EXPECT_EQ(end, asio::error::eof);
    EXPECT_EQ(none, 0u);
  });
}

asio::awaitable<void> write_later(asio::ip::tcp::socket& peer, std::string text) {
  asio::steady_timer later(peer.get_executor(), std::chrono::milliseconds(20));
  co_await later.async_wait(asio::use_awaitable);
  co_await test_servers::write_text(peer, text);
}

asio::awaitable<void> read_what_comes_later(asio::any_io_executor executor) {
  Pair pair(executor);
  co_await pair.connect();
  asio::co_spawn(executor, write_later(pair.peer, "again"), asio::detached);  // later, so that the read waits
  std::array<char, 64> bytes{};
  auto [error, n] = co_await read_some(pair.ours, asio::buffer(bytes));
  EXPECT_FALSE(error);
  EXPECT_EQ(std::string(bytes.data(), n), "again");
}

// A thread that runs one io_context after another, the second made where the first was freed, waits on the second
// one's reactor (a reactor remembered by the io_context's address would be the freed one's).
TEST(SocketIo, AWaitOnAnIoContextMadeWhereAFreedOneWasUsesTheNewOnesReactor) {
  std::optional<asio::io_context> loop;
  std::vector<std::unique_ptr<std::byte[]>> decoys;
  for (int round = 0; round < 2; ++round) {
    // The memory the first reactor had goes to something else, as it may in a running process.
    for (int i = 0; round == 1 && i < 64; ++i) {
      decoys.push_back(std::make_unique<std::byte[]>(sizeof(asio::detail::reactor)));
    }
    loop.emplace();
    auto done = asio::co_spawn(*loop, read_what_comes_later(loop->get_executor()), asio::use_future);
    loop->run();
    done.get();
    loop.reset();
  }
}

TEST(SocketIo, AReadThatFillsItsBufferLeavesTheRestForTheNextReadWithoutAWait) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    Pair pair(executor);
    co_await pair.connect();
    EXPECT_TRUE(co_await test_servers::write_text(pair.peer, "abcdefgh"));
    std::string got;
    std::array<char, 3> small{};
    while (got.size() < 8) {
      auto [error, n] = co_await read_some(pair.ours, asio::buffer(small));
      if (error) break;
      got.append(small.data(), n);
      // A full buffer says more may be waiting: the connection is not marked drained.
      if (n == small.size()) {
        EXPECT_FALSE(pair.ours.drained);
      }
    }
    EXPECT_EQ(got, "abcdefgh");
  });
}

TEST(SocketIo, ACancelledReadEndsWithOperationAborted) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    Pair pair(executor);
    co_await pair.connect();
    asio::steady_timer timer(executor, std::chrono::milliseconds(20));
    timer.async_wait([&](const error_code&) { pair.ours.socket.cancel(); });
    std::array<char, 16> bytes{};
    auto [error, n] = co_await read_some(pair.ours, asio::buffer(bytes));
    EXPECT_EQ(error, asio::error::operation_aborted);
    EXPECT_EQ(n, 0u);
  });
}

TEST(SocketIo, WriteAllSendsEveryBufferEvenPastWhatTheSocketTakesAtOnce) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    Pair pair(executor);
    co_await pair.connect();
    // Far more than the socket buffers hold: write_now takes part of it, write_rest waits for the reader.
    const std::string first(3 * 1024 * 1024, 'a');
    const std::string second(1024 * 1024, 'b');
    const std::array<asio::const_buffer, 2> buffers{asio::buffer(first), asio::buffer(second)};
    error_code now_error;
    const std::size_t at_once = write_now(pair.ours, buffers, now_error);
    EXPECT_FALSE(now_error);
    EXPECT_LT(at_once, first.size() + second.size()) << "the socket took everything at once";
    std::size_t received = 0;
    std::string tail;
    auto reader = [&]() -> asio::awaitable<void> {
      std::vector<char> bytes(64 * 1024);
      for (;;) {
        auto [error, n] = co_await pair.peer.async_read_some(asio::buffer(bytes), asio::as_tuple(asio::use_awaitable));
        if (error) co_return;
        received += n;
        tail.assign(bytes.data() + n - std::min<std::size_t>(n, 1), std::min<std::size_t>(n, 1));
      }
    };
    asio::co_spawn(executor, reader(), asio::detached);
    auto [error, written] = co_await write_rest(pair.ours, buffers, at_once);
    EXPECT_FALSE(error);
    EXPECT_EQ(written, first.size() + second.size());
    pair.ours.socket.shutdown(asio::socket_base::shutdown_send);
    co_await test_servers::wait_until(executor, [&] { return received == first.size() + second.size(); });
    EXPECT_EQ(received, first.size() + second.size());
    EXPECT_EQ(tail, "b");
  });
}

TEST(SocketIo, AWriteToAClosedPeerFails) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    Pair pair(executor);
    co_await pair.connect();
    test_servers::reset(pair.peer);
    const std::string bytes(64 * 1024, 'x');
    error_code error;
    // The first write may still be taken before the reset arrives; one of the next ones fails.
    for (int i = 0; i < 50 && !error; ++i) {
      auto [write_error, n] = co_await write_all(pair.ours, asio::buffer(bytes));
      error = write_error;
      if (!error) {
        asio::steady_timer pause(executor, std::chrono::milliseconds(5));
        co_await pause.async_wait(asio::use_awaitable);
      }
    }
    EXPECT_TRUE(error) << "writes to a reset peer kept succeeding";
  });
}

TEST(SocketIo, ParseSomeReadsOnlyWhileTheParserNeedsMore) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    Pair pair(executor);
    co_await pair.connect();
    // The head and part of the body come first, the rest of the body later.
    EXPECT_TRUE(co_await test_servers::write_text(
        pair.peer, "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123"));
    boost::beast::flat_buffer buffer;
    bhttp::request_parser<bhttp::buffer_body> parser;
    error_code error = co_await parse_some(pair.ours, buffer, parser, 4096);
    EXPECT_FALSE(error);
    EXPECT_TRUE(parser.is_header_done());
    std::array<char, 16> body{};
    std::size_t got = 0;
    asio::co_spawn(executor, test_servers::write_text(pair.peer, "456789"), asio::detached);
    while (!parser.is_done()) {
      parser.get().body().data = body.data() + got;
      parser.get().body().size = body.size() - got;
      error = co_await parse_some(pair.ours, buffer, parser, 4096);
      if (error == bhttp::error::need_buffer) error = {};
      if (error) break;
      got = body.size() - parser.get().body().size;
    }
    EXPECT_FALSE(error);
    EXPECT_EQ(std::string(body.data(), got), "0123456789");
  });
}

TEST(SocketIo, ParseSomeReportsAPeerThatClosesBeforeAMessageAsEndOfStream) {
  run([](asio::any_io_executor executor) -> asio::awaitable<void> {
    Pair pair(executor);
    co_await pair.connect();
    pair.peer.shutdown(asio::socket_base::shutdown_send);
    boost::beast::flat_buffer buffer;
    bhttp::request_parser<bhttp::buffer_body> parser;
    const error_code error = co_await parse_some(pair.ours, buffer, parser, 4096);
    EXPECT_EQ(error, bhttp::error::end_of_stream);
  });
}

}  // namespace
}  // namespace apigw::net
