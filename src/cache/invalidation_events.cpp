// The invalidation stream's consumer (see invalidation_events.h).
#include "apigw/cache/invalidation_events.h"

#include <unistd.h>

#include <array>
#include <chrono>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "apigw/redis/client.h"
#include "apigw/redis/client_options.h"
#include "apigw/redis/command.h"

namespace apigw::cache {
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using redis::Reply;

namespace {

constexpr auto kInfoEvery = std::chrono::seconds(1);
constexpr auto kCleanupEvery = std::chrono::minutes(1);
constexpr long long kGoneConsumerIdleMs = 60LL * 60 * 1000;
constexpr auto kLogEvery = std::chrono::seconds(10);
constexpr auto kLongestBackoff = std::chrono::seconds(5);

std::string host_name() {
  std::array<char, 256> name{};
  if (::gethostname(name.data(), name.size() - 1) != 0) return "unknown";
  return name.data();
}

bool is_text(const Reply& reply) { return reply.type == Reply::Type::kString || reply.type == Reply::Type::kStatus; }

// [id, [field, value, ...]] (the field list nil when the entry was trimmed).
std::optional<StreamEntry> entry_of(const Reply& reply) {
  if (reply.type != Reply::Type::kArray || reply.elements.size() != 2 || !is_text(reply.elements[0])) {
    return std::nullopt;
  }
  StreamEntry entry;
  entry.id = reply.elements[0].text;
  const Reply& fields = reply.elements[1];
  if (fields.type == Reply::Type::kNil) return entry;
  if (fields.type != Reply::Type::kArray || fields.elements.size() % 2 != 0) return std::nullopt;
  for (std::size_t i = 0; i + 1 < fields.elements.size(); i += 2) {
    if (!is_text(fields.elements[i]) || !is_text(fields.elements[i + 1])) return std::nullopt;
    entry.fields.emplace_back(fields.elements[i].text, fields.elements[i + 1].text);
  }
  return entry;
}

std::optional<std::vector<StreamEntry>> entries_of(const Reply& list) {
  if (list.type != Reply::Type::kArray) return std::nullopt;
  std::vector<StreamEntry> entries;
  entries.reserve(list.elements.size());
  for (const Reply& element : list.elements) {
    std::optional<StreamEntry> entry = entry_of(element);
    if (!entry) return std::nullopt;
    entries.push_back(std::move(*entry));
  }
  return entries;
}

// A flat [name, value, ...] map's integer value; nullopt when absent or not an integer.
std::optional<long long> map_integer(const Reply& map, std::string_view name) {
  for (std::size_t i = 0; i + 1 < map.elements.size(); i += 2) {
    if (is_text(map.elements[i]) && map.elements[i].text == name &&
        map.elements[i + 1].type == Reply::Type::kInteger) {
      return map.elements[i + 1].integer;
    }
  }
  return std::nullopt;
}

std::string map_text(const Reply& map, std::string_view name) {
  for (std::size_t i = 0; i + 1 < map.elements.size(); i += 2) {
    if (is_text(map.elements[i]) && map.elements[i].text == name && is_text(map.elements[i + 1])) {
      return map.elements[i + 1].text;
    }
  }
  return {};
}

std::string describe(const redis::Result& result) {
  return result.error ? result.error.message() : result.reply.text;
}

bool failed(const redis::Result& result) { return result.error || result.reply.type == Reply::Type::kError; }

}  // namespace

std::optional<std::vector<StreamEntry>> read_group_entries(const Reply& reply) {
  if (reply.type == Reply::Type::kNil) return std::vector<StreamEntry>{};  // nothing new
  if (reply.type != Reply::Type::kArray) return std::nullopt;
  std::vector<StreamEntry> entries;
  for (const Reply& stream : reply.elements) {
    if (stream.type != Reply::Type::kArray || stream.elements.size() != 2) return std::nullopt;
    std::optional<std::vector<StreamEntry>> more = entries_of(stream.elements[1]);
    if (!more) return std::nullopt;
    for (StreamEntry& entry : *more) entries.push_back(std::move(entry));
  }
  return entries;
}

std::optional<std::vector<StreamEntry>> autoclaim_entries(const Reply& reply, std::string& next) {
  if (reply.type != Reply::Type::kArray || reply.elements.size() < 2 || !is_text(reply.elements[0])) {
    return std::nullopt;
  }
  next = reply.elements[0].text;
  return entries_of(reply.elements[1]);
}

EventStats::EventStats(core::MetricsRegistry& registry)
    : handled(registry.counter("apigw_cache_events_total",
                               "Invalidation events from the stream, by result: handled, failed (left pending, to be "
                               "handled again), malformed (acknowledged without effect)",
                               {{"result", "handled"}})),
      failed(registry.counter("apigw_cache_events_total", "", {{"result", "failed"}})),
      malformed(registry.counter("apigw_cache_events_total", "", {{"result", "malformed"}})),
      claimed(registry.counter("apigw_cache_events_claimed_total",
                               "Invalidation events taken over after cache.events.claim_after (an instance died, or "
                               "handling failed)")),
      redis_errors(registry.counter("apigw_cache_events_redis_errors_total",
                                    "Commands to the invalidation stream's Redis that failed")),
      lag(registry.gauge("apigw_cache_events_lag",
                         "Events in the stream the fleet's consumer group has not read yet")),
      pending(registry.gauge("apigw_cache_events_pending",
                             "Events read by the fleet's consumer group and not yet acknowledged")) {}

struct InvalidationEvents::Session {
  Session(const asio::any_io_executor& executor, config::CacheEventsConfig events,
          const std::vector<config::ResolvedEndpoint>& nodes)
      : config(std::move(events)),
        client(executor, redis::client_options(config.redis, nodes)),
        timer(executor) {}

  config::CacheEventsConfig config;
  redis::Client client;
  asio::steady_timer timer;
  bool stopped = false;
  Clock::time_point last_logged{};

  template <class... Args>
  void warn(fmt::format_string<Args...> format, Args&&... args) {
    const auto now = Clock::now();
    if (now - last_logged < kLogEvery) return;
    last_logged = now;
    spdlog::warn("cache.events: {}", fmt::format(format, std::forward<Args>(args)...));
  }
};

namespace {

using Session = InvalidationEvents::Session;

struct Consumer {
  std::shared_ptr<Session> session;
  EventStats& stats;
  std::function<std::shared_ptr<ResponseCache>()> cache_of;
  std::string name;

  const std::string& stream() const { return session->config.stream; }
  const std::string& group() const { return session->config.group; }

  asio::awaitable<redis::Result> send(std::vector<std::string> words) {
    redis::Result result = co_await session->client.command(std::move(words), stream());
    if (failed(result) && !session->stopped) stats.redis_errors.add();
    co_return result;
  }

  asio::awaitable<bool> create_group() {
    const redis::Result result = co_await send(redis::command("XGROUP", "CREATE", stream(), group(), "$", "MKSTREAM"));
    if (!failed(result) || (!result.error && result.reply.text.starts_with("BUSYGROUP"))) co_return true;
    session->warn("cannot create consumer group '{}' on stream '{}': {}", group(), stream(), describe(result));
    co_return false;
  }

  // Invalidates what each entry names and acknowledges the entries handled (or that name nothing).
  asio::awaitable<void> handle(std::vector<StreamEntry> entries) {
    if (entries.empty()) co_return;
    std::shared_ptr<ResponseCache> cache = cache_of();
    if (!cache) co_return;
    std::vector<std::string> ack = redis::command("XACK", stream(), group());
    for (StreamEntry& entry : entries) {
      std::string why;
      std::optional<Invalidation> invalidation = invalidation_from_fields(entry.fields, why);
      if (!invalidation) {
        stats.malformed.add();
        spdlog::warn("cache.events: entry {} of stream '{}' is ignored: {}", entry.id, stream(), why);
        ack.push_back(std::move(entry.id));
        continue;
      }
      if (const boost::system::error_code error = co_await cache->invalidate(std::move(*invalidation))) {
        stats.failed.add();
        session->warn("entry {} could not be handled ({}): it stays pending, to be taken over after {} ms",
                      entry.id, error.message(), session->config.claim_after.count());
        continue;
      }
      stats.handled.add();
      ack.push_back(std::move(entry.id));
    }
    if (ack.size() == 3) co_return;
    const redis::Result acked = co_await send(std::move(ack));
    if (failed(acked)) session->warn("XACK failed: {} (the entries will be handled again)", describe(acked));
  }

  // Takes over entries pending longer than claim_after; true when there are more to page through.
  asio::awaitable<bool> claim(std::string& start) {
    const auto idle_ms = std::to_string(session->config.claim_after.count());
    const redis::Result result = co_await send(redis::command("XAUTOCLAIM", stream(), group(), name, idle_ms, start,
                                                              "COUNT", std::to_string(session->config.batch)));
    if (failed(result)) {
      session->warn("XAUTOCLAIM failed: {}", describe(result));
      co_return false;
    }
    std::string next;
    std::optional<std::vector<StreamEntry>> entries = autoclaim_entries(result.reply, next);
    if (!entries) co_return false;
    stats.claimed.add(entries->size());
    co_await handle(std::move(*entries));
    start = next;
    co_return next != "0-0";
  }

  // Reads new entries; nullopt when the group is gone (the stream was deleted).
  asio::awaitable<std::optional<std::size_t>> read_new() {
    const redis::Result result = co_await send(redis::command("XREADGROUP", "GROUP", group(), name, "COUNT",
                                                              std::to_string(session->config.batch), "STREAMS",
                                                              stream(), ">"));
    if (failed(result)) {
      if (!result.error && result.reply.text.starts_with("NOGROUP")) co_return std::nullopt;
      session->warn("XREADGROUP failed: {}", describe(result));
      co_return 0;
    }
    std::optional<std::vector<StreamEntry>> entries = read_group_entries(result.reply);
    if (!entries) co_return 0;
    const std::size_t count = entries->size();
    co_await handle(std::move(*entries));
    co_return count;
  }

  asio::awaitable<void> read_info() {
    const redis::Result result = co_await send(redis::command("XINFO", "GROUPS", stream()));
    if (failed(result) || result.reply.type != Reply::Type::kArray) co_return;
    for (const Reply& entry : result.reply.elements) {
      if (map_text(entry, "name") != group()) continue;
      stats.pending.set(map_integer(entry, "pending").value_or(0));
      stats.lag.set(map_integer(entry, "lag").value_or(0));
    }
  }

  // Consumers idle for an hour with nothing pending (instances that are gone) leave the group.
  asio::awaitable<void> remove_gone_consumers() {
    const redis::Result result = co_await send(redis::command("XINFO", "CONSUMERS", stream(), group()));
    if (failed(result) || result.reply.type != Reply::Type::kArray) co_return;
    for (const Reply& consumer : result.reply.elements) {
      const std::string other = map_text(consumer, "name");
      if (other.empty() || other == name || map_integer(consumer, "pending").value_or(1) != 0 ||
          map_integer(consumer, "idle").value_or(0) < kGoneConsumerIdleMs) {
        continue;
      }
      co_await send(redis::command("XGROUP", "DELCONSUMER", stream(), group(), other));
    }
  }

  asio::awaitable<void> run() {
    bool group_ready = false;
    std::string claim_from = "0-0";
    Clock::time_point next_claim = Clock::now();  // at start: whatever an earlier instance left pending
    Clock::time_point next_info = Clock::now();
    Clock::time_point next_cleanup = Clock::now() + kCleanupEvery;
    core::Duration backoff = session->config.poll;
    while (!session->stopped) {
      bool more = false;
      bool ok = true;
      if (!group_ready) ok = group_ready = co_await create_group();
      if (group_ready && Clock::now() >= next_claim) {
        more = co_await claim(claim_from);
        if (!more) {
          claim_from = "0-0";
          next_claim = Clock::now() + session->config.claim_after / 2;
        }
      }
      if (group_ready && !session->stopped) {
        const std::optional<std::size_t> read = co_await read_new();
        if (!read) {
          group_ready = false;  // made again on the next round
          continue;
        }
        more = more || *read == session->config.batch;
      }
      if (group_ready && Clock::now() >= next_info) {
        co_await read_info();
        next_info = Clock::now() + kInfoEvery;
      }
      if (group_ready && Clock::now() >= next_cleanup) {
        co_await remove_gone_consumers();
        next_cleanup = Clock::now() + kCleanupEvery;
      }
      if (more || session->stopped) continue;
      backoff = ok ? session->config.poll : std::min<core::Duration>(backoff * 2, kLongestBackoff);
      session->timer.expires_after(backoff);
      co_await session->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }
};

asio::awaitable<void> consume(Consumer consumer) { co_await consumer.run(); }

}  // namespace

InvalidationEvents::InvalidationEvents(asio::any_io_executor executor, core::MetricsRegistry& registry,
                                       std::function<std::shared_ptr<ResponseCache>()> cache)
    : executor_(std::move(executor)),
      stats_(registry),
      cache_(std::move(cache)),
      consumer_(fmt::format("{}:{}", host_name(), ::getpid())) {}

InvalidationEvents::~InvalidationEvents() { stop(); }

void InvalidationEvents::update(const config::SnapshotPtr& snapshot) {
  const config::CacheConfig& cache = snapshot->config.cache;
  if (!cache.enabled || !cache.events.enabled) {
    stop();
    return;
  }
  if (session_ && running_ == cache.events && running_nodes_ == snapshot->cache_events_nodes) return;
  stop();
  running_ = cache.events;
  running_nodes_ = snapshot->cache_events_nodes;
  session_ = std::make_shared<Session>(executor_, running_, running_nodes_);
  spdlog::info("cache.events: consuming stream '{}' as '{}' of group '{}'", running_.stream, consumer_,
               running_.group);
  asio::co_spawn(executor_, consume(Consumer{session_, stats_, cache_, consumer_}), asio::detached);
}

void InvalidationEvents::stop() {
  if (!session_) return;
  session_->stopped = true;
  session_->timer.cancel();
  session_->client.close();
  session_.reset();
}

}  // namespace apigw::cache
