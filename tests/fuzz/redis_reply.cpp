// Redis replies as redis::Connection reads them (src/redis/connection.cpp, Connection::consume): the input is what
// a server sent, fed to hiredis's redisReader (with arrays bounded as the connection bounds them) and each reply
// converted into redis::Reply; then what the cluster client does with replies, through the public pure functions:
// ClusterMap::from_slots on each reply, parse_redirect on each error and ClusterMap::move for a MOVED, key_slot on
// each string. The reader's setup and the conversion are private to connection.cpp; `create_reader` and `convert`
// below are copies of them and must be kept in step.
//
// Invariant: hiredis's reader is incremental. The same bytes fed in pieces give the same replies, in order, and
// the same verdict (a protocol error, or waiting for more) as feeding them at once.
#include <hiredis/hiredis.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "apigw/redis/cluster_map.h"
#include "apigw/redis/key_slot.h"
#include "apigw/redis/reply.h"
#include "fuzz_support.h"

namespace {

using apigw::redis::Reply;

// connection.cpp's kMaxArrayElements, create_array and create_reader.
constexpr int kMaxArrayElements = 1 << 20;
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

// connection.cpp's convert.
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

bool same(const Reply& a, const Reply& b) {
  if (a.type != b.type || a.text != b.text || a.integer != b.integer || a.elements.size() != b.elements.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.elements.size(); ++i) {
    if (!same(a.elements[i], b.elements[i])) return false;
  }
  return true;
}

struct Parsed {
  std::vector<Reply> replies;
  bool failed = false;  // the connection would fail with a protocol error
};

// Connection::consume for each piece of `input` (all of it at once when `pieces` is empty).
Parsed read_replies(std::string_view input, std::span<const std::size_t> pieces) {
  Parsed out;
  const std::unique_ptr<redisReader, void (*)(redisReader*)> reader(create_reader(), redisReaderFree);
  FUZZ_CHECK(reader != nullptr);
  std::size_t next = 0;
  do {
    const std::size_t n = pieces.empty() ? input.size() : std::min(pieces[next++ % pieces.size()], input.size());
    if (redisReaderFeed(reader.get(), input.data(), n) != REDIS_OK) {
      out.failed = true;
      return out;
    }
    input.remove_prefix(n);
    for (;;) {
      void* parsed = nullptr;
      if (redisReaderGetReply(reader.get(), &parsed) != REDIS_OK) {
        if (parsed != nullptr) freeReplyObject(parsed);
        out.failed = true;
        return out;
      }
      if (parsed == nullptr) break;
      out.replies.push_back(convert(*static_cast<redisReply*>(parsed)));
      freeReplyObject(parsed);
    }
  } while (!input.empty());
  return out;
}

// What redis::Client makes of replies: slot maps, redirections, key slots.
void use_replies(const std::vector<Reply>& replies) {
  std::optional<apigw::redis::ClusterMap> map;
  for (const Reply& reply : replies) {
    std::string why;
    if (auto slots = apigw::redis::ClusterMap::from_slots(reply, why)) {
      FUZZ_CHECK(!slots->masters().empty());
      for (std::uint16_t slot = 0; slot < apigw::redis::kClusterSlots; ++slot) (void)slots->master(slot);
      map = std::move(slots);
    } else {
      FUZZ_CHECK(!why.empty());
    }
    if (reply.type == Reply::Type::kError) {
      if (const auto redirect = apigw::redis::parse_redirect(reply.text)) {
        FUZZ_CHECK(redirect->slot < apigw::redis::kClusterSlots && redirect->node.port != 0);
        (void)redirect->node.text();
        if (map && redirect->kind == apigw::redis::Redirect::Kind::kMoved) {
          map->move(redirect->slot, redirect->node);
          FUZZ_CHECK(map->master(redirect->slot) == redirect->node);
        }
      }
    }
    if (reply.type == Reply::Type::kString) {
      FUZZ_CHECK(apigw::redis::key_slot(reply.text) < apigw::redis::kClusterSlots);
    }
  }
}

constexpr std::array<std::size_t, 5> kSmallPieces{1, 2, 3, 5, 8};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  const std::string_view input = apigw::fuzz::as_text(bytes, size);
  const Parsed whole = read_replies(input, {});
  const Parsed pieces = read_replies(input, kSmallPieces);
  FUZZ_CHECK(whole.failed == pieces.failed);
  FUZZ_CHECK(whole.replies.size() == pieces.replies.size());
  for (std::size_t i = 0; i < whole.replies.size(); ++i) FUZZ_CHECK(same(whole.replies[i], pieces.replies[i]));
  use_replies(whole.replies);
  return 0;
}
