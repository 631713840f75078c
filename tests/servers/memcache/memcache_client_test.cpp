// memcache::Connection and memcache::Client against real memcached processes: commands and binary values, flags
// and expiry, add, several keys in one round trip, pipelining, items over the size limit, keys refused before
// sending, a server killed or paused and back, key placement checked against libmemcached's own client, and
// placement by another string than the key.
#include <gtest/gtest.h>

#include <libmemcached/memcached.h>

#include <cstdlib>
#include <memory>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>

#include "apigw/memcache/client.h"
#include "coroutine_test.h"
#include "memcached_server.h"

namespace apigw::memcache {
namespace {
namespace asio = boost::asio;
using std::chrono::milliseconds;
using std::chrono::seconds;
using test_servers::MemcachedServer;
using test_servers::run;
using test_servers::wait_until;

ClientOptions pool(const std::vector<std::uint16_t>& ports, milliseconds timeout = milliseconds(500)) {
  ClientOptions options;
  for (const std::uint16_t port : ports) options.servers.push_back(Server{"127.0.0.1", port, {}});
  options.timeout = timeout;
  return options;
}

ConnectionOptions one(std::uint16_t port, milliseconds timeout = milliseconds(500)) {
  ConnectionOptions options;
  options.address = "127.0.0.1";
  options.port = port;
  options.timeout = timeout;
  return options;
}

asio::awaitable<void> sleep(asio::any_io_executor executor, milliseconds duration) {
  asio::steady_timer timer(executor, duration);
  co_await timer.async_wait(asio::use_awaitable);
}

milliseconds since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start);
}

// libmemcached's own (blocking) client, configured as the gateway's placement is: the same servers in the same
// order, MEMCACHED_BEHAVIOR_KETAMA.
std::unique_ptr<memcached_st, void (*)(memcached_st*)> libmemcached_client(const ClientOptions& options) {
  std::unique_ptr<memcached_st, void (*)(memcached_st*)> client(memcached_create(nullptr), memcached_free);
  for (const Server& server : options.servers) {
    const std::string& host = server.name.empty() ? server.address : server.name;
    memcached_server_add(client.get(), host.c_str(), server.port);
  }
  memcached_behavior_set(client.get(), MEMCACHED_BEHAVIOR_KETAMA, 1);
  return client;
}

// The stampede-control flags as a real memcached answers them: one winner of a missing key's lease, then the
// placeholder for everyone else; the refresh of an item about to expire, given once; a stale mark guarded by the
// CAS that was read; a delete by CAS that leaves a replaced item alone; a write to one server of a pool.
TEST(MemcacheClient, LeasesRefreshesAndGuardedDeletes) {
  MemcachedServer server;
  MemcachedServer other;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    Client client(executor, pool({server.port()}));
    GetOptions lease;
    lease.vivify = 5;
    lease.cas = true;
    const GetResult first = co_await client.get("k", {}, lease);
    EXPECT_TRUE(first.item && first.item->won && first.item->value.empty() && first.item->cas != 0);
    const GetResult second = co_await client.get("k", {}, lease);
    EXPECT_TRUE(second.item && !second.item->won && second.item->fill_elsewhere);
    const GetResult plain = co_await client.get("k");
    EXPECT_TRUE(plain.item && plain.item->fill_elsewhere) << "a reader without the lease sees it taken";

    // Deleting by an old CAS leaves the record someone stored since.
    EXPECT_FALSE(co_await client.set("k", "record", 0, seconds(100)));
    DeleteOptions by_cas;
    by_cas.cas = first.item ? first.item->cas : 1;
    EXPECT_EQ(co_await client.remove("k", {}, by_cas), std::errc::file_exists);
    EXPECT_EQ(server.peek("k"), "record");

    GetOptions refresh;
    refresh.recache = 30;
    refresh.cas = true;
    const GetResult fresh = co_await client.get("k", {}, refresh);
    EXPECT_TRUE(fresh.item && !fresh.item->won) << "100 s left: no refresh yet";
    EXPECT_FALSE(co_await client.set("k", "record", 0, seconds(20)));
    const GetResult due = co_await client.get("k", {}, refresh);
    EXPECT_TRUE(due.item && due.item->won) << "fewer than 30 s left: this reader refreshes";
    const GetResult again = co_await client.get("k", {}, refresh);
    EXPECT_TRUE(again.item && !again.item->won && again.item->fill_elsewhere) << "once";

    // A stale mark by the CAS read: the second mark (with the same, now old, CAS) is refused.
    EXPECT_FALSE(co_await client.set("m", "record", 0, seconds(100)));
    const GetResult read = co_await client.get("m", {}, refresh);
    DeleteOptions mark;
    mark.invalidate = true;
    mark.ttl = 10;
    mark.cas = read.item ? read.item->cas : 1;
    EXPECT_FALSE(co_await client.remove("m", {}, mark));
    EXPECT_EQ(co_await client.remove("m", {}, mark), std::errc::file_exists);
    const GetResult marked = co_await client.get("m", {}, refresh);
    EXPECT_TRUE(marked.item && marked.item->stale && marked.item->won && marked.item->value == "record");
    EXPECT_TRUE(marked.item && marked.item->ttl_left && *marked.item->ttl_left <= seconds(10));

    Client both(executor, pool({server.port(), other.port()}));
    EXPECT_EQ(both.server_count(), 2u);
    EXPECT_FALSE(co_await both.set_on(1, "everywhere", "v1", seconds(0)));
    EXPECT_FALSE(co_await both.set_on(0, "everywhere", "v1", seconds(0)));
    EXPECT_EQ(server.peek("everywhere"), "v1");
    EXPECT_EQ(other.peek("everywhere"), "v1");
  });
}

TEST(MemcacheClient, SetGetRemove) {
  MemcachedServer server;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    Client client(executor, pool({server.port()}));
    EXPECT_FALSE(co_await client.set("page:/a", "first", 0, seconds(0)));
    EXPECT_FALSE(co_await client.set("page:/a", "hello", 3, seconds(0)));  // the last write wins
    const GetResult hit = co_await client.get("page:/a");
    EXPECT_FALSE(hit.error) << hit.error.message();
    EXPECT_TRUE(hit.item.has_value());
    if (hit.item) {
      EXPECT_EQ(hit.item->value, "hello");
      EXPECT_EQ(hit.item->flags, 3u);
      EXPECT_FALSE(hit.item->ttl_left.has_value());
    }
    EXPECT_EQ(server.peek("page:/a"), "hello");  // stored under the key as given

    const GetResult miss = co_await client.get("page:/none");
    EXPECT_FALSE(miss.error) << miss.error.message();
    EXPECT_FALSE(miss.item.has_value());

    EXPECT_FALSE(co_await client.remove("page:/a"));
    EXPECT_EQ(server.peek("page:/a"), std::nullopt);
    const GetResult removed = co_await client.get("page:/a");
    EXPECT_FALSE(removed.error);
    EXPECT_FALSE(removed.item.has_value());
    const boost::system::error_code again = co_await client.remove("page:/a");  // already gone: not an error
    EXPECT_FALSE(again) << again.message();
  });
}

TEST(MemcacheClient, AddStoresOnlyWhenTheKeyIsAbsent) {
  MemcachedServer server;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    Client client(executor, pool({server.port()}));
    const boost::system::error_code first = co_await client.add("version:/a", "1", 5, seconds(0));
    EXPECT_FALSE(first) << first.message();
    EXPECT_EQ(server.peek("version:/a"), "1");
    const boost::system::error_code second = co_await client.add("version:/a", "2", 6, seconds(0));
    EXPECT_EQ(second, boost::system::errc::file_exists) << second.message();
    EXPECT_EQ(server.peek("version:/a"), "1") << "the first value stays";
    const GetResult kept = co_await client.get("version:/a");
    EXPECT_TRUE(kept.item && kept.item->value == "1" && kept.item->flags == 5u);

    // A set still overwrites; once removed, the key can be added again.
    EXPECT_FALSE(co_await client.set("version:/a", "3", 0, seconds(0)));
    EXPECT_EQ(co_await client.add("version:/a", "4", 0, seconds(0)), boost::system::errc::file_exists);
    EXPECT_EQ(server.peek("version:/a"), "3");
    EXPECT_FALSE(co_await client.remove("version:/a"));
    EXPECT_FALSE(co_await client.add("version:/a", "5", 0, seconds(100)));
    const GetResult added = co_await client.get("version:/a");
    EXPECT_TRUE(added.item && added.item->value == "5" && added.item->ttl_left &&
                added.item->ttl_left->count() >= 99);

    // The same on one connection, and the connection is still fine after the refusal.
    auto connection = std::make_shared<Connection>(executor, one(server.port()));
    EXPECT_EQ(co_await connection->add("version:/a", "6", 0, seconds(0)), boost::system::errc::file_exists);
    EXPECT_FALSE(co_await connection->add("version:/b", "7", 0, seconds(0)));
    EXPECT_TRUE(connection->connected());
    const GetResult b = co_await connection->get("version:/b");
    EXPECT_TRUE(b.item && b.item->value == "7");
    // Keys and ttls are checked as for set.
    EXPECT_EQ(co_await connection->add("a b", "v", 0, seconds(0)), asio::error::invalid_argument);
    EXPECT_EQ(co_await connection->add("k", "v", 0, seconds(-1)), asio::error::invalid_argument);
    connection->close();
  });
}

TEST(MemcacheClient, GetManyAnswersEveryKeyInOrder) {
  MemcachedServer server;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    Client client(executor, pool({server.port()}));
    EXPECT_FALSE(co_await client.set("many:1", "one", 1, seconds(0), "group"));
    EXPECT_FALSE(co_await client.set("many:3", std::string("th\0ree\r\n", 8), 3, seconds(50), "group"));
    // (Named vectors: g++ 12 cannot keep a braced list of literals alive across co_await.)
    const std::vector<std::string> asked{"many:3", "many:2", "many:1", "many:3"};
    const std::vector<GetResult> results = co_await client.get_many(asked, "group");
    EXPECT_EQ(results.size(), 4u);
    if (results.size() == 4) {
      for (const GetResult& result : results) EXPECT_FALSE(result.error) << result.error.message();
      EXPECT_TRUE(results[0].item && results[0].item->value == std::string("th\0ree\r\n", 8) &&
                  results[0].item->flags == 3u && results[0].item->ttl_left);
      EXPECT_FALSE(results[1].item.has_value()) << "a miss keeps its place";
      EXPECT_TRUE(results[2].item && results[2].item->value == "one" && results[2].item->flags == 1u &&
                  !results[2].item->ttl_left);
      EXPECT_TRUE(results[3].item && results[3].item->value == std::string("th\0ree\r\n", 8))
          << "a repeated key is answered twice";
    }

    // Only misses; a single key; none at all.
    const std::vector<std::string> absent{"none:1", "none:2"};
    const std::vector<GetResult> misses = co_await client.get_many(absent, "group");
    EXPECT_EQ(misses.size(), 2u);
    for (const GetResult& miss : misses) EXPECT_TRUE(!miss.error && !miss.item);
    const std::vector<std::string> one_key{"many:1"};
    const std::vector<GetResult> single = co_await client.get_many(one_key, "group");
    EXPECT_TRUE(single.size() == 1 && single[0].item && single[0].item->value == "one");
    const std::vector<GetResult> nothing = co_await client.get_many(std::vector<std::string>{}, "group");
    EXPECT_TRUE(nothing.empty());

    // One bad key refuses them all, before anything is sent.
    auto connection = std::make_shared<Connection>(executor, one(server.port()));
    const std::vector<std::string> with_bad{"many:1", "bad key"};
    const std::vector<GetResult> refused = co_await connection->get_many(with_bad);
    EXPECT_EQ(refused.size(), 2u);
    for (const GetResult& result : refused) EXPECT_EQ(result.error, asio::error::invalid_argument);
    // Many keys at once, interleaved with single gets on the same connection.
    std::vector<std::string> keys;
    for (int i = 0; i < 300; ++i) keys.push_back(i % 2 == 0 ? "many:1" : "none:" + std::to_string(i));
    std::vector<GetResult> batch;
    GetResult alone;
    int finished = 0;
    asio::co_spawn(
        executor,
        [&]() -> asio::awaitable<void> {
          batch = co_await connection->get_many(keys);
          ++finished;
        },
        asio::detached);
    asio::co_spawn(
        executor,
        [&]() -> asio::awaitable<void> {
          alone = co_await connection->get("many:3");
          ++finished;
        },
        asio::detached);
    co_await wait_until(executor, [&] { return finished == 2; });
    EXPECT_EQ(batch.size(), keys.size());
    for (std::size_t i = 0; i < batch.size(); ++i) {
      EXPECT_FALSE(batch[i].error) << i;
      EXPECT_EQ(batch[i].item.has_value(), i % 2 == 0) << i;
    }
    EXPECT_TRUE(alone.item && alone.item->flags == 3u);
    connection->close();
  });
}

TEST(MemcacheClient, KeysWithOnePlacementLiveOnItsServer) {
  MemcachedServer first, second, third;
  const std::vector<MemcachedServer*> servers{&first, &second, &third};
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    Client client(executor, pool({first.port(), second.port(), third.port()}));
    const std::string placement = "apigw:r2:users:resource";
    const std::size_t home = client.server_index(placement);
    CO_ASSERT(home < servers.size());
    int elsewhere = 0;  // keys that would live on another server by their own hash
    std::vector<std::string> keys;
    for (int i = 0; i < 30; ++i) {
      const std::string key = "apigw:v2:users:variant" + std::to_string(i);
      keys.push_back(key);
      elsewhere += client.server_index(key) != home;
      EXPECT_FALSE(co_await client.set(key, "v" + std::to_string(i), 0, seconds(0), placement)) << key;
    }
    EXPECT_FALSE(co_await client.add(placement, "42", 0, seconds(0), placement));
    EXPECT_GT(elsewhere, 5) << "the test would prove nothing if every key lived there anyway";
    for (std::size_t i = 0; i < servers.size(); ++i) {
      for (const std::string& key : keys) {
        EXPECT_EQ(servers[i]->peek(key).has_value(), i == home) << key << " on server " << i;
      }
      EXPECT_EQ(servers[i]->peek(placement).has_value(), i == home);
    }
    // Every command with the placement finds them.
    for (int i = 0; i < 30; ++i) {
      const GetResult read = co_await client.get(keys[i], placement);
      EXPECT_TRUE(read.item && read.item->value == "v" + std::to_string(i)) << keys[i];
    }
    const std::vector<std::string> pair{keys[7], placement};
    const std::vector<GetResult> both = co_await client.get_many(pair, placement);
    EXPECT_TRUE(both.size() == 2 && both[0].item && both[0].item->value == "v7" && both[1].item &&
                both[1].item->value == "42");
    EXPECT_EQ(co_await client.add(placement, "43", 0, seconds(0), placement), boost::system::errc::file_exists);
    EXPECT_FALSE(co_await client.remove(keys[7], placement));
    EXPECT_EQ(servers[home]->peek(keys[7]), std::nullopt);
    const GetResult gone = co_await client.get(keys[7], placement);
    EXPECT_TRUE(!gone.error && !gone.item);
    // An empty placement is the key's own.
    EXPECT_FALSE(co_await client.set("own", "x", 0, seconds(0), ""));
    EXPECT_EQ(servers[client.server_index("own")]->peek("own"), "x");
  });
}

TEST(MemcacheClient, ValuesAreBinarySafe) {
  MemcachedServer server;
  std::vector<std::string> values;
  values.push_back(std::string("a\0b\r\nc", 6));
  values.push_back("VA 3 O1\r\nabc\r\nEN\r\n");  // looks like replies
  values.push_back("\r\n");
  values.push_back("");
  std::string every_byte;
  for (int i = 0; i < 256; ++i) every_byte.push_back(static_cast<char>(i));
  values.push_back(every_byte);
  std::string large;
  for (std::size_t i = 0; i < 300000; ++i) large.push_back(static_cast<char>(i * 7919 % 251));  // several reads
  values.push_back(large);
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    Client client(executor, pool({server.port()}));
    for (std::size_t i = 0; i < values.size(); ++i) {
      const std::string key = "binary:" + std::to_string(i);
      EXPECT_FALSE(co_await client.set(key, values[i], 0, seconds(0))) << i;
      const GetResult read = co_await client.get(key);
      EXPECT_FALSE(read.error) << i << ": " << read.error.message();
      EXPECT_TRUE(read.item && read.item->value == values[i]) << i;
      EXPECT_EQ(server.peek(key), values[i]) << i;
    }
  });
}

TEST(MemcacheClient, FlagsAndExpiry) {
  MemcachedServer server;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    Client client(executor, pool({server.port()}));
    EXPECT_FALSE(co_await client.set("flags", "v", 0xFFFFFFFFu, seconds(0)));
    const GetResult all_ones = co_await client.get("flags");
    EXPECT_TRUE(all_ones.item && all_ones.item->flags == 0xFFFFFFFFu && !all_ones.item->ttl_left);

    EXPECT_FALSE(co_await client.set("ttl:100", "v", 0, seconds(100)));
    const GetResult hundred = co_await client.get("ttl:100");
    EXPECT_TRUE(hundred.item && hundred.item->ttl_left && hundred.item->ttl_left->count() >= 99 &&
                hundred.item->ttl_left->count() <= 100);

    // Over 30 days memcached reads the expiry as a Unix time: the client converts it.
    const seconds sixty_days(60 * 24 * 3600);
    EXPECT_FALSE(co_await client.set("ttl:60d", "v", 0, sixty_days));
    const GetResult long_lived = co_await client.get("ttl:60d");
    EXPECT_TRUE(long_lived.item && long_lived.item->ttl_left &&
                std::abs(long_lived.item->ttl_left->count() - sixty_days.count()) <= 2)
        << (long_lived.item && long_lived.item->ttl_left ? long_lived.item->ttl_left->count() : -1);

    // memcached's clock ticks once a second: an item stored for 2 s goes between 1 and 2 s later.
    EXPECT_FALSE(co_await client.set("ttl:2", "short", 0, seconds(2)));
    const auto stored = std::chrono::steady_clock::now();
    const GetResult fresh = co_await client.get("ttl:2");
    EXPECT_TRUE(fresh.item && fresh.item->value == "short" && fresh.item->ttl_left &&
                fresh.item->ttl_left->count() >= 1);
    bool gone = false;
    while (!gone && since(stored) < milliseconds(3500)) {
      co_await sleep(executor, milliseconds(100));
      const GetResult later = co_await client.get("ttl:2");
      EXPECT_FALSE(later.error);
      gone = !later.item;
    }
    EXPECT_TRUE(gone);
    EXPECT_GE(since(stored), milliseconds(500));
  });
}

TEST(MemcacheConnection, ConcurrentCommandsArePipelinedOnOneConnection) {
  MemcachedServer server;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto connection = std::make_shared<Connection>(executor, one(server.port(), milliseconds(3000)));
    constexpr int kCommands = 500;
    std::size_t most_in_flight = 0;
    int finished = 0;
    std::vector<boost::system::error_code> stored(kCommands);
    for (int i = 0; i < kCommands; ++i) {
      asio::co_spawn(
          executor,
          [&, i]() -> asio::awaitable<void> {
            stored[i] = co_await connection->set("k" + std::to_string(i), std::string(i % 50, 'x') + std::to_string(i),
                                                 0, seconds(0));
            most_in_flight = std::max(most_in_flight, connection->in_flight());
            ++finished;
          },
          asio::detached);
    }
    co_await wait_until(executor, [&] { return finished == kCommands; });
    EXPECT_EQ(finished, kCommands);
    for (int i = 0; i < kCommands; ++i) EXPECT_FALSE(stored[i]) << i << ": " << stored[i].message();

    // Lookups, every third one a miss, issued at once; each gets its own answer.
    std::vector<GetResult> results(kCommands);
    finished = 0;
    for (int i = 0; i < kCommands; ++i) {
      asio::co_spawn(
          executor,
          [&, i]() -> asio::awaitable<void> {
            results[i] = co_await connection->get((i % 3 == 0 ? "missing" : "k") + std::to_string(i));
            most_in_flight = std::max(most_in_flight, connection->in_flight());
            ++finished;
          },
          asio::detached);
    }
    co_await wait_until(executor, [&] { return finished == kCommands; });
    EXPECT_EQ(finished, kCommands);
    for (int i = 0; i < kCommands; ++i) {
      EXPECT_FALSE(results[i].error) << i << ": " << results[i].error.message();
      if (i % 3 == 0) {
        EXPECT_FALSE(results[i].item.has_value()) << i;
      } else {
        EXPECT_TRUE(results[i].item && results[i].item->value == std::string(i % 50, 'x') + std::to_string(i)) << i;
      }
    }
    EXPECT_GT(most_in_flight, 100u);  // many commands waited on the one connection at the same time
    connection->close();
  });
}

TEST(MemcacheConnection, AnItemOverTheSizeLimitIsRefusedAndTheConnectionStaysUsable) {
  MemcachedServer server({"-I", "1m"});
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    auto connection = std::make_shared<Connection>(executor, one(server.port(), milliseconds(2000)));
    EXPECT_FALSE(co_await connection->set("small", "kept", 0, seconds(0)));
    const std::string under(512 * 1024, 'u');
    EXPECT_FALSE(co_await connection->set("half", under, 0, seconds(0)));

    // The 2 MiB item and a lookup pipelined right behind it.
    boost::system::error_code big_error;
    GetResult behind;
    int finished = 0;
    asio::co_spawn(
        executor,
        [&]() -> asio::awaitable<void> {
          big_error = co_await connection->set("big", std::string(2 * 1024 * 1024, 'b'), 0, seconds(0));
          ++finished;
        },
        asio::detached);
    asio::co_spawn(
        executor,
        [&]() -> asio::awaitable<void> {
          behind = co_await connection->get("small");
          ++finished;
        },
        asio::detached);
    co_await wait_until(executor, [&] { return finished == 2; });
    EXPECT_EQ(big_error, asio::error::message_size) << big_error.message();
    EXPECT_FALSE(behind.error) << behind.error.message();
    EXPECT_TRUE(behind.item && behind.item->value == "kept");
    EXPECT_TRUE(connection->connected());
    EXPECT_EQ(server.peek("big"), std::nullopt);

    const GetResult half = co_await connection->get("half");
    EXPECT_TRUE(half.item && half.item->value == under);
    EXPECT_FALSE(co_await connection->set("after", "ok", 0, seconds(0)));
    EXPECT_EQ(server.peek("after"), "ok");
    connection->close();
  });
}

TEST(MemcacheClient, BadKeysAreRefusedWithoutBeingSent) {
  const std::vector<std::string> bad{"",       std::string(251, 'k'), "a b",      "a\r\nb", "tab\there",
                                     "ctl\x01", "del\x7f",              "end\n",    "nul" + std::string(1, '\0')};
  const std::vector<std::string> good{std::string(250, 'k'), "caf\xc3\xa9"};  // the longest; bytes beyond ASCII
  MemcachedServer server;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    // No server on this port: a key that were sent would fail with connection_refused instead.
    Client nowhere(executor, pool({test_servers::free_port()}));
    for (const std::string& key : bad) {
      EXPECT_EQ((co_await nowhere.get(key)).error, asio::error::invalid_argument) << key;
      EXPECT_EQ(co_await nowhere.set(key, "v", 0, seconds(0)), asio::error::invalid_argument) << key;
      EXPECT_EQ(co_await nowhere.remove(key), asio::error::invalid_argument) << key;
    }
    EXPECT_EQ(co_await nowhere.set("good", "v", 0, seconds(-1)), asio::error::invalid_argument);
    EXPECT_EQ((co_await nowhere.get("good")).error, asio::error::connection_refused);

    Client client(executor, pool({server.port()}));
    for (const std::string& key : good) {
      EXPECT_FALSE(co_await client.set(key, "v:" + key, 0, seconds(0)));
      EXPECT_EQ(server.peek(key), "v:" + key);
    }
  });
}

TEST(MemcacheClient, AServerKilledFailsFastThenRecoversWhenRestarted) {
  MemcachedServer server;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    Client client(executor, pool({server.port()}, milliseconds(300)));
    EXPECT_FALSE(co_await client.set("k", "before", 0, seconds(0)));
    EXPECT_FALSE(co_await client.set("k", "before", 0, seconds(0)));  // both connections open
    server.stop();
    // Every command fails at once (reset, refused or backing off), well within the timeout.
    for (int i = 0; i < 6; ++i) {
      const auto start = std::chrono::steady_clock::now();
      const GetResult down = co_await client.get("k");
      EXPECT_TRUE(down.error) << i;
      EXPECT_LT(since(start), milliseconds(100)) << i << ": " << down.error.message();
    }
    server.start();
    const auto restarted = std::chrono::steady_clock::now();
    // Backoff stays short while the outage is: every connection of the pool is soon back, the same client.
    int in_a_row = 0;
    while (in_a_row < 4 && since(restarted) < milliseconds(4000)) {
      const GetResult back = co_await client.get("k");
      if (back.error) {
        in_a_row = 0;
        co_await sleep(executor, milliseconds(50));
      } else {
        ++in_a_row;
        EXPECT_FALSE(back.item.has_value());  // the restarted server kept nothing
      }
    }
    EXPECT_EQ(in_a_row, 4);
    EXPECT_FALSE(co_await client.set("k", "after", 0, seconds(0)));
    EXPECT_EQ(server.peek("k"), "after");
  });
}

TEST(MemcacheClient, AServerThatDoesNotAnswerTimesOutThenRecovers) {
  MemcachedServer server;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    ClientOptions options = pool({server.port()}, milliseconds(200));
    options.connections = 1;
    Client client(executor, options);
    EXPECT_FALSE(co_await client.set("k", "v", 0, seconds(0)));
    server.pause();
    const auto start = std::chrono::steady_clock::now();
    const GetResult stuck = co_await client.get("k");
    const milliseconds took = since(start);
    EXPECT_EQ(stuck.error, asio::error::timed_out) << stuck.error.message();
    EXPECT_GE(took, milliseconds(190));
    EXPECT_LT(took, milliseconds(450));
    const auto early_start = std::chrono::steady_clock::now();
    const GetResult early = co_await client.get("k");  // backing off: no wait at all
    EXPECT_EQ(early.error, asio::error::not_connected);
    EXPECT_LT(since(early_start), milliseconds(20));
    server.resume();
    co_await sleep(executor, milliseconds(150));  // past the first backoff
    const GetResult back = co_await client.get("k");
    EXPECT_FALSE(back.error) << back.error.message();
    EXPECT_TRUE(back.item && back.item->value == "v");
  });
}

TEST(MemcacheClient, KeyPlacementAgreesWithLibmemcachedKetama) {
  MemcachedServer first, second, third;
  const std::vector<MemcachedServer*> servers{&first, &second, &third};
  const ClientOptions options = pool({first.port(), second.port(), third.port()});
  auto reference = libmemcached_client(options);
  constexpr int kKeys = 200;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    Client client(executor, options);
    std::vector<int> per_server(servers.size());
    // Where a key is, asking each server directly: only on the server server_index() names.
    auto expect_only_on = [&](const std::string& key, const std::string& value) {
      const std::size_t index = client.server_index(key);
      ++per_server.at(index);
      for (std::size_t i = 0; i < servers.size(); ++i) {
        EXPECT_EQ(servers[i]->peek(key), i == index ? std::optional<std::string>(value) : std::nullopt) << key;
      }
    };

    // Written by libmemcached, read by apigw.
    for (int i = 0; i < kKeys; ++i) {
      const std::string key = "lib:" + std::to_string(i);
      const std::string value = "from libmemcached " + std::to_string(i);
      const memcached_return_t stored = memcached_set(reference.get(), key.data(), key.size(), value.data(),
                                                      value.size(), 0, static_cast<std::uint32_t>(i));
      EXPECT_EQ(stored, MEMCACHED_SUCCESS) << memcached_strerror(reference.get(), stored);
      const GetResult read = co_await client.get(key);
      EXPECT_FALSE(read.error) << key << ": " << read.error.message();
      EXPECT_TRUE(read.item && read.item->value == value && read.item->flags == static_cast<std::uint32_t>(i)) << key;
      expect_only_on(key, value);
    }
    // Written by apigw, read by libmemcached.
    for (int i = 0; i < kKeys; ++i) {
      const std::string key = "apigw:" + std::to_string(i);
      const std::string value = "from apigw " + std::to_string(i);
      EXPECT_FALSE(co_await client.set(key, value, static_cast<std::uint32_t>(i), seconds(0))) << key;
      std::size_t length = 0;
      std::uint32_t flags = 0;
      memcached_return_t status = MEMCACHED_SUCCESS;
      char* found = memcached_get(reference.get(), key.data(), key.size(), &length, &flags, &status);
      EXPECT_EQ(status, MEMCACHED_SUCCESS) << key << ": " << memcached_strerror(reference.get(), status);
      EXPECT_TRUE(found != nullptr && std::string(found, length) == value && flags == static_cast<std::uint32_t>(i))
          << key;
      std::free(found);
      expect_only_on(key, value);
    }
    // The keys are spread: every server holds a fair share, so a wrong placement could not pass unnoticed.
    for (std::size_t i = 0; i < servers.size(); ++i) EXPECT_GT(per_server[i], 2 * kKeys / 10) << i;
  });
}

TEST(MemcacheClient, PlacementNeedsNoServerAndMatchesLibmemcached) {
  // Documentation addresses nobody answers; the default port takes another path in libmemcached's continuum.
  ClientOptions options;
  options.servers = {{"192.0.2.1", 11211, {}}, {"192.0.2.2", 11211, {}}, {"198.51.100.7", 11311, {}},
                     {"2001:db8::1", 11211, {}}};
  auto reference = libmemcached_client(options);
  asio::io_context loop;
  Client client(loop.get_executor(), options);
  std::vector<int> per_server(options.servers.size());
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 2000; ++i) {
    const std::string key = "GET:/api/items/" + std::to_string(i);
    const std::size_t index = client.server_index(key);
    ASSERT_LT(index, options.servers.size());
    ++per_server[index];
    EXPECT_EQ(index, memcached_generate_hash(reference.get(), key.data(), key.size())) << key;
  }
  EXPECT_LT(since(start), milliseconds(200));  // hashing only: no connection, no name lookup
  for (const int count : per_server) EXPECT_GT(count, 200);

  ClientOptions empty;
  EXPECT_THROW(Client(loop.get_executor(), empty), std::invalid_argument);
  ClientOptions unresolved;
  unresolved.servers = {{"localhost", 11211, {}}};
  EXPECT_THROW(Client(loop.get_executor(), unresolved), std::invalid_argument);
}

TEST(MemcacheClient, PlacementHashesServersAsNamed) {
  // A pool written with host names elsewhere: apigw connects to the resolved addresses but places keys by the
  // names, as the other clients of the pool do.
  ClientOptions named;
  named.servers = {{"192.0.2.1", 11211, "cache-a.internal"}, {"192.0.2.2", 11211, "cache-b.internal"},
                   {"192.0.2.3", 11211, "cache-c.internal"}};
  auto by_name = libmemcached_client(named);
  ClientOptions by_address = named;
  for (Server& server : by_address.servers) server.name.clear();
  auto by_address_reference = libmemcached_client(by_address);
  asio::io_context loop;
  Client client(loop.get_executor(), named);
  int differs = 0;
  for (int i = 0; i < 500; ++i) {
    const std::string key = "k" + std::to_string(i);
    const std::size_t index = client.server_index(key);
    EXPECT_EQ(index, memcached_generate_hash(by_name.get(), key.data(), key.size())) << key;
    differs += index != memcached_generate_hash(by_address_reference.get(), key.data(), key.size());
  }
  EXPECT_GT(differs, 50) << "names and addresses place keys differently, so the names must be what is hashed";
}

}  // namespace
}  // namespace apigw::memcache
