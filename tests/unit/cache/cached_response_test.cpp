// Tests for the stored response record: round trips, what is left out, size limits, its age, and decoding of
// anything Memcached may hand back (foreign, truncated, corrupted, crafted or older-version values) as "not a
// record".
#include "apigw/cache/cached_response.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <random>
#include <string>
#include <vector>

namespace apigw::cache {
namespace {

using std::chrono::seconds;

std::string encode(unsigned status, const std::vector<HeaderView>& headers, std::string_view body,
                   std::int64_t stored_at = 1'700'000'000, seconds ttl = seconds(30),
                   seconds initial_age = seconds(0), std::uint64_t resource_version = 0) {
  return encode_record({status, headers, body, stored_at, ttl, initial_age, resource_version}).value_or("<none>");
}

std::string sample() {
  return encode(200, {{"Content-Type", "application/json"}, {"ETag", "\"v1\""}, {"Vary", "Accept-Language"}},
                R"({"id":7,"name":"Ada"})");
}

void put(std::string& out, std::uint64_t value, int bytes) {
  for (int shift = (bytes - 1) * 8; shift >= 0; shift -= 8) out += static_cast<char>((value >> shift) & 0xff);
}

// A record with a correct checksum around an arbitrary payload (everything after the checksum), to reach the
// structural checks behind it.
std::string sealed(std::string_view payload, std::uint8_t version = kRecordVersion) {
  std::string out = "AGWC";
  out += static_cast<char>(version);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(payload.data(), payload.size(), digest, &size, EVP_sha256(), nullptr);
  out.append(reinterpret_cast<const char*>(digest), 8);
  out += payload;
  return out;
}

std::string payload_head(unsigned status, std::uint64_t count, std::uint64_t body_size) {
  std::string out;
  put(out, 1'700'000'000, 8);
  put(out, 30, 4);
  put(out, 0, 4);  // initial age
  put(out, 1, 8);  // resource version
  put(out, 0, 4);  // stale-while-revalidate
  put(out, 0, 4);  // stale-if-error
  put(out, status, 2);
  put(out, count, 2);
  put(out, 0, 2);  // tags
  put(out, body_size, 4);
  return out;
}

TEST(CachedResponse, RoundTrip) {
  const std::string bytes = sample();
  ASSERT_TRUE(bytes.starts_with(std::string("AGWC\x03", 5)));
  const auto record = decode_record(bytes);
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->status, 200u);
  EXPECT_EQ(record->stored_at, 1'700'000'000);
  EXPECT_EQ(record->ttl, seconds(30));
  EXPECT_EQ(record->body, R"({"id":7,"name":"Ada"})");
  const std::vector<StoredHeader> expected{
      {"Content-Type", "application/json"}, {"ETag", "\"v1\""}, {"Vary", "Accept-Language"}};
  EXPECT_EQ(record->headers, expected);
  EXPECT_EQ(record->initial_age, seconds(0));
  EXPECT_EQ(record->resource_version, 0u);
}

TEST(CachedResponse, InitialAgeAndResourceVersionRoundTrip) {
  for (const std::uint64_t version : {std::uint64_t{1}, std::uint64_t{0x8000000000000000},
                                      std::uint64_t{0xfedcba9876543210}, ~std::uint64_t{0}}) {
    const auto record =
        decode_record(encode(200, {{"ETag", "\"v\""}}, "b", 1'700'000'000, seconds(60), seconds(17), version));
    ASSERT_TRUE(record.has_value()) << version;
    EXPECT_EQ(record->resource_version, version);
    EXPECT_EQ(record->initial_age, seconds(17));
    EXPECT_EQ(record->ttl, seconds(60));
    EXPECT_EQ(record->age(1'700'000'000), seconds(17));
  }
  const auto largest = decode_record(encode(200, {}, "", 0, seconds(0xffffffff), seconds(0xffffffff), 7));
  ASSERT_TRUE(largest.has_value());
  EXPECT_EQ(largest->ttl, seconds(0xffffffff));
  EXPECT_EQ(largest->initial_age, seconds(0xffffffff));
  // Another version is another record: its bytes differ (the checksum covers the version).
  EXPECT_NE(encode(200, {}, "", 0, seconds(1), seconds(0), 1), encode(200, {}, "", 0, seconds(1), seconds(0), 2));
}

TEST(CachedResponse, ExactLayout) {
  const std::string bytes = encode(404, {{"A", "bc"}}, "xyz", 0x0102030405060708, seconds(0x0a0b0c0d),
                                   seconds(0x11121314), 0x2122232425262728);
  std::string payload;
  put(payload, 0x0102030405060708, 8);
  put(payload, 0x0a0b0c0d, 4);
  put(payload, 0x11121314, 4);
  put(payload, 0x2122232425262728, 8);
  put(payload, 0, 4);
  put(payload, 0, 4);
  put(payload, 404, 2);
  put(payload, 1, 2);
  put(payload, 0, 2);
  put(payload, 3, 4);
  payload += std::string("\x00\x01" "A" "\x00\x00\x00\x02" "bc", 9);
  payload += "xyz";
  EXPECT_EQ(bytes, sealed(payload));
  EXPECT_EQ(bytes.size(), kRecordHeadBytes + 9 + 3);
  EXPECT_EQ(kRecordHeadBytes, 55u);
  EXPECT_EQ(bytes.substr(0, 5), std::string("AGWC\x03", 5));
}

TEST(CachedResponse, TagsAndStaleWindowsRoundTripInTheirPlace) {
  const std::vector<TagVersion> tags{{"product:7", 0x0102030405060708}, {"user:42", ~std::uint64_t{0}}};
  ResponseToStore response;
  response.status = 200;
  response.body = "b";
  response.stored_at = 5;
  response.ttl = seconds(60);
  response.stale = {seconds(30), seconds(600)};
  response.tags = tags;
  const std::optional<std::string> bytes = encode_record(response);
  ASSERT_TRUE(bytes.has_value());
  std::string payload;
  put(payload, 5, 8);
  put(payload, 60, 4);
  put(payload, 0, 4);
  put(payload, 0, 8);
  put(payload, 30, 4);
  put(payload, 600, 4);
  put(payload, 200, 2);
  put(payload, 0, 2);
  put(payload, 2, 2);
  put(payload, 1, 4);
  payload += std::string("\x00\x09" "product:7" "\x01\x02\x03\x04\x05\x06\x07\x08", 19);
  payload += std::string("\x00\x07" "user:42", 9) + std::string(8, '\xff');
  payload += "b";
  EXPECT_EQ(*bytes, sealed(payload));
  const auto record = decode_record(*bytes);
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->tags, tags);
  EXPECT_EQ(record->stale, (StaleWindows{seconds(30), seconds(600)}));
  EXPECT_EQ(record->staleness(5 + 59), seconds(0));
  EXPECT_EQ(record->staleness(5 + 90), seconds(30));
}

TEST(CachedResponse, TagsThatCannotBeStoredRefuseTheRecord) {
  ResponseToStore response;
  const std::vector<TagVersion> empty_tag{{"", 1}};
  response.tags = empty_tag;
  EXPECT_FALSE(encode_record(response).has_value());
  const std::vector<TagVersion> long_tag{{std::string(kMaxTagBytes + 1, 't'), 1}};
  response.tags = long_tag;
  EXPECT_FALSE(encode_record(response).has_value());
  std::vector<TagVersion> many(kMaxRecordTags + 1, TagVersion{"t", 1});
  response.tags = many;
  EXPECT_FALSE(encode_record(response).has_value());
  many.pop_back();
  response.tags = many;
  const auto record = decode_record(encode_record(response).value());
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->tags.size(), kMaxRecordTags);
}

TEST(CachedResponse, EmptyBodyRepeatedHeadersAndBinaryBody) {
  const std::string binary("\x00\xff\r\n\x01", 5);
  const auto record = decode_record(encode(301, {{"Location", "/new"}, {"Link", "<a>"}, {"Link", "<b>"}}, binary));
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->status, 301u);
  EXPECT_EQ(record->body, binary);
  ASSERT_EQ(record->headers.size(), 3u);
  EXPECT_EQ(record->headers[2], (StoredHeader{"Link", "<b>"}));
  const auto empty = decode_record(encode(204, {}, ""));
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->headers.empty());
  EXPECT_TRUE(empty->body.empty());
}

TEST(CachedResponse, PerAnswerAndHopByHopHeadersAreLeftOutButDateIsKept) {
  const auto record = decode_record(encode(200,
                                           {{"Content-Type", "text/plain"},
                                            {"Date", "Tue, 01 Jul 2025 10:00:00 GMT"},
                                            {"connection", "keep-alive, X-Trace"},
                                            {"Keep-Alive", "timeout=5"},
                                            {"Transfer-Encoding", "chunked"},
                                            {"Content-Length", "2"},
                                            {"Set-Cookie", "a=1"},
                                            {"Age", "3"},
                                            {"X-Cache", "MISS"},
                                            {"X-Request-Id", "r1"},
                                            {"X-Apigw-Route", "users"},
                                            {"X-Trace", "abc"},
                                            {"Proxy-Connection", "close"},
                                            {"Upgrade", "h2c"},
                                            {"Trailer", "X"},
                                            {"TE", "trailers"},
                                            {"Cache-Control", "max-age=60"}},
                                           "hi"));
  ASSERT_TRUE(record.has_value());
  const std::vector<StoredHeader> expected{{"Content-Type", "text/plain"},
                                           {"Date", "Tue, 01 Jul 2025 10:00:00 GMT"},
                                           {"Cache-Control", "max-age=60"}};
  EXPECT_EQ(record->headers, expected);
  EXPECT_TRUE(stored_header("Date")) << "a hit sends the response's own Date";
  EXPECT_TRUE(stored_header("date"));
  EXPECT_FALSE(stored_header("Age"));
  EXPECT_TRUE(stored_header("ETag"));
  EXPECT_FALSE(stored_header("SET-COOKIE"));
  EXPECT_FALSE(stored_header("x-apigw-upstream"));
}

TEST(CachedResponse, MaxBytesIsCheckedBeforeEncoding) {
  const std::vector<HeaderView> headers{{"Content-Type", "text/plain"}};
  const std::string body(1000, 'b');
  const std::size_t exact = kRecordHeadBytes + 6 + 12 + 10 + body.size();
  const ResponseToStore response{200, headers, body, 1, seconds(5)};
  ASSERT_TRUE(encode_record(response, exact).has_value());
  EXPECT_EQ(encode_record(response, exact)->size(), exact);
  EXPECT_FALSE(encode_record(response, exact - 1).has_value());
}

TEST(CachedResponse, WhatCannotBeRepresentedIsNotEncoded) {
  EXPECT_FALSE(encode_record({199, {}, "", 0, seconds(1)}).has_value());
  EXPECT_FALSE(encode_record({600, {}, "", 0, seconds(1)}).has_value());
  EXPECT_FALSE(encode_record({200, {}, "", 0, seconds(-1)}).has_value());
  EXPECT_FALSE(encode_record({200, {}, "", 0, seconds(std::int64_t{1} << 32)}).has_value());
  EXPECT_TRUE(encode_record({200, {}, "", 0, seconds(0xffffffff)}).has_value());
  EXPECT_FALSE(encode_record({200, {}, "", 0, seconds(1), seconds(-1)}).has_value());
  EXPECT_FALSE(encode_record({200, {}, "", 0, seconds(1), seconds(std::int64_t{1} << 32)}).has_value());
  EXPECT_TRUE(encode_record({200, {}, "", 0, seconds(1), seconds(0xffffffff)}).has_value());
  const std::vector<HeaderView> injected{{"X-A", "1\r\nSet-Cookie: a=1"}};
  EXPECT_FALSE(encode_record({200, injected, "", 0, seconds(1)}).has_value());
  const std::vector<HeaderView> bad_name{{"X A", "1"}};
  EXPECT_FALSE(encode_record({200, bad_name, "", 0, seconds(1)}).has_value());
  const std::vector<HeaderView> nul{{"X-A", std::string_view("a\0b", 3)}};
  EXPECT_FALSE(encode_record({200, nul, "", 0, seconds(1)}).has_value());
  std::vector<HeaderView> many(kMaxRecordHeaders + 1, HeaderView{"X-A", "1"});
  EXPECT_FALSE(encode_record({200, many, "", 0, seconds(1)}).has_value());
  many.pop_back();
  EXPECT_TRUE(encode_record({200, many, "", 0, seconds(1)}).has_value());
}

TEST(CachedResponse, AgeIsClampedAndFreshnessFollowsTtl) {
  CachedResponse record;
  record.stored_at = 1000;
  record.ttl = seconds(30);
  EXPECT_EQ(record.age(1000), seconds(0));
  EXPECT_EQ(record.age(1012), seconds(12));
  EXPECT_EQ(record.age(990), seconds(0)) << "a clock behind the writer's gives 0, never negative";
  EXPECT_TRUE(record.fresh(1029));
  EXPECT_FALSE(record.fresh(1030));
  record.stored_at = std::numeric_limits<std::int64_t>::min();
  EXPECT_EQ(record.age(std::numeric_limits<std::int64_t>::max()), seconds(std::numeric_limits<std::int64_t>::max()));
}

TEST(CachedResponse, AgeStartsAtTheInitialAge) {
  CachedResponse record;
  record.stored_at = 1000;
  record.ttl = seconds(30);
  record.initial_age = seconds(10);
  EXPECT_EQ(record.age(1000), seconds(10));
  EXPECT_EQ(record.age(1005), seconds(15));
  EXPECT_EQ(record.age(900), seconds(10)) << "a clock behind the writer's adds nothing, takes nothing";
  EXPECT_TRUE(record.fresh(1019));
  EXPECT_FALSE(record.fresh(1020)) << "fresh for what was left of its lifetime when stored";
  record.initial_age = seconds(30);
  EXPECT_FALSE(record.fresh(1000));
  // Saturating: neither the elapsed time nor the sum overflows.
  record.initial_age = seconds(0xffffffff);
  record.stored_at = std::numeric_limits<std::int64_t>::min();
  EXPECT_EQ(record.age(std::numeric_limits<std::int64_t>::max()), seconds(std::numeric_limits<std::int64_t>::max()));
  record.stored_at = 0;
  EXPECT_EQ(record.age(std::numeric_limits<std::int64_t>::max() - 5),
            seconds(std::numeric_limits<std::int64_t>::max()));
  EXPECT_EQ(record.age(100), seconds(0xffffffff + std::int64_t{100}));
  // Decoded, the record ages the same.
  const auto decoded = decode_record(encode(200, {}, "", 1000, seconds(30), seconds(10)));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->age(1005), seconds(15));
  EXPECT_FALSE(decoded->fresh(1020));
}

TEST(CachedResponse, ForeignValuesAreNotRecords) {
  for (const std::string_view value : {std::string_view(""), std::string_view("AGWC"), std::string_view("hello"),
                                       std::string_view("{\"status\":200}"), std::string_view("AGWC\x03")}) {
    EXPECT_FALSE(decode_record(value).has_value()) << value;
  }
  std::string other_version = sample();
  other_version[4] = '\x02';  // the version before: same magic, another layout
  EXPECT_FALSE(decode_record(other_version).has_value());
  other_version[4] = '\x04';
  EXPECT_FALSE(decode_record(other_version).has_value());
  std::string other_magic = sample();
  other_magic[0] = 'X';
  EXPECT_FALSE(decode_record(other_magic).has_value());
}

TEST(CachedResponse, Version1RecordsAreNotRead) {
  // A record as version 1 wrote it (33-byte head: no initial age, no resource version), with a valid checksum.
  std::string v1;
  put(v1, 1'700'000'000, 8);
  put(v1, 30, 4);
  put(v1, 200, 2);
  put(v1, 1, 2);
  put(v1, 2, 4);
  v1 += std::string("\x00\x01" "A" "\x00\x00\x00\x01" "b", 8);
  v1 += "ok";
  EXPECT_FALSE(decode_record(sealed(v1, 1)).has_value());
  // Its payload is not a version 2 record either (too short a head for its lengths).
  EXPECT_FALSE(decode_record(sealed(v1)).has_value());
  // Nor is a version 2 payload under version 1.
  EXPECT_FALSE(decode_record(sealed(payload_head(200, 0, 2) + "ok", 1)).has_value());
  EXPECT_TRUE(decode_record(sealed(payload_head(200, 0, 2) + "ok")).has_value());
}

TEST(CachedResponse, EveryTruncationAndExtensionIsRejected) {
  const std::string bytes = sample();
  for (std::size_t size = 0; size < bytes.size(); ++size) {
    EXPECT_FALSE(decode_record(std::string_view(bytes).substr(0, size)).has_value()) << size;
  }
  EXPECT_FALSE(decode_record(bytes + "x").has_value());
  EXPECT_FALSE(decode_record(bytes + std::string(1, '\0')).has_value());
}

TEST(CachedResponse, EverySingleBitFlipIsRejected) {
  const std::string bytes = sample();
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string flipped = bytes;
      flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
      EXPECT_FALSE(decode_record(flipped).has_value()) << "byte " << i << " bit " << bit;
    }
  }
}

TEST(CachedResponse, CraftedRecordsWithAValidChecksumAreStillChecked) {
  const auto header = [](std::string_view name, std::string_view value) {
    std::string out;
    put(out, name.size(), 2);
    out += name;
    put(out, value.size(), 4);
    out += value;
    return out;
  };
  EXPECT_TRUE(decode_record(sealed(payload_head(200, 1, 2) + header("A", "b") + "ok")).has_value());
  // Lengths and counts beyond the buffer.
  EXPECT_FALSE(decode_record(sealed(payload_head(200, 1, 2) + header("A", "b") + "o")).has_value());
  EXPECT_FALSE(decode_record(sealed(payload_head(200, 1, 2) + header("A", "b") + "okk")).has_value());
  EXPECT_FALSE(decode_record(sealed(payload_head(200, 2, 2) + header("A", "b") + "ok")).has_value());
  EXPECT_FALSE(decode_record(sealed(payload_head(200, 0xffff, 0) + header("A", "b"))).has_value());
  EXPECT_FALSE(decode_record(sealed(payload_head(200, 0, 0xffffffff) + "ok")).has_value());
  std::string huge_value;
  put(huge_value, 1, 2);
  huge_value += "A";
  put(huge_value, 0xffffffff, 4);
  EXPECT_FALSE(decode_record(sealed(payload_head(200, 1, 0) + huge_value + "abc")).has_value());
  EXPECT_FALSE(decode_record(sealed(payload_head(200, 0, 0).substr(0, 19))).has_value());
  EXPECT_FALSE(decode_record(sealed(payload_head(200, 0, 0).substr(0, kRecordHeadBytes - 13 - 1))).has_value());
  EXPECT_TRUE(decode_record(sealed(payload_head(200, 0, 0))).has_value());
  // Values that would garble the answer built from them.
  EXPECT_FALSE(decode_record(sealed(payload_head(200, 1, 0) + header("A", "b\r\nX: y"))).has_value());
  EXPECT_FALSE(decode_record(sealed(payload_head(200, 1, 0) + header("", "b"))).has_value());
  EXPECT_FALSE(decode_record(sealed(payload_head(200, 1, 0) + header("A:B", "b"))).has_value());
  EXPECT_FALSE(decode_record(sealed(payload_head(200, 1, 0) + header("Content-Length", "9"))).has_value());
  EXPECT_FALSE(decode_record(sealed(payload_head(200, 1, 0) + header("Transfer-Encoding", "chunked"))).has_value());
  EXPECT_FALSE(decode_record(sealed(payload_head(200, 1, 0) + header("Set-Cookie", "a=1"))).has_value());
  EXPECT_FALSE(decode_record(sealed(payload_head(99, 0, 0))).has_value());
  EXPECT_FALSE(decode_record(sealed(payload_head(600, 0, 0))).has_value());
  EXPECT_FALSE(decode_record(sealed(payload_head(200, kMaxRecordHeaders + 1, 0) +
                                    std::string((kMaxRecordHeaders + 1) * 8, 'A')))
                   .has_value());
}

// Thousands of random, truncated, bit-flipped and spliced buffers: decoding never crashes or reads out of
// bounds (run under ASan), and accepts nothing but the untouched records.
TEST(CachedResponse, FuzzLikeDecodingNeverAcceptsDamage) {
  std::mt19937_64 random(20240611);
  const auto byte = [&] { return static_cast<char>(random() & 0xff); };
  std::vector<std::string> records;
  for (int i = 0; i < 40; ++i) {
    std::vector<std::string> storage;
    std::vector<HeaderView> headers;
    const int count = static_cast<int>(random() % 6);
    for (int h = 0; h < count; ++h) storage.push_back(std::string(1 + random() % 20, 'a' + h));
    for (int h = 0; h < count; ++h) headers.push_back({"X-H", storage[h]});
    std::string body(random() % 300, '\0');
    for (char& c : body) c = byte();
    records.push_back(encode(200 + static_cast<unsigned>(random() % 400), headers, body, 1'700'000'000,
                             seconds(random() % 100000), seconds(random() % 1000), random()));
    ASSERT_TRUE(decode_record(records.back()).has_value());
  }
  int accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    const std::string& original = records[random() % records.size()];
    std::string damaged;
    switch (round % 5) {
      case 0: {  // random bytes, sometimes behind a valid magic and version
        damaged.resize(random() % 200);
        for (char& c : damaged) c = byte();
        if (random() % 2 == 0 && damaged.size() >= 5) damaged.replace(0, 5, std::string("AGWC\x03", 5));
        break;
      }
      case 1:  // truncated
        damaged = original.substr(0, random() % original.size());
        break;
      case 2: {  // one to eight bits flipped
        damaged = original;
        const int flips = 1 + static_cast<int>(random() % 8);
        for (int f = 0; f < flips; ++f) damaged[random() % damaged.size()] ^= static_cast<char>(1 << (random() % 8));
        if (damaged == original) continue;
        break;
      }
      case 3: {  // a byte range overwritten with random bytes
        damaged = original;
        const std::size_t at = random() % damaged.size();
        const std::size_t size = 1 + random() % std::min<std::size_t>(16, damaged.size() - at);
        for (std::size_t i = at; i < at + size; ++i) damaged[i] = byte();
        if (damaged == original) continue;
        break;
      }
      default: {  // the head of one record spliced onto the tail of another
        const std::string& other = records[random() % records.size()];
        const std::size_t cut = random() % original.size();
        damaged = original.substr(0, cut) + other.substr(std::min(cut, other.size()));
        if (damaged == original || damaged == other) continue;
        break;
      }
    }
    if (decode_record(damaged).has_value()) ++accepted;
  }
  EXPECT_EQ(accepted, 0);
}

}  // namespace
}  // namespace apigw::cache
