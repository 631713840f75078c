// A pipelined memcached connection on Asio, meta protocol (see connection.h).
#include "apigw/memcache/connection.h"

#include <algorithm>

#include <boost/asio/error.hpp>
#include <spdlog/spdlog.h>

namespace apigw::memcache {
namespace asio = boost::asio;
using boost::system::error_code;
namespace errc = boost::system::errc;

namespace {

constexpr std::size_t kReadSize = 64 * 1024;
// memcached reads a larger exptime as a Unix time.
constexpr std::chrono::seconds kLongestRelativeTtl{60 * 60 * 24 * 30};

std::int64_t exptime(std::chrono::seconds ttl) {
  if (ttl <= kLongestRelativeTtl) return ttl.count();
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
      std::chrono::system_clock::now().time_since_epoch());
  return (now + ttl).count();
}

// A reply that is not the command's success, as an error code.
error_code reply_error(const Reply& reply) {
  switch (reply.code) {
    case Reply::Code::kServerError:
      if (reply.message.find("too large") != std::string::npos) return asio::error::message_size;
      if (reply.message.find("out of memory") != std::string::npos) return make_error_code(errc::not_enough_memory);
      return make_error_code(errc::io_error);
    case Reply::Code::kNotStored: return make_error_code(errc::io_error);
    default: return make_error_code(errc::bad_message);
  }
}

bool is_error_reply(const Reply& reply) {
  return reply.code == Reply::Code::kError || reply.code == Reply::Code::kClientError ||
         reply.code == Reply::Code::kServerError;
}

}  // namespace

// The replies a request (or a run of pipelined requests, get_many's) waits for: their opaques follow each other
// from `opaque`; the last reply finishes it.
struct Connection::Pending : Waiter {
  Pending(const asio::any_io_executor& executor, std::uint32_t opaque_in, std::size_t count_in = 1)
      : Waiter(executor), opaque(opaque_in), count(count_in) {}
  std::uint32_t opaque;
  std::size_t count;
  Reply reply;                 // with count 1
  std::vector<Reply> replies;  // with more, in order
  std::uint32_t expected() const { return opaque + static_cast<std::uint32_t>(replies.size()); }
};

Connection::Connection(asio::any_io_executor executor, ConnectionOptions options)
    : PipelinedConnection(std::move(executor),
                          {"memcached", std::move(options.address), options.port, options.timeout, kReadSize,
                           std::move(options.tls), std::move(options.server_name)}) {}

namespace {
Item item_of(Reply& reply) {
  Item item{std::move(reply.value), reply.flags, {}, reply.cas, reply.won, reply.fill_elsewhere, reply.stale};
  if (reply.ttl && *reply.ttl >= 0) item.ttl_left = std::chrono::seconds(*reply.ttl);
  return item;
}
}  // namespace

asio::awaitable<GetResult> Connection::get(std::string key, GetOptions options) {
  if (!valid_key(key)) co_return GetResult{asio::error::invalid_argument, {}};
  if (!accepting()) co_return GetResult{asio::error::not_connected, {}};
  const std::uint32_t opaque = next_opaque();
  encode_get(out(), key, opaque, options);
  Outcome outcome = co_await exchange(opaque);
  if (outcome.error) co_return GetResult{outcome.error, {}};
  Reply& reply = outcome.reply;
  if (reply.code == Reply::Code::kMiss) co_return GetResult{};
  if (reply.code != Reply::Code::kValue) co_return GetResult{reply_error(reply), {}};
  co_return GetResult{{}, item_of(reply)};
}

asio::awaitable<std::vector<GetResult>> Connection::get_many(std::vector<std::string> keys,
                                                            GetOptions first_options) {
  std::vector<GetResult> results(keys.size());
  if (keys.empty()) co_return results;
  const bool valid = std::all_of(keys.begin(), keys.end(), [](const std::string& key) { return valid_key(key); });
  const error_code refused = !valid ? error_code(asio::error::invalid_argument)
                             : !accepting() ? error_code(asio::error::not_connected) : error_code();
  if (refused) {
    for (GetResult& result : results) result.error = refused;
    co_return results;
  }
  // One waiter for the run: its replies come in order, the last one finishes it (or the connection fails it).
  const std::uint32_t first = opaque_ + 1;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    encode_get(out(), keys[i], next_opaque(), i == 0 ? first_options : GetOptions{});
  }
  const auto pending = std::make_shared<Pending>(executor(), first, keys.size());
  if (keys.size() > 1) pending->replies.reserve(keys.size());
  co_await await_reply(pending);
  for (std::size_t i = 0; i < results.size(); ++i) {
    Reply* reply = nullptr;
    if (keys.size() == 1) {
      reply = &pending->reply;
    } else if (i < pending->replies.size()) {
      reply = &pending->replies[i];
    }
    if (!pending->done || pending->error || reply == nullptr) {
      results[i].error = pending->error ? pending->error : error_code(asio::error::operation_aborted);
      continue;
    }
    if (reply->code == Reply::Code::kMiss) continue;
    if (reply->code != Reply::Code::kValue) {
      results[i].error = reply_error(*reply);
      continue;
    }
    results[i].item.emplace(item_of(*reply));
  }
  co_return results;
}

asio::awaitable<error_code> Connection::set(std::string key, std::string value, std::uint32_t flags,
                                            std::chrono::seconds ttl) {
  co_return co_await store(std::move(key), std::move(value), flags, ttl, false);
}

asio::awaitable<error_code> Connection::add(std::string key, std::string value, std::uint32_t flags,
                                            std::chrono::seconds ttl) {
  co_return co_await store(std::move(key), std::move(value), flags, ttl, true);
}

asio::awaitable<error_code> Connection::store(std::string key, std::string value, std::uint32_t flags,
                                              std::chrono::seconds ttl, bool add) {
  if (!valid_key(key) || ttl.count() < 0) co_return asio::error::invalid_argument;
  if (!accepting()) co_return asio::error::not_connected;
  const std::uint32_t opaque = next_opaque();
  encode_set(out(), key, value, flags, exptime(ttl), opaque, add);
  value = {};
  const Outcome outcome = co_await exchange(opaque);
  if (outcome.error) co_return outcome.error;
  if (add && outcome.reply.code == Reply::Code::kNotStored) co_return make_error_code(errc::file_exists);
  co_return outcome.reply.code == Reply::Code::kHeader ? error_code{} : reply_error(outcome.reply);
}

asio::awaitable<error_code> Connection::remove(std::string key, DeleteOptions options) {
  if (!valid_key(key)) co_return asio::error::invalid_argument;
  if (!accepting()) co_return asio::error::not_connected;
  const std::uint32_t opaque = next_opaque();
  encode_delete(out(), key, opaque, options);
  const Outcome outcome = co_await exchange(opaque);
  if (outcome.error) co_return outcome.error;
  const Reply::Code code = outcome.reply.code;
  if (code == Reply::Code::kExists) co_return make_error_code(errc::file_exists);
  co_return code == Reply::Code::kHeader || code == Reply::Code::kNotFound ? error_code{}
                                                                           : reply_error(outcome.reply);
}

// The request tagged `opaque` is in out(): sends it and waits for its reply.
asio::awaitable<Connection::Outcome> Connection::exchange(std::uint32_t opaque) {
  const auto pending = std::make_shared<Pending>(executor(), opaque);
  co_await await_reply(pending);
  co_return Outcome{pending->error, std::move(pending->reply)};
}

// Answers the commands whose replies are complete, oldest first.
bool Connection::consume(const char* data, std::size_t n) {
  in_.append(data, n);
  std::size_t offset = 0;
  for (;;) {
    Reply reply;
    std::size_t consumed = 0;
    const ParseStatus status = parse_reply(std::string_view(in_).substr(offset), reply, consumed);
    if (status == ParseStatus::kIncomplete) break;
    // A reply nobody waits for, or for another request than the oldest: the stream is out of step.
    const bool error_reply = status == ParseStatus::kDone && is_error_reply(reply);
    if (status == ParseStatus::kMalformed || !has_waiters() ||
        (!error_reply && reply.opaque != static_cast<Pending&>(front()).expected())) {
      spdlog::warn("memcached {}:{}: unexpected reply; reconnecting", peer().address, peer().port);
      fail(make_error_code(errc::bad_message), true);
      return false;
    }
    offset += consumed;
    auto& oldest = static_cast<Pending&>(front());
    const bool out_of_step = reply.code == Reply::Code::kError || reply.code == Reply::Code::kClientError;
    if (out_of_step) spdlog::warn("memcached {}:{}: error reply: {}", peer().address, peer().port, reply.message);
    if (oldest.count == 1) {
      oldest.reply = std::move(reply);
    } else {
      oldest.replies.push_back(std::move(reply));
      // More replies of the run to come (unless this one threw the stream out of step).
      if (oldest.replies.size() < oldest.count && !out_of_step) continue;
    }
    const auto pending = take_front();
    finish(*pending);
    if (out_of_step) {
      // memcached may have read part of the request as another command: start afresh.
      fail(make_error_code(errc::bad_message), false);
      return false;
    }
  }
  in_.erase(0, offset);
  // A large value is not worth keeping its buffer for.
  if (in_.capacity() > 4 * kReadSize && in_.size() <= kReadSize) in_.shrink_to_fit();
  return true;
}

}  // namespace apigw::memcache
