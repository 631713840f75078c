// A pipelined Redis connection on Asio (see connection.h).
#include "apigw/redis/connection.h"

#include <hiredis/hiredis.h>

#include <cstdlib>

#include <boost/asio/error.hpp>
#include <spdlog/spdlog.h>

namespace apigw::redis {
namespace asio = boost::asio;

namespace {

constexpr std::size_t kReadSize = 16 * 1024;

}  // namespace

struct Connection::Pending : Waiter {
  explicit Pending(const asio::any_io_executor& executor, const char* handshake_step = nullptr)
      : Waiter(executor), handshake(handshake_step) {}
  Reply reply;
  const char* handshake;  // AUTH or SELECT sent on connecting: its error ends the connection
};

Connection::Connection(asio::any_io_executor executor, ConnectionOptions options)
    : PipelinedConnection(std::move(executor), {"redis", options.address, options.port, options.timeout, kReadSize,
                                                options.tls, options.server_name}),
      options_(std::move(options)) {}

void Connection::encode(const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  for (const std::string& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  char* encoded = nullptr;
  const int length = redisFormatCommandArgv(&encoded, static_cast<int>(argv.size()), argv.data(), lengths.data());
  if (length > 0) out().append(encoded, static_cast<std::size_t>(length));
  std::free(encoded);
}

asio::awaitable<Result> Connection::command(std::vector<std::string> args) {
  if (!accepting()) co_return Result{asio::error::not_connected, {}};
  if (starting()) {
    // A new connection first authenticates and selects its database, pipelined ahead of this command.
    if (!options_.password.empty()) {
      std::vector<std::string> auth{"AUTH"};
      if (!options_.username.empty()) auth.push_back(options_.username);
      auth.push_back(options_.password);
      encode(auth);
      enqueue(std::make_shared<Pending>(executor(), "AUTH"));
    }
    if (options_.db != 0) {
      encode({"SELECT", std::to_string(options_.db)});
      enqueue(std::make_shared<Pending>(executor(), "SELECT"));
    }
  }
  encode(args);
  const auto pending = std::make_shared<Pending>(executor());
  co_await await_reply(pending);
  co_return Result{pending->error, std::move(pending->reply)};
}

bool Connection::consume(const char* data, std::size_t n) {
  if (!reader_.feed(data, n)) {
    fail(make_error_code(boost::system::errc::protocol_error), true);
    return false;
  }
  for (;;) {
    Reply reply;
    const ReplyReader::Status status = reader_.next(reply);
    if (status == ReplyReader::Status::kNeedMore) return true;
    // A reply nobody asked for is as much a protocol error as bytes that are not RESP.
    if (status == ReplyReader::Status::kProtocolError || !has_waiters()) {
      fail(make_error_code(boost::system::errc::protocol_error), true);
      return false;
    }
    const auto pending = std::static_pointer_cast<Pending>(take_front());
    if (pending->handshake != nullptr && reply.type == Reply::Type::kError) {
      spdlog::error("redis {}:{}: {} failed: {}", options_.address, options_.port, pending->handshake, reply.text);
      fail(make_error_code(boost::system::errc::permission_denied), true);
      return false;
    }
    pending->reply = std::move(reply);
    finish(*pending);
  }
}

void Connection::reset_parser() { reader_.reset(); }

}  // namespace apigw::redis
