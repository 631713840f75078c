// Redis replies from a byte stream (see reply_reader.h).
#include "apigw/redis/reply_reader.h"

#include <hiredis/hiredis.h>

namespace apigw::redis {
namespace {

// hiredis's own reply objects, but an array longer than kMaxArrayElements is refused before anything is allocated
// for it: hiredis then reports an error.
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

ReplyReader::ReplyReader() : reader_(create_reader(), redisReaderFree) {}

ReplyReader::~ReplyReader() = default;

bool ReplyReader::feed(const char* data, std::size_t n) {
  return reader_ != nullptr && redisReaderFeed(reader_.get(), data, n) == REDIS_OK;
}

ReplyReader::Status ReplyReader::next(Reply& reply) {
  if (reader_ == nullptr) return Status::kProtocolError;
  void* parsed = nullptr;
  if (redisReaderGetReply(reader_.get(), &parsed) != REDIS_OK) {
    if (parsed != nullptr) freeReplyObject(parsed);
    return Status::kProtocolError;
  }
  if (parsed == nullptr) return Status::kNeedMore;
  reply = convert(*static_cast<redisReply*>(parsed));
  freeReplyObject(parsed);
  return Status::kReply;
}

void ReplyReader::reset() { reader_.reset(create_reader()); }

}  // namespace apigw::redis
