// Shared endpoint health (see health.h).
#include "apigw/upstream/health.h"

#include <set>

namespace apigw::upstream {

bool EndpointHealth::record_connect_failure(const config::PassiveHealthConfig& passive, bool may_eject) {
  const unsigned failures = connect_failures.fetch_add(1, std::memory_order_relaxed) + 1;
  if (passive.unhealthy_after == 0 || failures < passive.unhealthy_after || !may_eject) return false;
  const auto now = Clock::now();
  // Several workers may cross the threshold together; the one whose exchange succeeds records the ejection.
  std::int64_t seen = ejected_until.load(std::memory_order_relaxed);
  if (seen != 0 && now.time_since_epoch().count() < seen) return false;
  const std::int64_t until = (now + passive.eject_for).time_since_epoch().count();
  if (!ejected_until.compare_exchange_strong(seen, until, std::memory_order_relaxed)) return false;
  connect_failures.store(0, std::memory_order_relaxed);
  ejections.fetch_add(1, std::memory_order_relaxed);
  return true;
}

std::vector<EndpointHealthPtr> HealthTable::entries(const config::Upstream& upstream) {
  std::lock_guard lock(mutex_);
  std::vector<EndpointHealthPtr> found;
  for (const config::ResolvedEndpoint& endpoint : upstream.endpoints) {
    EndpointHealthPtr& entry = entries_[{upstream.config.name, endpoint.text}];
    if (!entry) entry = std::make_shared<EndpointHealth>(upstream.config.name, endpoint.text);
    found.push_back(entry);
  }
  return found;
}

void HealthTable::retain(const config::Snapshot& snapshot) {
  std::set<std::pair<std::string, std::string>> configured;
  for (const config::Upstream& upstream : snapshot.upstreams) {
    for (const auto& endpoint : upstream.endpoints) configured.emplace(upstream.config.name, endpoint.text);
  }
  std::lock_guard lock(mutex_);
  std::erase_if(entries_, [&](const auto& entry) { return !configured.contains(entry.first); });
}

std::vector<EndpointHealthPtr> HealthTable::all() const {
  std::lock_guard lock(mutex_);
  std::vector<EndpointHealthPtr> all;
  for (const auto& [key, entry] : entries_) all.push_back(entry);
  return all;
}

}  // namespace apigw::upstream
