// Token lookups with a local cache and single flight (see authenticator.h).
#include "apigw/auth/authenticator.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "apigw/net/no_throw.h"

namespace apigw::auth {
namespace asio = boost::asio;

namespace {
using net::kNoThrow;

Lookup error_lookup(boost::system::error_code error) {
  Lookup lookup;
  lookup.error = error;
  return lookup;
}
}  // namespace

Authenticator::Authenticator(asio::any_io_executor executor, LookupSettings settings,
                             std::unique_ptr<redis::Client> redis, core::MetricsRegistry* metrics)
    : executor_(std::move(executor)),
      settings_(std::move(settings)),
      redis_(std::move(redis)),
      cache_(settings_.max_entries) {
  if (metrics == nullptr) return;
  const auto lookups = [&](const char* result) {
    return &metrics->counter("apigw_auth_lookups_total",
                             "Token lookups sent to Redis, by result: hit (a user), miss (no such token), error, "
                             "timeout",
                             {{"result", result}});
  };
  series_.hit = lookups("hit");
  series_.miss = lookups("miss");
  series_.error = lookups("error");
  series_.timeout = lookups("timeout");
  series_.local_hits = &metrics->counter("apigw_auth_local_cache_hits_total",
                                         "Token lookups answered by the worker's local token cache");
  series_.duration = &metrics->histogram("apigw_auth_redis_duration_seconds",
                                         "Time a token lookup waited for Redis");
}

Authenticator::~Authenticator() { redis_->close(); }

void Authenticator::count(const Lookup& lookup, std::chrono::steady_clock::duration took) {
  if (series_.duration == nullptr) return;
  series_.duration->observe(took);
  switch (lookup.outcome) {
    case Lookup::Outcome::kUser: return series_.hit->add();
    case Lookup::Outcome::kInvalid: return series_.miss->add();
    case Lookup::Outcome::kError:
      return (lookup.error == asio::error::timed_out ? series_.timeout : series_.error)->add();
  }
}

// Bad data in Redis fails every lookup of that token, and errors are not cached: one warning a second at most.
void Authenticator::warn_bad_data(std::string_view what) {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_warning_ < std::chrono::seconds(1)) return;
  last_warning_ = now;
  spdlog::warn("auth: {}", what);
}

std::optional<Lookup> Authenticator::cached(std::string_view token) {
  const TokenCache::Entry* entry = cache_.find(token, TokenCache::Clock::now());
  if (entry == nullptr) return std::nullopt;
  Lookup found;
  found.outcome = entry->user ? Lookup::Outcome::kUser : Lookup::Outcome::kInvalid;
  if (entry->user) found.user = *entry->user;
  found.cached = true;
  if (series_.local_hits) series_.local_hits->add();
  return found;
}

asio::awaitable<Lookup> Authenticator::lookup(std::string token) {
  if (std::optional<Lookup> found = cached(token)) co_return std::move(*found);
  if (const auto found = flights_.find(token); found != flights_.end()) {
    // Another request is asking Redis about this token: wait for its answer (bounded by its timeout).
    const std::shared_ptr<Flight> flight = found->second;
    asio::steady_timer wake(executor_, asio::steady_timer::time_point::max());
    flight->waiters.push_back(&wake);
    co_await wake.async_wait(kNoThrow);
    co_return flight->result;
  }
  auto flight = std::make_shared<Flight>();
  flights_.emplace(token, flight);
  flight->result = co_await ask_redis(token);
  flights_.erase(token);
  const Lookup& result = flight->result;
  if (result.outcome == Lookup::Outcome::kUser) {
    cache_.store(token, result.user, settings_.ttl, TokenCache::Clock::now());
  } else if (result.outcome == Lookup::Outcome::kInvalid) {
    cache_.store(token, std::nullopt, settings_.negative_ttl, TokenCache::Clock::now());
  }
  for (asio::steady_timer* waiter : flight->waiters) waiter->cancel();
  co_return flight->result;
}

asio::awaitable<Lookup> Authenticator::ask_redis(const std::string& token) {
  ++redis_calls_;
  std::vector<std::string> command;
  std::string key = expand_key(settings_.key_template, token);
  if (settings_.user_id.kind == UserIdField::Kind::kHash) {
    command = {"HGET", key, settings_.user_id.field};
  } else {
    command = {"GET", key};
  }
  const auto start = std::chrono::steady_clock::now();
  const redis::Result result = co_await redis_->command(std::move(command), key);
  Lookup lookup = interpret(result);
  count(lookup, std::chrono::steady_clock::now() - start);
  co_return lookup;
}

Lookup Authenticator::interpret(const redis::Result& result) {
  if (result.error) return error_lookup(result.error);
  const redis::Reply& reply = result.reply;
  Lookup lookup;
  if (reply.type == redis::Reply::Type::kNil) {
    lookup.outcome = Lookup::Outcome::kInvalid;
    return lookup;
  }
  if (reply.type != redis::Reply::Type::kString) {
    // WRONGTYPE and the like: the data is not what the config says it is.
    warn_bad_data(fmt::format("unexpected Redis reply for a token key: {}", reply.text));
    return error_lookup(make_error_code(boost::system::errc::bad_message));
  }
  std::string user = reply.text;
  if (settings_.user_id.kind == UserIdField::Kind::kJson) {
    boost::system::error_code parse_error;
    const boost::json::value value = boost::json::parse(reply.text, parse_error);
    const boost::json::object* object = parse_error ? nullptr : value.if_object();
    const boost::json::value* field = object ? object->if_contains(settings_.user_id.field) : nullptr;
    if (field && field->is_string()) {
      user = std::string(field->as_string());
    } else if (field && field->is_int64()) {
      user = std::to_string(field->as_int64());
    } else if (field && field->is_uint64()) {
      user = std::to_string(field->as_uint64());
    } else {
      warn_bad_data(fmt::format("a token's value is not a JSON object with a string or integer '{}'",
                                settings_.user_id.field));
      return error_lookup(make_error_code(boost::system::errc::bad_message));
    }
  }
  if (!forwardable_user_id(user)) {
    warn_bad_data("a token's user id is empty, too long or not visible ASCII; refusing it");
    return error_lookup(make_error_code(boost::system::errc::bad_message));
  }
  lookup.outcome = Lookup::Outcome::kUser;
  lookup.user = std::move(user);
  return lookup;
}

}  // namespace apigw::auth
