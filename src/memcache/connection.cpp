// A pipelined memcached connection on Asio, meta protocol (see connection.h).
#include "apigw/memcache/connection.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <vector>

namespace apigw::memcache {
namespace asio = boost::asio;
using boost::system::error_code;
namespace errc = boost::system::errc;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr auto kFirstBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::milliseconds(2000);
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

struct Connection::Pending {
  Pending(const asio::any_io_executor& executor, std::uint32_t opaque_in) : timer(executor), opaque(opaque_in) {}
  asio::steady_timer timer;
  std::uint32_t opaque;
  Outcome outcome;
  bool done = false;
};

Connection::Connection(asio::any_io_executor executor, ConnectionOptions options)
    : executor_(std::move(executor)), options_(std::move(options)), socket_(executor_) {}

Connection::~Connection() { fail(asio::error::operation_aborted, false); }

void Connection::close() { fail(asio::error::operation_aborted, false); }

asio::awaitable<GetResult> Connection::get(std::string key) {
  if (!valid_key(key)) co_return GetResult{asio::error::invalid_argument, {}};
  if (!accepting()) co_return GetResult{asio::error::not_connected, {}};
  const std::uint32_t opaque = next_opaque();
  encode_get(out_, key, opaque);
  Outcome outcome = co_await exchange(opaque);
  if (outcome.error) co_return GetResult{outcome.error, {}};
  Reply& reply = outcome.reply;
  if (reply.code == Reply::Code::kMiss) co_return GetResult{};
  if (reply.code != Reply::Code::kValue) co_return GetResult{reply_error(reply), {}};
  Item item{std::move(reply.value), reply.flags, {}};
  if (reply.ttl && *reply.ttl >= 0) item.ttl_left = std::chrono::seconds(*reply.ttl);
  co_return GetResult{{}, std::move(item)};
}

asio::awaitable<error_code> Connection::set(std::string key, std::string value, std::uint32_t flags,
                                            std::chrono::seconds ttl) {
  if (!valid_key(key) || ttl.count() < 0) co_return asio::error::invalid_argument;
  if (!accepting()) co_return asio::error::not_connected;
  const std::uint32_t opaque = next_opaque();
  encode_set(out_, key, value, flags, exptime(ttl), opaque);
  value = {};
  const Outcome outcome = co_await exchange(opaque);
  if (outcome.error) co_return outcome.error;
  co_return outcome.reply.code == Reply::Code::kHeader ? error_code{} : reply_error(outcome.reply);
}

asio::awaitable<error_code> Connection::remove(std::string key) {
  if (!valid_key(key)) co_return asio::error::invalid_argument;
  if (!accepting()) co_return asio::error::not_connected;
  const std::uint32_t opaque = next_opaque();
  encode_delete(out_, key, opaque);
  const Outcome outcome = co_await exchange(opaque);
  if (outcome.error) co_return outcome.error;
  const Reply::Code code = outcome.reply.code;
  co_return code == Reply::Code::kHeader || code == Reply::Code::kNotFound ? error_code{}
                                                                           : reply_error(outcome.reply);
}

bool Connection::accepting() {
  if (state_ != State::kBackoff) return true;
  if (std::chrono::steady_clock::now() < retry_at_) return false;
  state_ = State::kIdle;
  return true;
}

// The request tagged `opaque` is in out_: sends it (connecting first if needed) and waits for its reply.
asio::awaitable<Connection::Outcome> Connection::exchange(std::uint32_t opaque) {
  auto pending = std::make_shared<Pending>(executor_, opaque);
  pending_.push_back(pending);
  if (state_ == State::kIdle) {
    state_ = State::kConnecting;
    asio::co_spawn(executor_, connect_and_read(shared_from_this()), asio::detached);
  } else if (state_ == State::kReady && !writing_) {
    asio::co_spawn(executor_, write_loop(shared_from_this()), asio::detached);
  }
  if (!pending->done) {
    pending->timer.expires_after(options_.timeout);
    co_await pending->timer.async_wait(kNoThrow);
  }
  if (!pending->done) {
    // No answer in time: the connection is not trusted any more (later replies would be late too).
    spdlog::warn("memcached {}:{}: no reply within {} ms; reconnecting", options_.address, options_.port,
                 options_.timeout.count());
    fail(asio::error::timed_out, true);
  }
  co_return std::move(pending->outcome);
}

asio::awaitable<void> Connection::connect_and_read(std::shared_ptr<Connection> self) {
  using namespace asio::experimental::awaitable_operators;
  const std::uint64_t epoch = ++epoch_;
  error_code error;
  const auto address = asio::ip::make_address(options_.address, error);
  if (error) {
    fail(error, true);
    co_return;
  }
  asio::steady_timer timer(executor_);
  timer.expires_after(options_.timeout);
  auto outcome = co_await (socket_.async_connect(asio::ip::tcp::endpoint(address, options_.port), kNoThrow) ||
                           timer.async_wait(kNoThrow));
  if (epoch != epoch_) co_return;  // closed meanwhile
  if (outcome.index() == 1) {
    fail(asio::error::timed_out, true);
    co_return;
  }
  if (const error_code connect_error = std::get<0>(std::get<0>(outcome))) {
    fail(connect_error, true);
    co_return;
  }
  socket_.set_option(asio::ip::tcp::no_delay(true), error);
  state_ = State::kReady;
  backoff_ = std::chrono::milliseconds(0);
  if (!writing_ && !out_.empty()) asio::co_spawn(executor_, write_loop(self), asio::detached);

  std::vector<char> buffer(kReadSize);
  for (;;) {
    auto [read_error, n] = co_await socket_.async_read_some(asio::buffer(buffer), kNoThrow);
    if (epoch != epoch_) co_return;
    if (read_error) {
      fail(read_error, true);
      co_return;
    }
    in_.append(buffer.data(), n);
    if (!parse_replies()) co_return;
  }
}

asio::awaitable<void> Connection::write_loop(std::shared_ptr<Connection> self) {
  const std::uint64_t epoch = epoch_;
  writing_ = true;
  while (!out_.empty()) {
    std::string chunk;
    chunk.swap(out_);
    auto [error, n] = co_await asio::async_write(socket_, asio::buffer(chunk), kNoThrow);
    if (epoch != epoch_) co_return;  // fail() already reset the writer state
    if (error) {
      fail(error, true);
      co_return;
    }
  }
  writing_ = false;
}

// Answers the commands whose replies are complete in in_, oldest first. False when the connection was failed.
bool Connection::parse_replies() {
  std::size_t offset = 0;
  for (;;) {
    Reply reply;
    std::size_t consumed = 0;
    const ParseStatus status = parse_reply(std::string_view(in_).substr(offset), reply, consumed);
    if (status == ParseStatus::kIncomplete) break;
    // A reply nobody waits for, or for another request than the oldest: the stream is out of step.
    const bool error_reply = status == ParseStatus::kDone && is_error_reply(reply);
    if (status == ParseStatus::kMalformed || pending_.empty() ||
        (!error_reply && reply.opaque != pending_.front()->opaque)) {
      spdlog::warn("memcached {}:{}: unexpected reply; reconnecting", options_.address, options_.port);
      fail(make_error_code(errc::bad_message), true);
      return false;
    }
    offset += consumed;
    const std::shared_ptr<Pending> pending = std::move(pending_.front());
    pending_.pop_front();
    const bool out_of_step = reply.code == Reply::Code::kError || reply.code == Reply::Code::kClientError;
    if (out_of_step) spdlog::warn("memcached {}:{}: error reply: {}", options_.address, options_.port, reply.message);
    pending->outcome.reply = std::move(reply);
    pending->done = true;
    pending->timer.cancel();
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

void Connection::fail(const error_code& error, bool backoff) {
  ++epoch_;
  error_code ignored;
  socket_.close(ignored);
  in_.clear();
  out_.clear();
  writing_ = false;
  state_ = backoff ? State::kBackoff : State::kIdle;
  if (backoff) {
    backoff_ = backoff_.count() == 0 ? kFirstBackoff : std::min(backoff_ * 2, kMaxBackoff);
    retry_at_ = std::chrono::steady_clock::now() + backoff_;
  }
  std::deque<std::shared_ptr<Pending>> failed;
  failed.swap(pending_);
  for (const auto& pending : failed) {
    if (pending->done) continue;
    pending->outcome.error = error;
    pending->done = true;
    pending->timer.cancel();
  }
}

}  // namespace apigw::memcache
