// Encoding and decoding the stored response record (see cached_response.h for the layout). Decoding checks
// every length against what is left before reading, and the checksum before parsing anything after it.
#include "apigw/cache/cached_response.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "apigw/core/digest.h"
#include "apigw/http/text.h"

namespace apigw::cache {
namespace {

constexpr std::size_t kChecksumOffset = 5;
constexpr std::size_t kChecksumBytes = 8;
constexpr std::size_t kPayloadOffset = kChecksumOffset + kChecksumBytes;
constexpr std::size_t kHeaderFrameBytes = 2 + 4;  // name length, value length
constexpr unsigned kMinStatus = 200;
constexpr unsigned kMaxStatus = 599;
constexpr std::uint64_t kMaxLength32 = 0xffffffffu;
constexpr std::uint64_t kMaxTtlSeconds = 0xffffffffu;

constexpr std::size_t kTagFrameBytes = 2 + 8;  // length, version

static_assert(kRecordHeadBytes == kPayloadOffset + 8 + 4 + 4 + 8 + 4 + 4 + 2 + 2 + 2 + 4);

// Headers apigw writes per answer or that only frame one transfer (lower case).
constexpr std::array<std::string_view, 13> kNotStored{
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
    "content-length", "age", "set-cookie", "set-cookie2", "x-cache", "x-request-id"};

bool istarts_with(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && http::iequals(text.substr(0, prefix.size()), prefix);
}

bool valid_name(std::string_view name) { return name.size() <= 0xffff && http::is_token(name); }

bool valid_value(std::string_view value) {
  return value.size() <= kMaxLength32 &&
         value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// Whether a Connection header value names `name` (a comma-separated token list).
bool connection_names(std::string_view connection, std::string_view name) {
  bool named = false;
  http::for_each_list_element(connection, [&](std::string_view token) { named |= http::iequals(token, name); });
  return named;
}

bool keep(std::span<const HeaderView> all, const HeaderView& header) {
  if (!stored_header(header.name)) return false;
  return std::none_of(all.begin(), all.end(), [&](const HeaderView& other) {
    return http::iequals(other.name, "connection") && connection_names(other.value, header.name);
  });
}

void put(std::string& out, std::uint64_t value, int bytes) {
  for (int shift = (bytes - 1) * 8; shift >= 0; shift -= 8) out += static_cast<char>((value >> shift) & 0xff);
}

std::array<unsigned char, kChecksumBytes> checksum(std::string_view payload) {
  const std::array<unsigned char, 32> digest = core::sha256(payload);
  std::array<unsigned char, kChecksumBytes> out{};
  std::copy_n(digest.begin(), kChecksumBytes, out.begin());
  return out;
}

// Reads big-endian integers and byte runs from a buffer, failing (and staying failed) instead of reading past it.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}

  std::uint64_t number(std::size_t size) {
    if (!ok_ || bytes_.size() < size) return fail();
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < size; ++i) value = (value << 8) | static_cast<unsigned char>(bytes_[i]);
    bytes_.remove_prefix(size);
    return value;
  }
  std::string_view run(std::uint64_t size) {
    if (!ok_ || bytes_.size() < size) {
      fail();
      return {};
    }
    const std::string_view out = bytes_.substr(0, static_cast<std::size_t>(size));
    bytes_.remove_prefix(static_cast<std::size_t>(size));
    return out;
  }
  std::size_t left() const { return bytes_.size(); }
  bool ok() const { return ok_; }

 private:
  std::uint64_t fail() {
    ok_ = false;
    return 0;
  }

  std::string_view bytes_;
  bool ok_ = true;
};

}  // namespace

std::chrono::seconds CachedResponse::age(std::int64_t now) const {
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  const std::uint64_t elapsed =
      now <= stored_at ? 0 : static_cast<std::uint64_t>(now) - static_cast<std::uint64_t>(stored_at);
  const auto initial = static_cast<std::uint64_t>(std::max<std::int64_t>(initial_age.count(), 0));
  return std::chrono::seconds(static_cast<std::int64_t>(std::min(std::min(elapsed, kMax) + initial, kMax)));
}

bool stored_header(std::string_view name) {
  if (istarts_with(name, "x-apigw-")) return false;
  return std::none_of(kNotStored.begin(), kNotStored.end(), [&](std::string_view other) {
    return http::iequals(name, other);
  });
}

std::optional<std::string> encode_record(const ResponseToStore& response, std::size_t max_bytes) {
  if (response.status < kMinStatus || response.status > kMaxStatus) return std::nullopt;
  const auto fits = [](std::chrono::seconds value) {
    return value.count() >= 0 && static_cast<std::uint64_t>(value.count()) <= kMaxTtlSeconds;
  };
  if (!fits(response.ttl) || !fits(response.initial_age) || !fits(response.stale.while_revalidate) ||
      !fits(response.stale.if_error)) {
    return std::nullopt;
  }
  if (response.body.size() > kMaxLength32 || response.tags.size() > kMaxRecordTags) return std::nullopt;
  std::size_t count = 0;
  std::uint64_t size = kRecordHeadBytes + response.body.size();
  for (const TagVersion& tag : response.tags) {
    if (tag.tag.empty() || tag.tag.size() > kMaxTagBytes) return std::nullopt;
    size += kTagFrameBytes + tag.tag.size();
  }
  for (const HeaderView& header : response.headers) {
    if (!keep(response.headers, header)) continue;
    if (!valid_name(header.name) || !valid_value(header.value)) return std::nullopt;
    ++count;
    size += kHeaderFrameBytes + header.name.size() + header.value.size();
  }
  if (count > kMaxRecordHeaders || size > max_bytes) return std::nullopt;

  std::string out;
  out.reserve(static_cast<std::size_t>(size));
  out += kRecordMagic;
  out += static_cast<char>(kRecordVersion);
  out.append(kChecksumBytes, '\0');
  put(out, static_cast<std::uint64_t>(response.stored_at), 8);
  put(out, static_cast<std::uint64_t>(response.ttl.count()), 4);
  put(out, static_cast<std::uint64_t>(response.initial_age.count()), 4);
  put(out, response.resource_version, 8);
  put(out, static_cast<std::uint64_t>(response.stale.while_revalidate.count()), 4);
  put(out, static_cast<std::uint64_t>(response.stale.if_error.count()), 4);
  put(out, response.status, 2);
  put(out, count, 2);
  put(out, response.tags.size(), 2);
  put(out, response.body.size(), 4);
  for (const TagVersion& tag : response.tags) {
    put(out, tag.tag.size(), 2);
    out += tag.tag;
    put(out, tag.version, 8);
  }
  for (const HeaderView& header : response.headers) {
    if (!keep(response.headers, header)) continue;
    put(out, header.name.size(), 2);
    out += header.name;
    put(out, header.value.size(), 4);
    out += header.value;
  }
  out += response.body;
  const auto sum = checksum(std::string_view(out).substr(kPayloadOffset));
  std::copy(sum.begin(), sum.end(), out.begin() + kChecksumOffset);
  return out;
}

std::optional<CachedResponse> decode_record(std::string_view bytes) {
  if (bytes.size() < kRecordHeadBytes || bytes.substr(0, kRecordMagic.size()) != kRecordMagic ||
      static_cast<std::uint8_t>(bytes[kRecordMagic.size()]) != kRecordVersion) {
    return std::nullopt;
  }
  const auto sum = checksum(bytes.substr(kPayloadOffset));
  if (std::memcmp(sum.data(), bytes.data() + kChecksumOffset, kChecksumBytes) != 0) return std::nullopt;

  Reader reader(bytes.substr(kPayloadOffset));
  CachedResponse record;
  record.stored_at = static_cast<std::int64_t>(reader.number(8));
  record.ttl = std::chrono::seconds(reader.number(4));
  record.initial_age = std::chrono::seconds(reader.number(4));
  record.resource_version = reader.number(8);
  record.stale.while_revalidate = std::chrono::seconds(reader.number(4));
  record.stale.if_error = std::chrono::seconds(reader.number(4));
  record.status = static_cast<unsigned>(reader.number(2));
  const std::uint64_t count = reader.number(2);
  const std::uint64_t tag_count = reader.number(2);
  const std::uint64_t body_size = reader.number(4);
  if (!reader.ok() || record.status < kMinStatus || record.status > kMaxStatus || count > kMaxRecordHeaders ||
      tag_count > kMaxRecordTags || body_size > reader.left() ||
      count * kHeaderFrameBytes + tag_count * kTagFrameBytes > reader.left() - body_size) {
    return std::nullopt;
  }
  record.tags.reserve(static_cast<std::size_t>(tag_count));
  for (std::uint64_t i = 0; i < tag_count; ++i) {
    const std::string_view tag = reader.run(reader.number(2));
    const std::uint64_t version = reader.number(8);
    if (!reader.ok() || tag.empty() || tag.size() > kMaxTagBytes) return std::nullopt;
    record.tags.push_back({std::string(tag), version});
  }
  record.headers.reserve(static_cast<std::size_t>(count));
  for (std::uint64_t i = 0; i < count; ++i) {
    const std::string_view name = reader.run(reader.number(2));
    const std::string_view value = reader.run(reader.number(4));
    // A header encode_record never writes (framing above all) would garble the answer built from the record.
    if (!reader.ok() || !valid_name(name) || !valid_value(value) || !stored_header(name)) return std::nullopt;
    record.headers.push_back({std::string(name), std::string(value)});
  }
  if (reader.left() != body_size) return std::nullopt;
  record.body = std::string(reader.run(body_size));
  return record;
}

}  // namespace apigw::cache
