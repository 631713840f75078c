// The per-worker token cache (see token_cache.h).
#include "apigw/auth/token_cache.h"

namespace apigw::auth {

const TokenCache::Entry* TokenCache::find(std::string_view token, Clock::time_point now) {
  const auto found = entries_.find(token);
  if (found == entries_.end()) return nullptr;
  const Order::iterator item = found->second;
  if (now >= item->entry.expires) {
    order_.erase(item);
    entries_.erase(found);
    return nullptr;
  }
  order_.splice(order_.begin(), order_, item);
  return &item->entry;
}

void TokenCache::store(std::string_view token, std::optional<std::string> user, Clock::duration ttl,
                       Clock::time_point now) {
  if (max_entries_ == 0 || ttl <= Clock::duration::zero()) return;
  const Entry entry{std::move(user), now + ttl};
  if (const auto found = entries_.find(token); found != entries_.end()) {
    found->second->entry = entry;
    order_.splice(order_.begin(), order_, found->second);
    return;
  }
  if (entries_.size() >= max_entries_) {
    entries_.erase(order_.back().token);
    order_.pop_back();
  }
  order_.push_front(Item{std::string(token), entry});
  entries_.emplace(order_.front().token, order_.begin());
}

}  // namespace apigw::auth
