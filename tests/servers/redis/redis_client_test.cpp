// redis::Client against real redis-servers: a standalone server (round robin, ACL user, database) and one six-node
// Redis Cluster shared by the cluster tests (routing, MOVED, ASK, failover, seeds that are down).
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>

#include "apigw/redis/client.h"
#include "coroutine_test.h"
#include "redis_server.h"

namespace apigw::redis {
namespace {
namespace asio = boost::asio;
using std::chrono::milliseconds;
using test_servers::cmd;
using test_servers::redis_cli;
using test_servers::RedisCluster;
using test_servers::RedisServer;
using test_servers::run;
using test_servers::wait_until;

NodeAddress loopback(std::uint16_t port) { return NodeAddress{"127.0.0.1", port}; }

ClientOptions standalone(std::uint16_t port) {
  ClientOptions options;
  options.nodes = {loopback(port)};
  options.timeout = milliseconds(500);
  return options;
}

// A key not used before by this process (the cluster is shared, and tests may be repeated).
std::string fresh(const std::string& prefix) {
  static int next = 0;
  return prefix + ":" + std::to_string(next++);
}

asio::awaitable<void> sleep_for(asio::any_io_executor executor, milliseconds duration) {
  asio::steady_timer timer(executor, duration);
  co_await timer.async_wait(asio::use_awaitable);
}

TEST(RedisClient, StandaloneRoundRobinAndCloseThenReuse) {
  RedisServer server;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    ClientOptions options = standalone(server.port());
    options.connections = 3;
    Client client(executor, options);
    EXPECT_TRUE(client.masters().empty());
    std::vector<long long> ids;
    for (int i = 0; i < 6; ++i) {
      Result id = co_await client.command(cmd("CLIENT", "ID"), "");
      EXPECT_FALSE(id.error) << id.error.message();
      ids.push_back(id.reply.integer);
    }
    // Three connections, taken in turn.
    EXPECT_EQ(std::set<long long>(ids.begin(), ids.end()).size(), 3u);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(ids[i], ids[i + 3]) << i;
    Result set = co_await client.command(cmd("SET", "k", "v"), "k");
    EXPECT_EQ(set.reply.text, "OK");
    Result get = co_await client.command(cmd("GET", "k"), "k");
    EXPECT_EQ(get.reply.text, "v");

    // close() fails what is in flight; the client then connects anew.
    Result blocked;
    bool finished = false;
    asio::co_spawn(
        executor,
        [&]() -> asio::awaitable<void> {
          blocked = co_await client.command(cmd("BLPOP", "nothing", "0"), "nothing");
          finished = true;
        },
        asio::detached);
    co_await sleep_for(executor, milliseconds(50));
    client.close();
    co_await wait_until(executor, [&] { return finished; });
    EXPECT_EQ(blocked.error, asio::error::operation_aborted) << blocked.error.message();
    Result again = co_await client.command(cmd("CLIENT", "ID"), "");
    EXPECT_FALSE(again.error) << again.error.message();
    EXPECT_GT(again.reply.integer, *std::max_element(ids.begin(), ids.end()));
    client.close();
  });
}

TEST(RedisClient, StandaloneAclUserAndDatabase) {
  RedisServer server;
  redis_cli(server.port(), "ACL", "SETUSER", "gateway", "on", ">pw", "~*", "+@all");
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    ClientOptions options = standalone(server.port());
    options.username = "gateway";
    options.password = "pw";
    options.db = 4;
    Client client(executor, options);
    Result set = co_await client.command(cmd("SET", "where", "db4"), "where");
    EXPECT_FALSE(set.error) << set.error.message();
    EXPECT_EQ(set.reply.text, "OK");
    Result info = co_await client.command(cmd("CLIENT", "INFO"), "");
    EXPECT_NE(info.reply.text.find("user=gateway"), std::string::npos) << info.reply.text;
    EXPECT_NE(info.reply.text.find("db=4"), std::string::npos) << info.reply.text;
    client.close();

    options.password = "wrong";
    Client refused(executor, options);
    Result denied = co_await refused.command(cmd("GET", "where"), "where");
    EXPECT_EQ(denied.error, boost::system::errc::permission_denied) << denied.error.message();
    refused.close();
  });
  EXPECT_EQ(redis_cli(server.port(), "-n", "4", "GET", "where"), "db4");
  EXPECT_EQ(redis_cli(server.port(), "GET", "where"), "");
}

// One cluster for the suite: three masters with a replica each, node timeout 1 s.
class RedisClusterClient : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      cluster_ = std::make_unique<RedisCluster>(3, 1);
    } catch (const std::exception& error) {
      std::cerr << "cannot start the Redis Cluster: " << error.what() << "\n";
    }
  }
  static void TearDownTestSuite() { cluster_.reset(); }
  void SetUp() override {
    ASSERT_NE(cluster_, nullptr);
    cluster_->wait_settled();
  }

  // Every node as a seed.
  static ClientOptions seeds() {
    ClientOptions options;
    options.cluster = true;
    for (const std::uint16_t port : cluster_->ports()) options.nodes.push_back(loopback(port));
    options.timeout = milliseconds(500);
    return options;
  }
  // Reshards the slot of `key`, with `key` in it, from the master on `from` to the one on `to`.
  static void move_slot_of(const std::string& key, std::uint16_t from, std::uint16_t to) {
    cluster_->begin_migration(key_slot(key), from, to);
    cluster_->migrate_keys(from, to, {key});
    cluster_->finish_migration(key_slot(key), to);
  }
  static std::uint16_t other_master(std::uint16_t than) {
    for (const std::uint16_t master : cluster_->masters()) {
      if (master != than) return master;
    }
    throw std::runtime_error("one master only");
  }

  static inline std::unique_ptr<RedisCluster> cluster_;
};

TEST_F(RedisClusterClient, RoutesKeysToTheirMastersAndHashTagsToOneSlot) {
  const std::uint16_t live = cluster_->live_port();
  const RedisCluster::Owners owners = RedisCluster::owners(live);
  std::vector<std::string> keys;
  std::set<std::uint16_t> used;
  for (int i = 0; i < 24; ++i) {
    keys.push_back(fresh("route"));
    used.insert(owners[key_slot(keys.back())]);
    redis_cli(live, "-c", "SET", keys.back(), "value of " + keys.back());
  }
  ASSERT_EQ(used.size(), 3u);  // the keys are spread over every master
  core::Counter moved;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    Client client(executor, seeds(), ClientMetrics{&moved, nullptr, nullptr});
    for (const std::string& key : keys) {
      Result get = co_await client.command(cmd("GET", key), key);
      EXPECT_FALSE(get.error) << key << ": " << get.error.message();
      EXPECT_EQ(get.reply.text, "value of " + key);
    }
    EXPECT_EQ(moved.value(), 0u);  // every key went straight to its master
    std::set<std::uint16_t> masters;
    for (const NodeAddress& master : client.masters()) masters.insert(master.port);
    EXPECT_EQ(masters, used);

    // Keys with one hash tag share a slot: a multi-key command on them is served by one master.
    const std::string tag = "{" + fresh("user") + "}";
    co_await client.command(cmd("SET", tag + ":session", "s"), tag + ":session");
    co_await client.command(cmd("SET", tag + ":profile", "p"), tag + ":profile");
    Result both = co_await client.command(cmd("MGET", tag + ":session", tag + ":profile"), tag + ":session");
    EXPECT_EQ(both.reply.type, Reply::Type::kArray);
    if (both.reply.elements.size() == 2) {
      EXPECT_EQ(both.reply.elements[0].text, "s");
      EXPECT_EQ(both.reply.elements[1].text, "p");
    } else {
      ADD_FAILURE() << "MGET: " << both.reply.text;
    }
    EXPECT_EQ(moved.value(), 0u);
    client.close();
  });
}

TEST_F(RedisClusterClient, FollowsMovedThenRefreshesTheWholeMap) {
  const std::uint16_t live = cluster_->live_port();
  const RedisCluster::Owners owners = RedisCluster::owners(live);
  const std::string moved_key = fresh("moved");
  const std::uint16_t slot = key_slot(moved_key);
  const std::uint16_t from = owners[slot];
  const std::uint16_t to = other_master(from);
  // Another key of the same master, in another slot, that moves too but is never asked for before the refresh.
  std::string quiet_key = fresh("quiet");
  while (owners[key_slot(quiet_key)] != from || key_slot(quiet_key) == slot) quiet_key = fresh("quiet");
  redis_cli(live, "-c", "SET", moved_key, "m");
  redis_cli(live, "-c", "SET", quiet_key, "q");
  core::Counter moved;
  core::Counter ask;
  core::Counter refreshes;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    Client client(executor, seeds(), ClientMetrics{&moved, &ask, &refreshes});
    Result before = co_await client.command(cmd("GET", moved_key), moved_key);
    EXPECT_EQ(before.reply.text, "m");
    EXPECT_EQ(moved.value(), 0u);
    const std::uint64_t refreshed = refreshes.value();
    EXPECT_GE(refreshed, 1u);

    // Both slots move to another master while the client keeps its map (it is idle: blocking here is harmless).
    move_slot_of(moved_key, from, to);
    move_slot_of(quiet_key, from, to);
    cluster_->wait_settled();

    Result after = co_await client.command(cmd("GET", moved_key), moved_key);
    EXPECT_FALSE(after.error) << after.error.message();
    EXPECT_EQ(after.reply.text, "m");
    EXPECT_EQ(moved.value(), 1u);
    co_await wait_until(executor, [&] { return refreshes.value() > refreshed; });
    EXPECT_GT(refreshes.value(), refreshed);

    // The refreshed map knows the other slot's new owner too, and the first one's: no more redirects.
    Result quiet = co_await client.command(cmd("GET", quiet_key), quiet_key);
    EXPECT_EQ(quiet.reply.text, "q");
    Result again = co_await client.command(cmd("GET", moved_key), moved_key);
    EXPECT_EQ(again.reply.text, "m");
    EXPECT_EQ(moved.value(), 1u);
    EXPECT_EQ(ask.value(), 0u);
    client.close();
  });
}

TEST_F(RedisClusterClient, FollowsAskWithAskingOnTheSameConnection) {
  const std::uint16_t live = cluster_->live_port();
  const std::string tag = "{" + fresh("ask") + "}";
  const std::uint16_t slot = key_slot(tag);
  const std::uint16_t from = cluster_->master_of(slot);
  const std::uint16_t to = other_master(from);
  constexpr int kMigrated = 10;
  std::vector<std::string> migrated;
  std::vector<std::string> mset{"redis-cli", "-p", std::to_string(live), "-c", "MSET", tag + ":stays", "s"};
  for (int i = 0; i < kMigrated; ++i) {
    migrated.push_back(tag + ":" + std::to_string(i));
    mset.insert(mset.end(), {migrated.back(), "v" + std::to_string(i)});
  }
  test_servers::run_program(mset);
  // A key of the importing master in another slot: its commands share the connection with the ASKING pairs.
  std::string neighbour = fresh("neighbour");
  while (cluster_->master_of(key_slot(neighbour)) != to) neighbour = fresh("neighbour");
  redis_cli(live, "-c", "SET", neighbour, "n");
  cluster_->begin_migration(slot, from, to);
  cluster_->migrate_keys(from, to, migrated);

  core::Counter moved;
  core::Counter ask;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    ClientOptions options = seeds();
    options.connections = 1;
    Client client(executor, options, ClientMetrics{&moved, &ask, nullptr});
    Result stays = co_await client.command(cmd("GET", tag + ":stays"), tag + ":stays");
    EXPECT_EQ(stays.reply.text, "s");
    EXPECT_EQ(ask.value(), 0u);

    // All at once, interleaved with other commands to the importing master on the same single connection: each
    // ASKING must stay right before its own command or the importing master answers MOVED.
    std::vector<Result> results(kMigrated);
    std::vector<Result> others(kMigrated);
    int finished = 0;
    for (int i = 0; i < kMigrated; ++i) {
      asio::co_spawn(
          executor,
          [&, i]() -> asio::awaitable<void> {
            results[i] = co_await client.command(cmd("GET", migrated[i]), migrated[i]);
            ++finished;
          },
          asio::detached);
      asio::co_spawn(
          executor,
          [&, i]() -> asio::awaitable<void> {
            others[i] = co_await client.command(cmd("GET", neighbour), neighbour);
            ++finished;
          },
          asio::detached);
    }
    co_await wait_until(executor, [&] { return finished == 2 * kMigrated; });
    for (int i = 0; i < kMigrated; ++i) {
      EXPECT_FALSE(results[i].error) << i << ": " << results[i].error.message();
      EXPECT_EQ(results[i].reply.text, "v" + std::to_string(i)) << i;
      EXPECT_EQ(others[i].reply.text, "n") << i;
    }
    EXPECT_EQ(ask.value(), static_cast<std::uint64_t>(kMigrated));
    EXPECT_EQ(moved.value(), 0u);
    // ASK does not change the map: the next command for the slot starts at the old owner again.
    Result again = co_await client.command(cmd("GET", migrated[0]), migrated[0]);
    EXPECT_EQ(again.reply.text, "v0");
    EXPECT_EQ(ask.value(), static_cast<std::uint64_t>(kMigrated + 1));
    client.close();
  });
  cluster_->migrate_keys(from, to, {tag + ":stays"});
  cluster_->finish_migration(slot, to);
}

TEST_F(RedisClusterClient, SeedsThatAreDown) {
  const std::uint16_t live = cluster_->live_port();
  const std::uint16_t dead = test_servers::free_port();
  const std::string key = fresh("seeded");
  redis_cli(live, "-c", "SET", key, "found");
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    ClientOptions options = seeds();
    options.nodes = {loopback(dead), loopback(live)};
    Client client(executor, options);
    Result get = co_await client.command(cmd("GET", key), key);
    EXPECT_FALSE(get.error) << get.error.message();
    EXPECT_EQ(get.reply.text, "found");
    EXPECT_EQ(client.masters().size(), 3u);
    client.close();

    options.nodes = {loopback(dead), loopback(test_servers::free_port())};
    Client lost(executor, options);
    for (int i = 0; i < 2; ++i) {
      const auto start = std::chrono::steady_clock::now();
      Result none = co_await lost.command(cmd("GET", key), key);
      EXPECT_EQ(none.error, asio::error::not_connected) << none.error.message();
      EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(300));
    }
    EXPECT_TRUE(lost.masters().empty());
    lost.close();

    // Destroyed with its first refresh in flight: the refresh stops without touching it (and this loop ends).
    { Client brief(executor, seeds()); }
  });
}

// Kills a master, and restarts it (it comes back as a replica) at the end so that the cluster stays whole.
TEST_F(RedisClusterClient, FailsFastWhenAMasterDiesThenFindsThePromotedReplica) {
  const std::string key = fresh("failover");
  const std::uint16_t victim = cluster_->master_of(key_slot(key));
  core::Counter refreshes;
  run([&](asio::any_io_executor executor) -> asio::awaitable<void> {
    ClientOptions options = seeds();
    options.connections = 1;  // WAIT below counts the writes of the connection that made them
    Client client(executor, options, ClientMetrics{nullptr, nullptr, &refreshes});
    co_await client.command(cmd("SET", key, "survives"), key);
    Result replicated = co_await client.command(cmd("WAIT", "1", "400"), key);
    EXPECT_EQ(replicated.reply.integer, 1) << replicated.reply.text;

    cluster_->node(victim).stop();
    const auto start = std::chrono::steady_clock::now();
    Result down = co_await client.command(cmd("GET", key), key);
    EXPECT_TRUE(down.error) << down.reply.text;
    EXPECT_LT(std::chrono::steady_clock::now() - start, options.timeout + milliseconds(200));
    const std::uint64_t refreshed = refreshes.value();

    // The replica takes over after the node timeout (1 s) and an election: the same client finds it.
    Result back;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < deadline) {
      const auto attempt = std::chrono::steady_clock::now();
      back = co_await client.command(cmd("GET", key), key);
      EXPECT_LT(std::chrono::steady_clock::now() - attempt, options.timeout + milliseconds(200));
      if (!back.error && back.reply.type == Reply::Type::kString) break;
      co_await sleep_for(executor, milliseconds(50));
    }
    EXPECT_FALSE(back.error) << back.error.message();
    EXPECT_EQ(back.reply.text, "survives");
    EXPECT_GT(refreshes.value(), refreshed);
    const std::vector<NodeAddress> masters = client.masters();
    EXPECT_EQ(masters.size(), 3u);
    for (const NodeAddress& master : masters) EXPECT_NE(master.port, victim);
    client.close();
  });
  cluster_->node(victim).start();
  cluster_->wait_settled(std::chrono::seconds(30));
}

}  // namespace
}  // namespace apigw::redis
