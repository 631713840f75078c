// A pipelined Redis connection on Asio (see connection.h).
#include "apigw/redis/connection.h"

#include <hiredis/hiredis.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

namespace apigw::redis {
namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr auto kFirstBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::milliseconds(2000);
constexpr std::size_t kReadSize = 16 * 1024;

Reply convert(const redisReply& from) {
  Reply reply;
  switch (from.type) {
    case REDIS_REPLY_STRING: reply.type = Reply::Type::kString; break;
    case REDIS_REPLY_STATUS: reply.type = Reply::Type::kStatus; break;
    case REDIS_REPLY_ERROR: reply.type = Reply::Type::kError; break;
    case REDIS_REPLY_INTEGER: reply.type = Reply::Type::kInteger; break;
    case REDIS_REPLY_ARRAY: reply.type = Reply::Type::kArray; break;
    default: reply.type = Reply::Type::kNil; break;
  }
  if (from.str != nullptr) reply.text.assign(from.str, from.len);
  reply.integer = from.integer;
  for (std::size_t i = 0; i < from.elements; ++i) reply.elements.push_back(convert(*from.element[i]));
  return reply;
}

redisReader* new_reader() { return redisReaderCreate(); }

}  // namespace

struct Connection::Pending {
  explicit Pending(const asio::any_io_executor& executor, const char* handshake_step = nullptr)
      : timer(executor), handshake(handshake_step) {}
  asio::steady_timer timer;
  Result result;
  bool done = false;
  const char* handshake;  // AUTH or SELECT sent on connecting: its error ends the connection
};

Connection::Connection(asio::any_io_executor executor, ConnectionOptions options)
    : executor_(std::move(executor)),
      options_(std::move(options)),
      socket_(executor_),
      reader_(new_reader(), redisReaderFree) {}

Connection::~Connection() { fail(asio::error::operation_aborted, false); }

void Connection::close() { fail(asio::error::operation_aborted, false); }

void Connection::queue(const std::vector<std::string>& args, const std::shared_ptr<Pending>& pending) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  for (const std::string& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  char* encoded = nullptr;
  const int length = redisFormatCommandArgv(&encoded, static_cast<int>(argv.size()), argv.data(), lengths.data());
  if (length > 0) out_.append(encoded, static_cast<std::size_t>(length));
  std::free(encoded);
  pending_.push_back(pending);
}

asio::awaitable<Result> Connection::command(std::vector<std::string> args) {
  if (state_ == State::kBackoff) {
    if (std::chrono::steady_clock::now() < retry_at_) co_return Result{asio::error::not_connected, {}};
    state_ = State::kIdle;
  }
  auto pending = std::make_shared<Pending>(executor_);
  if (state_ == State::kIdle) {
    // A new connection first authenticates and selects its database, pipelined ahead of this command.
    state_ = State::kConnecting;
    if (!options_.password.empty()) {
      std::vector<std::string> auth{"AUTH"};
      if (!options_.username.empty()) auth.push_back(options_.username);
      auth.push_back(options_.password);
      queue(auth, std::make_shared<Pending>(executor_, "AUTH"));
    }
    if (options_.db != 0) {
      queue({"SELECT", std::to_string(options_.db)}, std::make_shared<Pending>(executor_, "SELECT"));
    }
    queue(args, pending);
    asio::co_spawn(executor_, connect_and_read(shared_from_this()), asio::detached);
  } else {
    queue(args, pending);
    if (state_ == State::kReady && !writing_) asio::co_spawn(executor_, write_loop(shared_from_this()), asio::detached);
  }
  if (!pending->done) {  // a connection that failed at once has answered already
    pending->timer.expires_after(options_.timeout);
    co_await pending->timer.async_wait(kNoThrow);
  }
  if (!pending->done) {
    // No answer in time: the connection is not trusted any more (later replies would be late too).
    spdlog::warn("redis {}:{}: no reply within {} ms; reconnecting", options_.address, options_.port,
                 options_.timeout.count());
    fail(asio::error::timed_out, true);
  }
  co_return std::move(pending->result);
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
    if (redisReaderFeed(reader_.get(), buffer.data(), n) != REDIS_OK) {
      fail(make_error_code(boost::system::errc::protocol_error), true);
      co_return;
    }
    for (;;) {
      void* parsed = nullptr;
      if (redisReaderGetReply(reader_.get(), &parsed) != REDIS_OK || (parsed != nullptr && pending_.empty())) {
        if (parsed != nullptr) freeReplyObject(parsed);
        fail(make_error_code(boost::system::errc::protocol_error), true);
        co_return;
      }
      if (parsed == nullptr) break;
      Reply reply = convert(*static_cast<redisReply*>(parsed));
      freeReplyObject(parsed);
      complete(std::move(reply));
      if (epoch != epoch_) co_return;  // a failed handshake closed the connection
    }
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

void Connection::complete(Reply reply) {
  const std::shared_ptr<Pending> pending = std::move(pending_.front());
  pending_.pop_front();
  if (pending->handshake != nullptr && reply.type == Reply::Type::kError) {
    spdlog::error("redis {}:{}: {} failed: {}", options_.address, options_.port, pending->handshake, reply.text);
    fail(make_error_code(boost::system::errc::permission_denied), true);
    return;
  }
  pending->result.reply = std::move(reply);
  pending->done = true;
  pending->timer.cancel();
}

void Connection::fail(const error_code& error, bool backoff) {
  ++epoch_;
  error_code ignored;
  socket_.close(ignored);
  reader_.reset(new_reader());
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
    pending->result.error = error;
    pending->done = true;
    pending->timer.cancel();
  }
}

}  // namespace apigw::redis
