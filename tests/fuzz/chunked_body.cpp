// Chunked bodies both ways: after a fixed chunked head, the input is the body of a client request (read as
// Forwarder::stream_request_body reads it, with proxy::RequestParser and a body limit) or of an upstream response
// (read as Forwarder::relay_response reads it through upstream::ResponseReader, with http::ResponseParser). The
// first input byte chooses the side, the relay buffer's size, the size of each read and the body limit; the rest
// is the body.
//
// Invariant: the decoded body, whether the message completed and whether it failed do not depend on how the bytes
// arrived or on the relay buffer's size: the same bytes read all at once into a 64 KiB buffer give the same.
#include <array>
#include <cstdio>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "apigw/proxy/forwarder.h"
#include "apigw/http/response_parser.h"
#include "apigw/upstream/upstream_connection.h"
#include "fuzz_support.h"

namespace {

namespace bhttp = boost::beast::http;
using apigw::fuzz::ByteStream;
using boost::system::error_code;

constexpr std::string_view kRequestHead =
    "POST /upload HTTP/1.1\r\nHost: api.example.com\r\nTransfer-Encoding: chunked\r\n\r\n";
constexpr std::string_view kResponseHead =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n";

constexpr std::array<std::size_t, 8> kRelaySizes{1, 2, 3, 7, 16, 100, 4096, apigw::proxy::kRelayChunk};
constexpr std::array<std::size_t, 4> kReadSizes{1, 3, 64, 16 * 1024};
constexpr std::array<std::uint64_t, 2> kBodyLimits{8 * 1024 * 1024, 100};  // the default; a small one

struct Outcome {
  std::string body;
  error_code error;
  bool done = false;
};

// Forwarder::stream_request_body's reads (read_client_chunk) until the parser is done or fails.
Outcome read_request(std::string_view body, std::size_t relay_size, std::size_t read_size, std::uint64_t limit) {
  Outcome out;
  apigw::proxy::RequestParser parser;
  parser.header_limit(16 * 1024 + 4);
  parser.body_limit(limit);
  parser.put(boost::asio::buffer(kRequestHead.data(), kRequestHead.size()), out.error);
  FUZZ_CHECK(!out.error && parser.is_header_done() && parser.chunked());

  const std::array<std::size_t, 1> reads{read_size};
  ByteStream stream(body, reads);
  boost::beast::flat_buffer buffer;
  const auto relay = std::make_unique_for_overwrite<char[]>(relay_size);
  apigw::fuzz::ProgressGuard guard;
  while (!parser.is_done()) {
    auto& chunk = parser.get().body();
    chunk.data = relay.get();
    chunk.size = relay_size;
    const std::size_t before = buffer.size() + stream.remaining();
    error_code error = apigw::fuzz::parse_some(stream, buffer, parser, apigw::proxy::kClientReadSize);
    if (error == bhttp::error::need_buffer) error = {};
    const std::size_t got = relay_size - chunk.size;
    FUZZ_CHECK(got <= relay_size);
    out.body.append(relay.get(), got);
    if (error) {
      out.error = error;
      break;
    }
    guard.turn(got > 0 || buffer.size() + stream.remaining() != before);
  }
  out.done = parser.is_done();
  return out;
}

// upstream::ResponseReader::read_head, then the relay loop of src/proxy/body_relay.cpp (ResponseReader::read_body).
Outcome read_response(std::string_view body, std::size_t relay_size, std::size_t read_size) {
  Outcome out;
  const std::string bytes = std::string(kResponseHead) + std::string(body);
  const std::array<std::size_t, 1> reads{read_size};
  ByteStream stream(bytes, reads);
  boost::beast::flat_buffer buffer;
  std::vector<apigw::http::ResponseParser::Field> fields;
  apigw::http::ResponseParser parser(fields);
  parser.header_limit(apigw::upstream::kMaxResponseHeadBytes);
  parser.body_limit(boost::none);
  out.error = apigw::fuzz::parse_some(stream, buffer, parser, apigw::upstream::kUpstreamReadSize);
  FUZZ_CHECK(!out.error && parser.is_header_done() && parser.chunked() && parser.status() == 200);

  const auto relay = std::make_unique_for_overwrite<char[]>(relay_size);
  apigw::fuzz::ProgressGuard guard;
  while (!parser.is_done()) {
    parser.set_body_buffer(relay.get(), relay_size);
    const std::size_t before = buffer.size() + stream.remaining();
    error_code error = apigw::fuzz::parse_some(stream, buffer, parser, apigw::upstream::kUpstreamReadSize);
    if (error == bhttp::error::need_buffer) error = {};
    const std::size_t got = relay_size - parser.body_space();
    FUZZ_CHECK(got <= relay_size);
    out.body.append(relay.get(), got);
    if (error) {
      out.error = error;
      break;
    }
    guard.turn(got > 0 || buffer.size() + stream.remaining() != before);
  }
  out.done = parser.is_done();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  if (size == 0) return -1;
  const std::uint8_t choice = bytes[0];
  const std::string_view body = apigw::fuzz::as_text(bytes + 1, size - 1);
  const std::size_t relay_size = kRelaySizes[choice & 7];
  const std::size_t read_size = kReadSizes[(choice >> 3) & 3];
  const bool response = (choice >> 5) & 1;
  const std::uint64_t limit = kBodyLimits[(choice >> 6) & 1];

  const Outcome got = response ? read_response(body, relay_size, read_size)
                               : read_request(body, relay_size, read_size, limit);
  const Outcome whole = response ? read_response(body, apigw::proxy::kRelayChunk, body.size() + 1)
                                 : read_request(body, apigw::proxy::kRelayChunk, body.size() + 1, limit);
  if (got.done != whole.done || !got.error != !whole.error || got.body != whole.body) {
    for (const Outcome* outcome : {&got, &whole}) {
      std::fprintf(stderr, "done %d, error '%s', %zu body bytes\n", outcome->done, outcome->error.message().c_str(),
                   outcome->body.size());
    }
  }
  FUZZ_CHECK(got.done == whole.done);
  // Which error ends a broken body may depend on the reads (see response_parser.cpp); that there is one may not.
  FUZZ_CHECK(!got.error == !whole.error);
  FUZZ_CHECK(got.body == whole.body);
  if (!response && got.done) FUZZ_CHECK(got.body.size() <= limit);
  return 0;
}
