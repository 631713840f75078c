// The record a cached response is stored as in Memcached: status, end-to-end headers and body, when it was
// stored, how long it is fresh, how old it was then, how long it may be answered stale, which version of its
// resource it belongs to and the versions of its tags, behind a magic, a version and a checksum. Pure. Decoding
// never trusts its input:
// whatever Memcached returns (another program's value, a truncated or corrupted one) is a record or nothing.
//
// Layout (integers big-endian):
//   0   4  magic "AGWC"
//   4   1  version, 3 (records of another version are not read: they count as misses)
//   5   8  checksum: the first 8 bytes of SHA-256 over every byte from offset 13 to the end
//   13  8  stored_at, signed Unix seconds
//   21  4  ttl: the freshness lifetime, seconds
//   25  4  initial age: its age when it was stored, seconds
//   29  8  resource version (see ResponseCache: a record of another version than its resource's is not served)
//   37  4  stale-while-revalidate: seconds past its lifetime it may be answered while one request refreshes it
//   41  4  stale-if-error: seconds past its lifetime it may answer a request whose upstream fails
//   45  2  status
//   47  2  header count
//   49  2  tag count
//   51  4  body length
//   55     per tag: length (2), tag, version (8); per header: name length (2), name, value length (4), value;
//          then the body, which ends the record
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace apigw::cache {

inline constexpr std::string_view kRecordMagic = "AGWC";
inline constexpr std::uint8_t kRecordVersion = 3;
inline constexpr std::size_t kRecordHeadBytes = 55;
inline constexpr std::size_t kMaxRecordHeaders = 256;
inline constexpr std::size_t kMaxRecordTags = 64;
inline constexpr std::size_t kMaxTagBytes = 1024;

// One header as read from a response; views that must outlive the call they are passed to.
struct HeaderView {
  std::string_view name;
  std::string_view value;
};

struct StoredHeader {
  std::string name;
  std::string value;
  bool operator==(const StoredHeader&) const = default;
};

// A tag of a stored response and the tag's version when it was stored (see ResponseCache).
struct TagVersion {
  std::string tag;
  std::uint64_t version = 0;
  bool operator==(const TagVersion&) const = default;
};

// The stale windows of a stored response (RFC 5861), seconds past its freshness lifetime.
struct StaleWindows {
  std::chrono::seconds while_revalidate{0};
  std::chrono::seconds if_error{0};
  std::chrono::seconds longest() const { return std::max(while_revalidate, if_error); }
  bool operator==(const StaleWindows&) const = default;
};

// What encode_record stores. Headers that describe one transfer rather than the resource are left out by
// encode_record itself (see stored_header), so the caller may pass the upstream's headers as they came.
struct ResponseToStore {
  unsigned status = 200;
  std::span<const HeaderView> headers;
  std::string_view body;
  std::int64_t stored_at = 0;  // Unix seconds
  std::chrono::seconds ttl{0};  // freshness lifetime
  std::chrono::seconds initial_age{0};
  std::uint64_t resource_version = 0;
  StaleWindows stale{};
  std::span<const TagVersion> tags{};  // at most kMaxRecordTags, each 1 to kMaxTagBytes bytes
};

// The wall clock in Unix seconds: the time records are stored at and aged by.
inline std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A decoded record.
struct CachedResponse {
  unsigned status = 0;
  std::vector<StoredHeader> headers;  // in the order they were stored, repeated names kept
  std::string body;
  std::int64_t stored_at = 0;
  std::chrono::seconds ttl{0};  // freshness lifetime
  std::chrono::seconds initial_age{0};
  std::uint64_t resource_version = 0;
  StaleWindows stale;
  std::vector<TagVersion> tags;

  // Its current age (RFC 9111 §4.2.3), the `Age` value: the initial age plus the seconds since it was stored
  // (never negative: the clocks of two gateways may differ), saturating.
  std::chrono::seconds age(std::int64_t now) const;
  // Whether it is younger than its lifetime; Memcached expires entries itself, this guards against clock skew.
  bool fresh(std::int64_t now) const { return age(now) < ttl; }
  // How long it has been stale (zero while fresh).
  std::chrono::seconds staleness(std::int64_t now) const { return std::max(age(now) - ttl, std::chrono::seconds(0)); }
};

// Whether a header of an upstream response belongs in the record. Not stored: hop-by-hop headers (Connection,
// Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade), framing (Content-Length: the body's
// size is regenerated), and what belongs to one answer rather than to the resource: Age, Set-Cookie,
// Set-Cookie2, X-Cache, X-Request-Id and X-Apigw-*. Date is stored: a hit sends the response's own Date. Headers
// that a Connection header names are also left out by encode_record.
bool stored_header(std::string_view name);

// The record's bytes; nullopt when they would exceed `max_bytes` (checked before anything is copied) or the
// response cannot be represented: a status outside 200-599, a ttl, initial age or stale window of 2^32 seconds or
// more, more than kMaxRecordHeaders stored headers, a name that is not an HTTP token, a value with CR, LF or NUL,
// more than kMaxRecordTags tags or one that is empty or longer than kMaxTagBytes, or a body of 4 GiB or more.
std::optional<std::string> encode_record(const ResponseToStore& response,
                                         std::size_t max_bytes = std::numeric_limits<std::size_t>::max());

// The record in `bytes`, or nullopt when they are not exactly one well-formed record of this version with a
// matching checksum. Reads nothing outside `bytes`.
std::optional<CachedResponse> decode_record(std::string_view bytes);

}  // namespace apigw::cache
