// auth::Authenticator against a real redis-server: the three user id layouts, invalid tokens, the local cache,
// single flight, and Redis being down.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "apigw/auth/authenticator.h"
#include "coroutine_test.h"
#include "redis_server.h"

namespace apigw::auth {
namespace {
namespace asio = boost::asio;
using test_servers::cmd;
using test_servers::RedisServer;
using test_servers::run;
using test_servers::wait_until;

// A standalone client of the server on `port`, with `connections` pipelined connections.
std::unique_ptr<redis::Client> client_of(asio::any_io_executor executor, std::uint16_t port,
                                         unsigned connections = 1) {
  redis::ClientOptions options;
  options.nodes = {{"127.0.0.1", port}};
  options.timeout = std::chrono::milliseconds(500);
  options.connections = connections;
  return std::make_unique<redis::Client>(executor, options);
}

std::shared_ptr<redis::Connection> connect_to(asio::any_io_executor executor, std::uint16_t port) {
  redis::ConnectionOptions options;
  options.address = "127.0.0.1";
  options.port = port;
  options.timeout = std::chrono::milliseconds(500);
  return std::make_shared<redis::Connection>(executor, options);
}

// How many times Redis ran `command` since the last CONFIG RESETSTAT.
asio::awaitable<int> calls(redis::Connection& admin, const std::string& command) {
  const redis::Result info = co_await admin.command(cmd("INFO", "commandstats"));
  const std::string marker = "cmdstat_" + command + ":calls=";
  const std::size_t at = info.reply.text.find(marker);
  co_return at == std::string::npos ? 0 : std::stoi(info.reply.text.substr(at + marker.size()));
}

TEST(Authenticator, StringHashAndJsonLayouts) {
  RedisServer server;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto admin = connect_to(executor, server.port());
    co_await admin->command(cmd("SET", "session:s1", "user-1"));
    co_await admin->command(cmd("HSET", "sess:h1", "user_id", "user-2", "role", "x"));
    co_await admin->command(cmd("SET", "j:j1", R"({"uid": 42, "name": "a"})"));
    co_await admin->command(cmd("SET", "j:j2", R"({"uid": "user-3"})"));
    co_await admin->command(cmd("SET", "j:j3", "not json"));
    co_await admin->command(cmd("SET", "session:evil", "42\r\nX-Admin: yes"));

    Authenticator plain(executor, LookupSettings{}, client_of(executor, server.port()));
    Lookup one = co_await plain.lookup("s1");
    EXPECT_EQ(one.outcome, Lookup::Outcome::kUser);
    EXPECT_EQ(one.user, "user-1");
    Lookup none = co_await plain.lookup("nope");
    EXPECT_EQ(none.outcome, Lookup::Outcome::kInvalid);
    Lookup evil = co_await plain.lookup("evil");  // a user id that would inject a header is refused
    EXPECT_EQ(evil.outcome, Lookup::Outcome::kError);

    LookupSettings hash;
    hash.key_template = "sess:{token}";
    hash.user_id = UserIdField{UserIdField::Kind::kHash, "user_id"};
    Authenticator hashed(executor, hash, client_of(executor, server.port()));
    Lookup two = co_await hashed.lookup("h1");
    EXPECT_EQ(two.user, "user-2");
    Lookup wrong_type = co_await hashed.lookup("s1");  // sess:s1 does not exist
    EXPECT_EQ(wrong_type.outcome, Lookup::Outcome::kInvalid);

    LookupSettings json;
    json.key_template = "j:{token}";
    json.user_id = UserIdField{UserIdField::Kind::kJson, "uid"};
    Authenticator parsed(executor, json, client_of(executor, server.port()));
    Lookup number = co_await parsed.lookup("j1");
    EXPECT_EQ(number.user, "42");
    Lookup text = co_await parsed.lookup("j2");
    EXPECT_EQ(text.user, "user-3");
    Lookup garbage = co_await parsed.lookup("j3");
    EXPECT_EQ(garbage.outcome, Lookup::Outcome::kError);
    EXPECT_EQ(garbage.error, boost::system::errc::bad_message);
    admin->close();
  });
}

TEST(Authenticator, CachesAnswersButNotErrors) {
  RedisServer server;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto admin = connect_to(executor, server.port());
    co_await admin->command(cmd("SET", "session:t", "user-1"));
    co_await admin->command(cmd("CONFIG", "RESETSTAT"));
    LookupSettings settings;
    settings.negative_ttl = std::chrono::milliseconds(200);
    Authenticator auth(executor, settings, client_of(executor, server.port()));
    for (int i = 0; i < 5; ++i) {
      Lookup hit = co_await auth.lookup("t");
      EXPECT_EQ(hit.user, "user-1");
      EXPECT_EQ(hit.cached, i > 0);
      co_await auth.lookup("unknown");
    }
    EXPECT_EQ(co_await calls(*admin, "get"), 2);  // one per token
    // A revoked session is still served from the cache until its ttl ends (5 s here); an unknown token that
    // becomes valid is seen once the negative ttl (200 ms) ends.
    co_await admin->command(cmd("SET", "session:unknown", "user-9"));
    Lookup still_invalid = co_await auth.lookup("unknown");
    EXPECT_EQ(still_invalid.outcome, Lookup::Outcome::kInvalid);
    asio::steady_timer wait(executor, std::chrono::milliseconds(250));
    co_await wait.async_wait(asio::use_awaitable);
    Lookup now_valid = co_await auth.lookup("unknown");
    EXPECT_EQ(now_valid.user, "user-9");

    server.stop();
    Lookup down = co_await auth.lookup("other");
    EXPECT_EQ(down.outcome, Lookup::Outcome::kError);
    EXPECT_TRUE(down.error);
    Lookup still_cached = co_await auth.lookup("t");  // the cache answers while Redis is away
    EXPECT_EQ(still_cached.user, "user-1");
    admin->close();
  });
}

TEST(Authenticator, ConcurrentLookupsOfOneTokenShareOneRedisCall) {
  RedisServer server;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto admin = connect_to(executor, server.port());
    co_await admin->command(cmd("SET", "session:shared", "user-5"));
    co_await admin->command(cmd("CONFIG", "RESETSTAT"));
    Authenticator auth(executor, LookupSettings{}, client_of(executor, server.port(), 2));
    std::vector<Lookup> results(50);
    int finished = 0;
    for (int i = 0; i < 50; ++i) {
      asio::co_spawn(
          executor,
          [&, i]() -> asio::awaitable<void> {
            results[i] = co_await auth.lookup("shared");
            ++finished;
          },
          asio::detached);
    }
    co_await wait_until(executor, [&] { return finished == 50; });
    EXPECT_EQ(finished, 50);
    for (const Lookup& result : results) EXPECT_EQ(result.user, "user-5");
    EXPECT_EQ(auth.redis_calls(), 1u);
    EXPECT_EQ(co_await calls(*admin, "get"), 1);
    admin->close();
  });
}

}  // namespace
}  // namespace apigw::auth
