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

// The longest array a reply may hold. hiredis 0.14 allocates an array's element pointers as soon as it has read
// the length, which may be up to 2^31 - 1 (16 GiB of pointers for "*2147483647\r\n"); apigw's longest replies are
// CLUSTER SLOTS' (a few elements per slot range, at most 16384 ranges).
constexpr int kMaxArrayElements = 1 << 20;

// hiredis's own reply objects, but an array longer than kMaxArrayElements is refused before anything is allocated
// for it: hiredis then reports an error, and the connection fails as on any protocol error.
const redisReplyObjectFunctions* hiredis_functions = nullptr;

void* create_array(const redisReadTask* task, int elements) {
  return elements > kMaxArrayElements ? nullptr : hiredis_functions->createArray(task, elements);
}

redisReader* create_reader() {
  redisReader* reader = redisReaderCreate();
  if (reader == nullptr) return nullptr;
  static redisReplyObjectFunctions bounded = [&] {
    hiredis_functions = reader->fn;
    redisReplyObjectFunctions functions = *reader->fn;
    functions.createArray = create_array;
    return functions;
  }();
  reader->fn = &bounded;
  return reader;
}

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

}  // namespace

struct Connection::Pending : Waiter {
  explicit Pending(const asio::any_io_executor& executor, const char* handshake_step = nullptr)
      : Waiter(executor), handshake(handshake_step) {}
  Reply reply;
  const char* handshake;  // AUTH or SELECT sent on connecting: its error ends the connection
};

Connection::Connection(asio::any_io_executor executor, ConnectionOptions options)
    : PipelinedConnection(std::move(executor), {"redis", options.address, options.port, options.timeout, kReadSize}),
      options_(std::move(options)),
      reader_(nullptr, redisReaderFree) {}

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
  if (redisReaderFeed(reader_.get(), data, n) != REDIS_OK) {
    fail(make_error_code(boost::system::errc::protocol_error), true);
    return false;
  }
  for (;;) {
    void* parsed = nullptr;
    if (redisReaderGetReply(reader_.get(), &parsed) != REDIS_OK || (parsed != nullptr && !has_waiters())) {
      if (parsed != nullptr) freeReplyObject(parsed);
      fail(make_error_code(boost::system::errc::protocol_error), true);
      return false;
    }
    if (parsed == nullptr) return true;
    Reply reply = convert(*static_cast<redisReply*>(parsed));
    freeReplyObject(parsed);
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

void Connection::reset_parser() { reader_.reset(create_reader()); }

}  // namespace apigw::redis
