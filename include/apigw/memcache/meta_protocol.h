// memcached's meta protocol (memcached >= 1.6) as memcache::Connection speaks it: key checks, request encoding and
// an incremental reply parser. Pure: no I/O, no clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace apigw::memcache {

inline constexpr std::size_t kMaxKeyLength = 250;          // memcached's KEY_MAX_LENGTH
inline constexpr std::size_t kMaxReplyLine = 8 * 1024;     // a reply's first line; memcached's are far shorter
inline constexpr std::uint64_t kMaxValueLength = 1 << 30;  // memcached's own ceiling for -I
static_assert(kMaxReplyLine > kMaxKeyLength);

// 1 to 250 bytes, none of them whitespace or a control character (the text protocol splits on spaces and ends
// lines with CRLF; memcached itself accepts control characters that other clients refuse).
bool valid_key(std::string_view key);

// Append one request tagged with `opaque` (echoed back as O<opaque>). `key` must be valid.
// What a get asks for besides the value, client flags and seconds left (memcached's stampede control).
struct GetOptions {
  std::uint32_t vivify = 0;   // N<seconds>: on a miss, create an empty item living this long; the first client to
                              // see it gets W (it fills the key), later ones Z (a fill is under way)
  std::uint32_t recache = 0;  // R<seconds>: once fewer seconds than this are left, one client gets W
  bool cas = false;           // c: the item's CAS value
};
// mg <key> v f t [N<s>] [R<s>] [c] O<opaque>
void encode_get(std::string& out, std::string_view key, std::uint32_t opaque, const GetOptions& options = {});
// ms <key> <length> F<flags> T<exptime> O<opaque>, then the value; exptime as memcached reads it (0: never).
// With `add`, the item is stored only when the key is absent (mode flag ME; NS otherwise).
void encode_set(std::string& out, std::string_view key, std::string_view value, std::uint32_t flags,
                std::int64_t exptime, std::uint32_t opaque, bool add = false);
// What a delete does besides removing the item.
struct DeleteOptions {
  bool invalidate = false;  // I: keep the item but mark it stale (its next get gets X, and one client W)
  std::uint32_t ttl = 0;    // T<seconds> with `invalidate`: what is left of the stale item's life; 0: unchanged
  std::uint64_t cas = 0;    // C<cas>: only when the item's CAS is still this (EX otherwise); 0: any
};
// md <key> [I] [T<s>] [C<cas>] O<opaque>
void encode_delete(std::string& out, std::string_view key, std::uint32_t opaque, const DeleteOptions& options = {});

struct Reply {
  enum class Code {
    kValue,        // VA: `value` holds the data
    kHeader,       // HD: stored (ms) or deleted (md)
    kMiss,         // EN
    kNotStored,    // NS
    kExists,       // EX
    kNotFound,     // NF
    kError,        // ERROR: an unknown command
    kClientError,  // CLIENT_ERROR <message>
    kServerError,  // SERVER_ERROR <message>
  };
  Code code = Code::kMiss;
  std::string value;                    // kValue
  std::string message;                  // kClientError, kServerError
  std::uint32_t flags = 0;              // f<flags>
  std::optional<std::int64_t> ttl;      // t<seconds>; -1 means no expiry
  std::optional<std::uint32_t> opaque;  // O<opaque>; error replies never carry it
  std::uint64_t cas = 0;                // c<cas>
  bool won = false;                     // W: this client fills (or refreshes) the key
  bool fill_elsewhere = false;          // Z: another client was given W
  bool stale = false;                   // X: the item was marked stale (md ... I)
};

enum class ParseStatus { kIncomplete, kDone, kMalformed };

// Parses the reply at the start of `input`, which may hold less than one reply or several. kDone fills `reply`
// and sets `consumed` to its length; kIncomplete asks for more bytes; kMalformed means the stream cannot be
// trusted any more (an unknown reply, a bad length, a first line longer than kMaxReplyLine).
ParseStatus parse_reply(std::string_view input, Reply& reply, std::size_t& consumed);

}  // namespace apigw::memcache
