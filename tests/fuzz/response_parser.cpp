// An upstream's response as the forwarder reads it (upstream::ResponseReader, src/upstream/http_client.cpp):
// read_head (a fresh http::ResponseParser per interim 1xx response, 101 refused), then the relay
// (src/proxy/body_relay.cpp: the whole body straight from the read buffer when it came with the head, else
// read_body into the relay buffer step by step), with
// the response cache's fill watching (cache::storable_for on the head, the body collected up to max_item_bytes,
// then cache::encode_record). The first input byte chooses the relay buffer's size (or the forwarder's own rule),
// the size of each read and whether the request was a HEAD; the rest is what the upstream sent.
//
// Invariants: a response relayed as complete carries exactly its Content-Length; the body, the status and the
// verdict (failed, relayed, cut short) do not depend on how the bytes arrived or on the relay buffer's size; a
// record the fill would store decodes to what was stored.
#include <algorithm>
#include <cstdio>
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "apigw/cache/cache_policy.h"
#include "apigw/cache/cached_response.h"
#include "apigw/config/config.h"
#include "apigw/proxy/forwarder.h"
#include "apigw/proxy/header_rules.h"
#include "apigw/http/response_parser.h"
#include "apigw/upstream/upstream_connection.h"
#include "fuzz_support.h"

namespace {

namespace bhttp = boost::beast::http;
using apigw::fuzz::ByteStream;
using apigw::http::ResponseParser;
using boost::system::error_code;

constexpr std::array<std::size_t, 8> kRelaySizes{0, 1, 2, 5, 64, 1000, 16 * 1024, apigw::proxy::kRelayChunk};
constexpr std::array<std::size_t, 4> kReadSizes{1, 7, 512, apigw::upstream::kUpstreamReadSize};
constexpr std::size_t kMaxItemBytes = 1024 * 1024;

struct Outcome {
  enum class Kind { kFailed, kResponded, kAborted };
  Kind kind = Kind::kFailed;
  error_code error;
  unsigned status = 0;
  std::string body;
  // Which error ends a broken message may depend on the reads (Beast looks for the end of a head or a chunk line
  // before it parses it, so a malformed line in a message cut short is a parse error when it came whole and
  // partial_message when it came in small reads); that there is one may not.
  bool operator==(const Outcome& other) const {
    return kind == other.kind && !error == !other.error && status == other.status && body == other.body;
  }
};

// The route's `cache` as config/apigw.example.yaml's catalog route has it.
apigw::config::RouteCacheConfig catalog_cache() {
  apigw::config::RouteCacheConfig cache;
  cache.enabled = true;
  cache.ttl = std::chrono::seconds(30);
  cache.vary = {"Accept-Language"};
  cache.statuses = {200, 404};
  return cache;
}

// server::CacheFill, from the pure functions it calls.
class Fill {
 public:
  void on_head(unsigned status, const std::vector<ResponseParser::Field>& fields) {
    std::vector<apigw::cache::HeaderView> views;
    for (const auto& field : fields) views.push_back({field.name_text, field.value});
    static const apigw::config::RouteCacheConfig rule = catalog_cache();
    // The request went out a second before the head came back; the fuzzer's Date, Expires and Age do the rest.
    const apigw::cache::ExchangeTimes times{kNow - 1, kNow};
    const auto storable = apigw::cache::storable_for(status, views, rule, times, (status & 1) != 0);
    if (!storable) return;
    FUZZ_CHECK(storable->lifetime <= rule.ttl && storable->initial_age.count() >= 0);
    FUZZ_CHECK(storable->remaining().count() > 0 && storable->initial_age <= apigw::cache::kMaxDeltaSeconds);
    collecting_ = true;
    status_ = status;
    storable_ = *storable;
    for (const auto& field : fields) headers_.push_back({std::string(field.name_text), std::string(field.value)});
  }
  void on_body(std::string_view bytes) {
    if (!collecting_) return;
    if (body_.size() + bytes.size() > kMaxItemBytes) {
      collecting_ = false;
      return;
    }
    body_.append(bytes);
  }
  // finish_fill: the record, and what decoding it gives back.
  void on_complete() {
    if (!collecting_) return;
    std::vector<apigw::cache::HeaderView> views;
    for (const auto& header : headers_) views.push_back({header.name, header.value});
    apigw::cache::ResponseToStore response{status_, views, body_, kNow, storable_.lifetime};
    response.initial_age = storable_.initial_age;
    response.resource_version = 0x0123456789abcdefu;
    const auto record = apigw::cache::encode_record(response, kMaxItemBytes);
    if (!record) return;
    FUZZ_CHECK(record->size() <= kMaxItemBytes);
    const auto decoded = apigw::cache::decode_record(*record);
    FUZZ_CHECK(decoded.has_value());
    FUZZ_CHECK(decoded->status == status_ && decoded->body == body_ && decoded->stored_at == kNow &&
               decoded->ttl == storable_.lifetime && decoded->initial_age == storable_.initial_age &&
               decoded->resource_version == response.resource_version);
    FUZZ_CHECK(decoded->fresh(kNow));
    FUZZ_CHECK(decoded->headers.size() <= headers_.size());
    for (const auto& header : decoded->headers) FUZZ_CHECK(apigw::cache::stored_header(header.name));
  }

 private:
  bool collecting_ = false;
  static constexpr std::int64_t kNow = 1700000000;
  unsigned status_ = 0;
  apigw::cache::Storable storable_;
  std::vector<apigw::cache::StoredHeader> headers_;
  std::string body_;
};

// read_final_head.
error_code read_final_head(ByteStream& stream, boost::beast::flat_buffer& buffer,
                           std::optional<ResponseParser>& response, std::vector<ResponseParser::Field>& fields,
                           bool head_request) {
  for (;;) {
    response.emplace(fields);
    response->header_limit(apigw::upstream::kMaxResponseHeadBytes);
    response->body_limit(boost::none);
    if (head_request) response->skip(true);
    const error_code error = apigw::fuzz::parse_some(stream, buffer, *response, apigw::upstream::kUpstreamReadSize);
    if (error) return error;
    if (!response->is_header_done()) return bhttp::error::partial_message;
    if (response->status() == 101) return bhttp::error::bad_status;
    if (response->status() >= 200) return {};
  }
}

Outcome forward(std::string_view input, std::size_t relay_choice, std::size_t read_size, bool head_request) {
  Outcome out;
  const std::array<std::size_t, 1> reads{read_size};
  ByteStream stream(input, reads);
  boost::beast::flat_buffer buffer;
  buffer.reserve(apigw::upstream::kUpstreamReadSize);
  std::vector<ResponseParser::Field> fields;
  std::optional<ResponseParser> response;
  out.error = read_final_head(stream, buffer, response, fields, head_request);
  if (out.error) return out;

  // build_response_head's look at the head.
  const unsigned status = response->status();
  out.status = status;
  const bool has_body = !head_request && status != 204 && status != 304;
  apigw::proxy::HopByHopRules rules;
  for (const auto& field : response->fields()) {
    if (field.name == bhttp::field::connection) rules.add_connection(field.value);
  }
  for (const auto& field : response->fields()) (void)rules.drop(field.name, field.name_text);
  const auto length = response->content_length();
  Fill fill;
  fill.on_head(status, response->fields());

  if (has_body && length && buffer.size() >= *length) {
    // The whole body came with the head.
    out.body.assign(static_cast<const char*>(buffer.data().data()), static_cast<std::size_t>(*length));
    buffer.consume(static_cast<std::size_t>(*length));
    fill.on_body(out.body);
    fill.on_complete();
    out.kind = Outcome::Kind::kResponded;
    return out;
  }

  std::size_t relay_size = relay_choice;
  if (relay_size == 0) {
    relay_size = length && *length < apigw::proxy::kRelayChunk ? std::max<std::size_t>(*length, 1)
                                                               : apigw::proxy::kRelayChunk;
  }
  const auto relay = std::make_unique_for_overwrite<char[]>(relay_size);
  apigw::fuzz::ProgressGuard guard;
  bool head_sent = false;
  for (;;) {
    std::size_t got = 0;
    const std::size_t before = buffer.size() + stream.remaining();
    if (has_body && !response->is_done()) {
      // read_response_body
      response->set_body_buffer(relay.get(), relay_size);
      error_code error = apigw::fuzz::parse_some(stream, buffer, *response, apigw::upstream::kUpstreamReadSize);
      if (error == bhttp::error::need_buffer) error = {};
      got = relay_size - response->body_space();
      FUZZ_CHECK(got <= relay_size);
      if (error) {
        out.error = error;
        out.kind = Outcome::Kind::kAborted;
        return out;
      }
    }
    const bool last = !has_body || response->is_done();
    guard.turn(last || got > 0 || buffer.size() + stream.remaining() != before);
    if (head_sent && got == 0 && !last) continue;
    out.body.append(relay.get(), got);
    if (got > 0) fill.on_body({relay.get(), got});
    head_sent = true;
    if (last) break;
  }
  if (has_body && length) FUZZ_CHECK(out.body.size() == *length);
  if (!has_body) FUZZ_CHECK(out.body.empty());
  fill.on_complete();
  out.kind = Outcome::Kind::kResponded;
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  if (size == 0) return -1;
  const std::uint8_t choice = bytes[0];
  const std::string_view input = apigw::fuzz::as_text(bytes + 1, size - 1);
  const std::size_t relay_choice = kRelaySizes[choice & 7];
  const std::size_t read_size = kReadSizes[(choice >> 3) & 3];
  const bool head_request = (choice >> 5) & 1;

  const Outcome got = forward(input, relay_choice, read_size, head_request);
  const Outcome whole = forward(input, apigw::proxy::kRelayChunk, input.size() + 1, head_request);
  if (!(got == whole)) {
    for (const Outcome* outcome : {&got, &whole}) {
      std::fprintf(stderr, "kind %d, error '%s', status %u, %zu body bytes\n", static_cast<int>(outcome->kind),
                   outcome->error.message().c_str(), outcome->status, outcome->body.size());
    }
  }
  FUZZ_CHECK(got == whole);
  return 0;
}
