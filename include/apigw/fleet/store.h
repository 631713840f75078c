// The fleet's state in Redis, as `apigw ctl` writes it and every instance reads it. Every key of one fleet carries
// the hash tag {FLEET}, so that a Redis Cluster keeps them in one slot (one node, scripts and MGET work):
//   apigw:control:{FLEET}:state       the State as JSON (GET)
//   apigw:control:{FLEET}:history     a stream of changes, and of refused attempts (XADD MAXLEN kHistoryLength)
//   apigw:control:{FLEET}:instances   a sorted set of instance ids by heartbeat expiry (Unix ms)
//   apigw:control:{FLEET}:instance:ID an instance's heartbeat as JSON, with a TTL (SET PX)
//   apigw:control:{FLEET}:ramps       guarded ramps (ramp.h) by route, as JSON (a hash)
//   apigw:control:{FLEET}:stats:ROUTE:T  the fleet's per-side figures of a route for the kStatsBucketMs starting at
//                                     T (Unix ms), each instance adding what it counted (HINCRBY), with a TTL
//   apigw:control:{FLEET}:judge       the lease of the instance that judges the ramps (SET PX)
// A change is written by one script that compares the version, sets the state and appends to the history; an
// instance learns of it by a blocking read of the history (XREAD BLOCK), so changes reach it at once, and reads
// the state again at least every poll interval.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "apigw/fleet/ramp.h"
#include "apigw/fleet/state.h"
#include "apigw/redis/client.h"

namespace apigw::fleet {

inline constexpr std::size_t kHistoryLength = 1000;
inline constexpr std::int64_t kStatsBucketMs = 2000;
inline constexpr std::int64_t kStatsTtlMs = 3600 * 1000;  // a hold longer than this is judged on its last hour

struct Keys {
  explicit Keys(std::string_view fleet);
  std::string state;
  std::string history;
  std::string instances;
  std::string instance(std::string_view id) const;
  std::string ramps;
  std::string judge;
  std::string stats(std::string_view route, std::int64_t bucket_ms) const;

 private:
  std::string prefix_;
};

// What went wrong with a Redis call: `reason` is the metric label ("redis": unreachable, timed out or refused;
// "state": a value apigw cannot read), `message` says it for people. Empty reason: no error.
struct Failure {
  std::string reason;
  std::string message;
  explicit operator bool() const { return !reason.empty(); }
};

struct ReadResult {
  Failure failure;
  std::optional<State> state;  // nullopt: nothing written yet
};

struct WriteResult {
  Failure failure;
  bool written = false;        // false without a failure: the version had moved on (compare-and-set refused)
  std::uint64_t found = 0;     // the version Redis held
};

struct HistoryEntry {
  std::string id;        // the stream entry's id
  bool refused = false;  // an attempt refused because version `found` had been written first
  std::uint64_t found = 0;
  State state;           // the state written (or attempted)
};

struct HistoryResult {
  Failure failure;
  std::vector<HistoryEntry> entries;  // newest first
};

// An instance's heartbeat.
struct Instance {
  std::string id;    // host:pid
  std::string host;
  std::int64_t pid = 0;
  std::uint64_t version = 0;        // the version it serves
  std::int64_t effective_at_ms = 0; // that version's
  std::int64_t applied_at_ms = 0;   // when it switched to it (0: served since start)
  std::string source;               // "redis", "state_file" or "yaml": where the state it serves came from
  std::int64_t heartbeat_at_ms = 0;
  std::uint64_t generation = 0;     // its config generation
  std::string error;                // its last control error, if any
};

std::string encode(const Instance& instance);
std::optional<Instance> decode_instance(std::string_view json);

struct InstancesResult {
  Failure failure;
  std::vector<Instance> instances;  // live ones, by id
};

struct TimeResult {
  Failure failure;
  std::int64_t now_ms = 0;
};

struct WaitResult {
  Failure failure;
  std::string last_id;  // the newest history entry id seen ("0-0" for an empty history)
};

struct RampsResult {
  Failure failure;
  std::vector<RampState> ramps;  // by route
};

struct FiguresResult {
  Failure failure;
  SideFigures route_side;
  SideFigures split_side;
  AuditFigures audit;
};

struct LeaseResult {
  Failure failure;
  bool held = false;  // by the one who asked
};

class Store {
 public:
  // `client` outlives the store.
  Store(redis::Client& client, std::string_view fleet) : client_(client), keys_(fleet) {}

  const Keys& keys() const { return keys_; }

  boost::asio::awaitable<ReadResult> read();
  // Writes `next` (its version expected + 1) if the state's version is still `expected`; else appends the attempt
  // to the history as refused.
  boost::asio::awaitable<WriteResult> write(const State& next, std::uint64_t expected);
  boost::asio::awaitable<TimeResult> now();  // Redis's clock (TIME), in Unix ms
  boost::asio::awaitable<HistoryResult> history(std::size_t count);
  // Both take their arguments by value: the coroutine keeps them while it waits.
  boost::asio::awaitable<Failure> heartbeat(Instance instance, std::chrono::milliseconds ttl);
  boost::asio::awaitable<Failure> forget(std::string id);  // an instance that stops
  boost::asio::awaitable<InstancesResult> instances();
  // The id of the newest history entry.
  boost::asio::awaitable<WaitResult> last_id();
  // Waits up to `block` for a history entry newer than `after`; answers with the newest id (or `after`).
  // `client_` must allow a round trip of `block` plus its timeout.
  boost::asio::awaitable<WaitResult> wait(std::string after, std::chrono::milliseconds block);

  // Guarded ramps. A ramp is written if its stored revision is still `expected` (0: none stored); `next` carries
  // expected + 1. Figures (what an instance counted over the last kStatsBucketMs) go to the bucket that holds
  // `at_ms`; a window sums the buckets that start at least a bucket after its start.
  boost::asio::awaitable<RampsResult> ramps();
  boost::asio::awaitable<WriteResult> write_ramp(RampState next, std::uint64_t expected);
  boost::asio::awaitable<Failure> add_figures(std::string route, std::int64_t at_ms, SideFigures route_side,
                                              SideFigures split_side, AuditFigures audit);
  boost::asio::awaitable<FiguresResult> figures(std::string route, std::int64_t from_ms, std::int64_t to_ms);
  // Takes the judge's lease, or renews it when `holder` has it; held is false when another instance has it.
  boost::asio::awaitable<LeaseResult> lease(std::string holder, std::chrono::milliseconds ttl);

 private:
  redis::Client& client_;
  Keys keys_;
};

}  // namespace apigw::fleet
