// One worker's token lookups: the local TokenCache first, then Redis over the worker's connections (round robin,
// each pipelined), with concurrent lookups of one token sharing one Redis call (single flight). Answers are
// cached (valid for `ttl`, invalid for `negative_ttl`); errors never are. Worker thread only.
#pragma once

#include <chrono>
#include <memory>
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
#include "apigw/redis/connection.h"

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
  // `connections` are this worker's, at least one.
  Authenticator(boost::asio::any_io_executor executor, LookupSettings settings,
                std::vector<std::shared_ptr<redis::Connection>> connections);
  ~Authenticator();
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  // The user `token` belongs to. The token must have passed check_token().
  boost::asio::awaitable<Lookup> lookup(std::string token);
  std::size_t cached_entries() const { return cache_.size(); }
  // Lookups that went to Redis (not the cache, not another lookup's flight).
  std::uint64_t redis_calls() const { return redis_calls_; }

 private:
  struct Flight {
    std::vector<boost::asio::steady_timer*> waiters;
    Lookup result;
  };

  boost::asio::awaitable<Lookup> ask_redis(const std::string& token);
  Lookup interpret(const redis::Result& result) const;

  boost::asio::any_io_executor executor_;
  LookupSettings settings_;
  std::vector<std::shared_ptr<redis::Connection>> connections_;
  std::size_t next_ = 0;
  TokenCache cache_;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_;
  std::uint64_t redis_calls_ = 0;
};

}  // namespace apigw::auth
