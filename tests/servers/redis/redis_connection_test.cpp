// redis::Connection against a real redis-server: pipelining, authentication, database selection, timeouts, a
// server that is down or goes away, and recovery without a restart; and against a scripted one for replies a real
// server does not send.
#include <gtest/gtest.h>

#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include "apigw/redis/connection.h"
#include "coroutine_test.h"
#include "redis_server.h"

namespace apigw::redis {
namespace {
namespace asio = boost::asio;
using test_servers::cmd;
using test_servers::RedisServer;
using test_servers::run;
using test_servers::wait_until;

ConnectionOptions options_for(std::uint16_t port) {
  ConnectionOptions options;
  options.address = "127.0.0.1";
  options.port = port;
  options.timeout = std::chrono::milliseconds(200);
  return options;
}

TEST(RedisConnection, CommandsAndReplies) {
  RedisServer server;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto redis = std::make_shared<Connection>(executor, options_for(server.port()));
    Result set = co_await redis->command(cmd("SET", "session:abc", "user-42"));
    EXPECT_FALSE(set.error) << set.error.message();
    EXPECT_EQ(set.reply.type, Reply::Type::kStatus);
    EXPECT_EQ(set.reply.text, "OK");
    Result get = co_await redis->command(cmd("GET", "session:abc"));
    EXPECT_EQ(get.reply.type, Reply::Type::kString);
    EXPECT_EQ(get.reply.text, "user-42");
    Result missing = co_await redis->command(cmd("GET", "session:none"));
    EXPECT_EQ(missing.reply.type, Reply::Type::kNil);
    co_await redis->command(cmd("HSET", "h", "user_id", "7", "role", "admin"));
    Result all = co_await redis->command(cmd("HGETALL", "h"));
    EXPECT_EQ(all.reply.type, Reply::Type::kArray);
    EXPECT_EQ(all.reply.elements.size(), 4u);
    Result bad = co_await redis->command(cmd("NOSUCHCOMMAND"));
    EXPECT_FALSE(bad.error);
    EXPECT_EQ(bad.reply.type, Reply::Type::kError);
    // Binary-safe arguments: a value with a NUL and CRLF in it.
    std::string odd = "a";
    odd.push_back('\0');
    odd += "b\r\nc";
    co_await redis->command(cmd("SET", "odd", odd));
    Result read_back = co_await redis->command(cmd("GET", "odd"));
    EXPECT_EQ(read_back.reply.text, odd);
    redis->close();
  });
}

TEST(RedisConnection, ConcurrentCommandsArePipelinedAndAnsweredInOrder) {
  RedisServer server;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    ConnectionOptions options = options_for(server.port());
    options.timeout = std::chrono::seconds(2);  // 500 replies, also in a sanitizer build on a busy machine
    auto redis = std::make_shared<Connection>(executor, options);
    for (int i = 0; i < 500; ++i) co_await redis->command(cmd("SET", "k" + std::to_string(i), std::to_string(i * 7)));
    // 500 lookups issued at once on one connection; each gets its own value back.
    std::vector<Result> results(500);
    int finished = 0;
    for (int i = 0; i < 500; ++i) {
      asio::co_spawn(
          executor,
          [&, i]() -> asio::awaitable<void> {
            results[i] = co_await redis->command(cmd("GET", "k" + std::to_string(i)));
            ++finished;
          },
          asio::detached);
    }
    co_await wait_until(executor, [&] { return finished == 500; });
    EXPECT_EQ(finished, 500);
    for (int i = 0; i < 500; ++i) {
      EXPECT_FALSE(results[i].error) << i << ": " << results[i].error.message();
      EXPECT_EQ(results[i].reply.text, std::to_string(i * 7)) << i;
    }
    redis->close();
  });
}

TEST(RedisConnection, AuthenticatesAndSelectsTheDatabase) {
  RedisServer server({"--requirepass", "s3cret"});
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    ConnectionOptions options = options_for(server.port());
    options.password = "s3cret";
    options.db = 3;
    auto redis = std::make_shared<Connection>(executor, options);
    co_await redis->command(cmd("SET", "where", "db3"));
    Result db = co_await redis->command(cmd("CLIENT", "INFO"));
    EXPECT_NE(db.reply.text.find("db=3"), std::string::npos) << db.reply.text;
    redis->close();

    options.password = "wrong";
    auto refused = std::make_shared<Connection>(executor, options);
    Result denied = co_await refused->command(cmd("GET", "where"));
    EXPECT_EQ(denied.error, boost::system::errc::permission_denied) << denied.error.message();
    EXPECT_FALSE(refused->connected());
    refused->close();
  });
}

TEST(RedisConnection, AclUserAndPassword) {
  RedisServer server;
  RedisServer* s = &server;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto admin = std::make_shared<Connection>(executor, options_for(s->port()));
    co_await admin->command(cmd("ACL", "SETUSER", "gateway", "on", ">pw", "~session:*", "+get"));
    co_await admin->command(cmd("SET", "session:x", "9"));
    admin->close();
    ConnectionOptions options = options_for(s->port());
    options.username = "gateway";
    options.password = "pw";
    auto redis = std::make_shared<Connection>(executor, options);
    Result allowed = co_await redis->command(cmd("GET", "session:x"));
    EXPECT_EQ(allowed.reply.text, "9");
    Result forbidden = co_await redis->command(cmd("GET", "other"));
    EXPECT_EQ(forbidden.reply.type, Reply::Type::kError);  // NOPERM
    redis->close();
  });
}

TEST(RedisConnection, ASlowServerTimesOutThenTheConnectionRecovers) {
  RedisServer server;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto redis = std::make_shared<Connection>(executor, options_for(server.port()));
    auto other = std::make_shared<Connection>(executor, options_for(server.port()));
    co_await redis->command(cmd("SET", "k", "v"));
    // Another client pauses every client's commands for 600 ms: ours must not wait that long.
    co_await other->command(cmd("CLIENT", "PAUSE", "600", "ALL"));
    const auto start = std::chrono::steady_clock::now();
    Result slow = co_await redis->command(cmd("GET", "k"));
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(slow.error, asio::error::timed_out);
    EXPECT_LT(took, std::chrono::milliseconds(400));
    // Backing off: fails at once instead of waiting.
    Result early = co_await redis->command(cmd("GET", "k"));
    EXPECT_EQ(early.error, asio::error::not_connected);
    asio::steady_timer wait(executor, std::chrono::milliseconds(700));
    co_await wait.async_wait(asio::use_awaitable);
    Result again = co_await redis->command(cmd("GET", "k"));
    EXPECT_FALSE(again.error) << again.error.message();
    EXPECT_EQ(again.reply.text, "v");
    redis->close();
    other->close();
  });
}

TEST(RedisConnection, ServerDownThenUpAndKilledMidRun) {
  const std::uint16_t port = test_servers::free_port();
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto redis = std::make_shared<Connection>(executor, options_for(port));
    Result down = co_await redis->command(cmd("PING"));
    EXPECT_EQ(down.error, asio::error::connection_refused) << down.error.message();
    {
      RedisServer server({}, port);
      asio::steady_timer wait(executor, std::chrono::milliseconds(150));  // past the first backoff
      co_await wait.async_wait(asio::use_awaitable);
      Result up = co_await redis->command(cmd("PING"));
      EXPECT_FALSE(up.error) << up.error.message();
      EXPECT_EQ(up.reply.text, "PONG");
      server.stop();
      Result gone = co_await redis->command(cmd("PING"));
      EXPECT_TRUE(gone.error);
      server.start();
      // Backoff grows (100 ms, 200 ms, ...) but stays bounded; the connection comes back without a restart.
      Result back;
      for (int i = 0; i < 40; ++i) {
        back = co_await redis->command(cmd("PING"));
        if (!back.error) break;
        asio::steady_timer pause(executor, std::chrono::milliseconds(100));
        co_await pause.async_wait(asio::use_awaitable);
      }
      EXPECT_FALSE(back.error) << back.error.message();
      EXPECT_EQ(back.reply.text, "PONG");
    }
    redis->close();
  });
}

// Accepts one connection, answers the first command it reads with `reply`, then holds the connection until the
// client closes it.
asio::awaitable<void> answer_once(asio::ip::tcp::acceptor& acceptor, std::string reply) {
  asio::ip::tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
  char request[512];
  co_await socket.async_read_some(asio::buffer(request), asio::use_awaitable);
  co_await asio::async_write(socket, asio::buffer(reply), asio::use_awaitable);
  co_await socket.async_read_some(asio::buffer(request), asio::as_tuple(asio::use_awaitable));
}

TEST(RedisConnection, AnArrayLongerThanAnyReplyFailsTheConnectionAtOnce) {
  // hiredis 0.14 allocates an array's element pointers as soon as it reads the length ("*2147483647": 16 GiB).
  // Past 2^20 elements the reply is a protocol error before anything is allocated, not a wait for the elements.
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    const asio::ip::tcp::endpoint loopback(asio::ip::make_address("127.0.0.1"), 0);
    asio::ip::tcp::acceptor overlong_server(executor, loopback);
    asio::co_spawn(executor, answer_once(overlong_server, "*1048577\r\n"), asio::detached);
    auto overlong = std::make_shared<Connection>(executor, options_for(overlong_server.local_endpoint().port()));
    const Result refused = co_await overlong->command(cmd("CLUSTER", "SLOTS"));
    EXPECT_EQ(refused.error, make_error_code(boost::system::errc::protocol_error)) << refused.error.message();
    overlong->close();

    asio::ip::tcp::acceptor array_server(executor, loopback);
    asio::co_spawn(executor, answer_once(array_server, "*2\r\n:1\r\n$1\r\na\r\n"), asio::detached);
    auto arrays = std::make_shared<Connection>(executor, options_for(array_server.local_endpoint().port()));
    const Result array = co_await arrays->command(cmd("CLUSTER", "SLOTS"));
    EXPECT_FALSE(array.error) << array.error.message();
    EXPECT_EQ(array.reply.type, Reply::Type::kArray);
    EXPECT_EQ(array.reply.elements.size(), 2u);
    arrays->close();
  });
}

}  // namespace
}  // namespace apigw::redis
