// Token lookups with a local cache and single flight (see authenticator.h).
#include "apigw/auth/authenticator.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <spdlog/spdlog.h>

namespace apigw::auth {
namespace asio = boost::asio;

namespace {
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

Lookup error_lookup(boost::system::error_code error) {
  Lookup lookup;
  lookup.error = error;
  return lookup;
}
}  // namespace

Authenticator::Authenticator(asio::any_io_executor executor, LookupSettings settings,
                             std::vector<std::shared_ptr<redis::Connection>> connections)
    : executor_(std::move(executor)),
      settings_(std::move(settings)),
      connections_(std::move(connections)),
      cache_(settings_.max_entries) {}

Authenticator::~Authenticator() {
  for (const auto& connection : connections_) connection->close();
}

asio::awaitable<Lookup> Authenticator::lookup(std::string token) {
  const auto now = TokenCache::Clock::now();
  if (const TokenCache::Entry* entry = cache_.find(token, now)) {
    Lookup cached;
    cached.outcome = entry->user ? Lookup::Outcome::kUser : Lookup::Outcome::kInvalid;
    if (entry->user) cached.user = *entry->user;
    cached.cached = true;
    co_return cached;
  }
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
  const std::shared_ptr<redis::Connection> connection = connections_[next_++ % connections_.size()];
  std::vector<std::string> command;
  const std::string key = expand_key(settings_.key_template, token);
  if (settings_.user_id.kind == UserIdField::Kind::kHash) {
    command = {"HGET", key, settings_.user_id.field};
  } else {
    command = {"GET", key};
  }
  const redis::Result result = co_await connection->command(std::move(command));
  co_return interpret(result);
}

Lookup Authenticator::interpret(const redis::Result& result) const {
  if (result.error) return error_lookup(result.error);
  const redis::Reply& reply = result.reply;
  Lookup lookup;
  if (reply.type == redis::Reply::Type::kNil) {
    lookup.outcome = Lookup::Outcome::kInvalid;
    return lookup;
  }
  if (reply.type != redis::Reply::Type::kString) {
    // WRONGTYPE and the like: the data is not what the config says it is.
    spdlog::warn("auth: unexpected Redis reply for a token key: {}", reply.text);
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
      spdlog::warn("auth: token value is not a JSON object with a string or integer '{}'", settings_.user_id.field);
      return error_lookup(make_error_code(boost::system::errc::bad_message));
    }
  }
  if (!forwardable_user_id(user)) {
    spdlog::warn("auth: a token's user id is empty, too long or not visible ASCII; refusing it");
    return error_lookup(make_error_code(boost::system::errc::bad_message));
  }
  lookup.outcome = Lookup::Outcome::kUser;
  lookup.user = std::move(user);
  return lookup;
}

}  // namespace apigw::auth
