// memcached's meta protocol replies as memcache::Connection reads them (src/memcache/connection.cpp): the input is
// what a server sent, parsed with memcache::parse_reply reply after reply until it is incomplete or malformed.
//
// Invariant: parsing is incremental. The same bytes arriving in pieces (appended to a buffer and parsed from the
// first unconsumed byte after each piece, as the connection does) give exactly the replies, in order, and the same
// final verdict as parsing them all at once.
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "apigw/memcache/meta_protocol.h"
#include "fuzz_support.h"

namespace {

using apigw::memcache::ParseStatus;
using apigw::memcache::Reply;

bool same_reply(const Reply& a, const Reply& b) {
  return a.code == b.code && a.value == b.value && a.message == b.message && a.flags == b.flags && a.ttl == b.ttl &&
         a.opaque == b.opaque;
}

struct Parsed {
  std::vector<Reply> replies;
  ParseStatus last = ParseStatus::kIncomplete;  // kIncomplete (waiting for more) or kMalformed (stream dropped)
};

// Replies in `input` as a whole.
Parsed parse_whole(std::string_view input) {
  Parsed out;
  std::size_t offset = 0;
  for (;;) {
    Reply reply;
    std::size_t consumed = 0;
    const ParseStatus status = apigw::memcache::parse_reply(input.substr(offset), reply, consumed);
    if (status != ParseStatus::kDone) {
      out.last = status;
      return out;
    }
    FUZZ_CHECK(consumed > 0 && consumed <= input.size() - offset);
    if (reply.code == Reply::Code::kValue) {
      FUZZ_CHECK(reply.value.size() <= apigw::memcache::kMaxValueLength && reply.value.size() + 2 <= consumed);
    }
    offset += consumed;
    out.replies.push_back(std::move(reply));
  }
}

// Replies in `input` arriving in pieces of the sizes `pieces` (cycling), as Connection::consume parses them.
Parsed parse_pieces(std::string_view input, std::span<const std::size_t> pieces) {
  Parsed out;
  std::string in;
  std::size_t next = 0;
  while (!input.empty()) {
    const std::size_t n = std::min(pieces[next++ % pieces.size()], input.size());
    in.append(input.substr(0, n));
    input.remove_prefix(n);
    std::size_t offset = 0;
    for (;;) {
      Reply reply;
      std::size_t consumed = 0;
      const ParseStatus status = apigw::memcache::parse_reply(std::string_view(in).substr(offset), reply, consumed);
      if (status == ParseStatus::kIncomplete) break;
      if (status == ParseStatus::kMalformed) {
        out.last = status;
        return out;
      }
      offset += consumed;
      out.replies.push_back(std::move(reply));
    }
    in.erase(0, offset);
  }
  out.last = ParseStatus::kIncomplete;
  return out;
}

void check_same(const Parsed& whole, const Parsed& pieces) {
  FUZZ_CHECK(whole.last == pieces.last);
  FUZZ_CHECK(whole.replies.size() == pieces.replies.size());
  for (std::size_t i = 0; i < whole.replies.size(); ++i) FUZZ_CHECK(same_reply(whole.replies[i], pieces.replies[i]));
}

constexpr std::array<std::size_t, 7> kSmallPieces{1, 2, 3, 5, 7, 11, 13};
constexpr std::array<std::size_t, 1> kReadPieces{64};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  const std::string_view input = apigw::fuzz::as_text(bytes, size);
  const Parsed whole = parse_whole(input);
  check_same(whole, parse_pieces(input, kSmallPieces));
  check_same(whole, parse_pieces(input, kReadPieces));
  return 0;
}
