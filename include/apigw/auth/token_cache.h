// One worker's memory of recent token lookups, so that most requests need no Redis call: a valid token maps to
// its user id for `ttl`, an unknown one is remembered as invalid for `negative_ttl`. Bounded: past `max_entries`
// the least recently used entry goes. Worker thread only; pure (the clock is passed in).
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace apigw::auth {

class TokenCache {
 public:
  using Clock = std::chrono::steady_clock;

  struct Entry {
    std::optional<std::string> user;  // nullopt: the token is known to be invalid
    Clock::time_point expires;
  };

  explicit TokenCache(std::size_t max_entries) : max_entries_(max_entries) {}

  // The live entry for `token`, or null (never stored, expired, or evicted). A hit counts as a use.
  const Entry* find(std::string_view token, Clock::time_point now);
  // Remembers `token` until now + ttl; a zero ttl or max_entries 0 stores nothing.
  void store(std::string_view token, std::optional<std::string> user, Clock::duration ttl, Clock::time_point now);
  std::size_t size() const { return entries_.size(); }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
  };
  struct Item {
    std::string token;
    Entry entry;
  };
  using Order = std::list<Item>;  // most recently used first

  std::size_t max_entries_;
  Order order_;
  std::unordered_map<std::string, Order::iterator, Hash, std::equal_to<>> entries_;
};

}  // namespace apigw::auth
