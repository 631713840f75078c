// Redis replies as redis::Connection reads them (src/redis/connection.cpp, Connection::consume): the input is what
// a server sent, read by redis::ReplyReader; then what the cluster client does with replies, through the public
// pure functions: ClusterMap::from_slots on each reply, parse_redirect on each error and ClusterMap::move for a
// MOVED, key_slot on each string.
//
// Invariant: the reader is incremental. The same bytes fed in pieces give the same replies, in order, and the same
// verdict (a protocol error, or waiting for more) as feeding them at once.
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
#include "apigw/redis/reply_reader.h"
#include "fuzz_support.h"

namespace {

using apigw::redis::Reply;

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
  apigw::redis::ReplyReader reader;
  std::size_t next = 0;
  do {
    const std::size_t n = pieces.empty() ? input.size() : std::min(pieces[next++ % pieces.size()], input.size());
    if (!reader.feed(input.data(), n)) {
      out.failed = true;
      return out;
    }
    input.remove_prefix(n);
    for (;;) {
      Reply reply;
      const apigw::redis::ReplyReader::Status status = reader.next(reply);
      if (status == apigw::redis::ReplyReader::Status::kNeedMore) break;
      if (status == apigw::redis::ReplyReader::Status::kProtocolError) {
        out.failed = true;
        return out;
      }
      out.replies.push_back(std::move(reply));
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
