// One worker's token lookups: the local TokenCache first, then Redis through the worker's redis::Client
// (standalone or cluster, pipelined), with concurrent lookups of one token sharing one Redis call (single flight).
// Answers are cached (valid for `ttl`, invalid for `negative_ttl`); errors never are. Worker thread only.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>

#include "apigw/auth/token.h"
#include "apigw/auth/token_cache.h"
#include "apigw/core/metrics.h"
#include "apigw/redis/client.h"

namespace apigw::auth {

struct LookupSettings {
  std::string key_template = "session:{token}";
  UserIdField user_id;
  std::chrono::milliseconds ttl = std::chrono::seconds(5);
  std::chrono::milliseconds negative_ttl = std::chrono::seconds(1);
  std::size_t max_entries = 100000;
};

struct Lookup {
  enum class Outcome { kUser, kInvalid, kError };
  Outcome outcome = Outcome::kError;
  std::string user;                 // kUser
  boost::system::error_code error;  // kError: timed_out, not_connected, ...; bad_message for unusable data
  bool cached = false;              // answered by the local cache
};

class Authenticator {
 public:
  // `redis` is this worker's client; with `metrics`, lookups are counted in the worker's series:
  // apigw_auth_lookups_total{result=hit|miss|error|timeout} (Redis lookups), apigw_auth_local_cache_hits_total
  // and apigw_auth_redis_duration_seconds.
  Authenticator(boost::asio::any_io_executor executor, LookupSettings settings, std::unique_ptr<redis::Client> redis,
                core::MetricsRegistry* metrics = nullptr);
  ~Authenticator();
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  // The user `token` belongs to. The token must have passed check_token().
  boost::asio::awaitable<Lookup> lookup(std::string token);
  // The local cache's answer for `token`, without suspending (no coroutine frame): what most requests need.
  std::optional<Lookup> cached(std::string_view token);
  std::size_t cached_entries() const { return cache_.size(); }
  // Closes the Redis connections (lookups in flight fail); the next lookup reconnects.
  void close() { redis_->close(); }
  // Lookups that went to Redis (not the cache, not another lookup's flight).
  std::uint64_t redis_calls() const { return redis_calls_; }

 private:
  struct Flight {
    std::vector<boost::asio::steady_timer*> waiters;
    Lookup result;
  };

  boost::asio::awaitable<Lookup> ask_redis(const std::string& token);
  Lookup interpret(const redis::Result& result);

  struct Series {
    core::Counter* hit = nullptr;
    core::Counter* miss = nullptr;
    core::Counter* error = nullptr;
    core::Counter* timeout = nullptr;
    core::Counter* local_hits = nullptr;
    core::Histogram* duration = nullptr;
  };
  void count(const Lookup& lookup, std::chrono::steady_clock::duration took);
  void warn_bad_data(std::string_view what);

  boost::asio::any_io_executor executor_;
  LookupSettings settings_;
  std::unique_ptr<redis::Client> redis_;
  Series series_;
  TokenCache cache_;
  std::chrono::steady_clock::time_point last_warning_{};
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_;
  std::uint64_t redis_calls_ = 0;
};

}  // namespace apigw::auth
