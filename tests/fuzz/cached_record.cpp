// The response cache's stored record: cache::decode_record on whatever Memcached returns (a corrupted or foreign
// value, or one written by an attacker who can reach the Memcached pool). The first input byte says whether the
// rest is taken as it is, or first given a correct checksum (so that the fuzzer explores what lies behind it).
//
// Invariants: a decoded record re-encodes to exactly the bytes it came from; its age is never negative.
#include <chrono>
#include <cstdint>
#include <limits>
#include <openssl/evp.h>
#include <string>
#include <string_view>
#include <vector>

#include "apigw/cache/cached_response.h"
#include "fuzz_support.h"

namespace {

constexpr std::size_t kChecksumOffset = 5;  // see the layout in cached_response.h
constexpr std::size_t kChecksumBytes = 8;
constexpr std::size_t kPayloadOffset = kChecksumOffset + kChecksumBytes;

void fix_checksum(std::string& bytes) {
  if (bytes.size() < apigw::cache::kRecordHeadBytes) return;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  FUZZ_CHECK(EVP_Digest(bytes.data() + kPayloadOffset, bytes.size() - kPayloadOffset, digest, &size, EVP_sha256(),
                        nullptr) == 1);
  bytes.replace(kChecksumOffset, kChecksumBytes, reinterpret_cast<const char*>(digest), kChecksumBytes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return -1;
  std::string bytes(apigw::fuzz::as_text(data + 1, size - 1));
  if (data[0] & 1) fix_checksum(bytes);

  const auto record = apigw::cache::decode_record(bytes);
  if (!record) return 0;
  std::vector<apigw::cache::HeaderView> headers;
  for (const auto& header : record->headers) headers.push_back({header.name, header.value});
  apigw::cache::ResponseToStore response{record->status, headers, record->body, record->stored_at, record->ttl};
  response.initial_age = record->initial_age;
  response.resource_version = record->resource_version;
  response.stale = record->stale;
  response.tags = record->tags;
  const auto again = apigw::cache::encode_record(response);
  FUZZ_CHECK(again.has_value() && *again == bytes);
  for (const std::int64_t now : {std::numeric_limits<std::int64_t>::min(), std::int64_t{0},
                                 std::int64_t{1700000000}, std::numeric_limits<std::int64_t>::max()}) {
    FUZZ_CHECK(record->age(now).count() >= 0);
    (void)record->fresh(now);
  }
  return 0;
}
