// A client's request as ClientSession (src/server/client_session.cpp) and the forwarder take it in, with the
// server's default limits: read_head's raw scan (http::RequestHeadScanner, leading empty lines, the size limits),
// serve_request's Beast parse of the head (proxy::RequestParser, header and body limits), http::check_request
// (version, Transfer-Encoding, target length, http::parse_request_target, Host count), the request id, the
// forwarder's hop-by-hop rules over the fields, and the body read as the forwarder reads it, whole when small
// (read_buffered_body) or streamed (stream_request_body). The session's private steps are reproduced here from
// the public functions they call; keep them in step with client_session.cpp.
//
// Invariants: scanning the bytes as they arrive one at a time decides exactly as scanning them at once; a head the
// scanner passes has only CRLF line ends, no NUL and no obs-fold; an accepted target's path starts with '/', has
// no dot segment left and normalises to itself; the body never exceeds its Content-Length, and a complete one
// matches it.
#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <fmt/format.h>

#include "apigw/config/config.h"
#include "apigw/http/request_checks.h"
#include "apigw/http/request_head.h"
#include "apigw/http/local_reply.h"
#include "apigw/http/request_id.h"
#include "apigw/http/request_target.h"
#include "apigw/proxy/forwarder.h"
#include "apigw/proxy/header_rules.h"
#include "fuzz_support.h"

namespace {

namespace bhttp = boost::beast::http;
using apigw::fuzz::ByteStream;
using boost::system::error_code;

const apigw::config::Limits kLimits{};           // the defaults: 16 KiB head, 8 KiB target, 8 MiB body
constexpr std::size_t kReadChunk = 8 * 1024;      // ClientSession's read size
constexpr std::array<std::size_t, 1> kReads{kReadChunk};

// The result of the whole scan, compared field by field.
bool same_scan(const apigw::http::HeadScan& a, const apigw::http::HeadScan& b) {
  return a.state == b.state && a.length == b.length && a.reason == b.reason;
}

// A scanner run over `data` as bytes arrive one by one; the first verdict that is not kNeedMore.
apigw::http::HeadScan scan_bytewise(std::string_view data) {
  apigw::http::RequestHeadScanner scanner;
  apigw::http::HeadScan scan;
  for (std::size_t n = 1; n <= data.size(); ++n) {
    scan = scanner.scan(data.substr(0, n));
    if (scan.state != apigw::http::HeadScan::State::kNeedMore) return scan;
  }
  return scan;
}

void check_clean_head(std::string_view head) {
  FUZZ_CHECK(head.size() >= 4 && head.ends_with("\r\n\r\n"));
  for (std::size_t i = 0; i < head.size(); ++i) {
    FUZZ_CHECK(head[i] != '\0');
    if (head[i] == '\n') FUZZ_CHECK(i > 0 && head[i - 1] == '\r');
    if (head[i] == '\r') FUZZ_CHECK(i + 1 < head.size() && head[i + 1] == '\n');
    if (head[i] == '\n' && i + 1 < head.size()) FUZZ_CHECK(head[i + 1] != ' ' && head[i + 1] != '\t');
  }
}

bool dot_segment(std::string_view segment) {
  std::string lowered;
  for (char c : segment) lowered.push_back(c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c);
  return lowered == "." || lowered == "%2e" || lowered == ".." || lowered == "%2e." || lowered == ".%2e" ||
         lowered == "%2e%2e";
}

void check_target(const apigw::http::RequestTarget& target) {
  const std::string_view path = target.path;
  FUZZ_CHECK(!path.empty() && path.front() == '/');
  FUZZ_CHECK(path.find('?') == std::string_view::npos && path.find('#') == std::string_view::npos);
  for (std::size_t start = 1; start <= path.size();) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    FUZZ_CHECK(!dot_segment(path.substr(start, end - start)));
    start = end + 1;
  }
  // Normalising is idempotent: the path routed on is one the gateway itself would accept unchanged.
  apigw::http::RequestTarget again;
  std::string storage;
  const std::string copy(path);
  FUZZ_CHECK(apigw::http::parse_request_target(copy, again, storage).empty());
  FUZZ_CHECK(again.path == path);
  FUZZ_CHECK(!again.has_query && again.authority.empty());
}

// The 404 that route_and_forward answers when no route matches: its body must be valid JSON whatever the path.
void check_not_found_reply(std::string_view method, std::string_view path, std::string_view request_id) {
  const std::string message = fmt::format("{} {} {}", "no route matches", method, path);
  apigw::http::LocalReply reply;
  reply.status = 404;
  reply.message = message;
  reply.request_id = request_id;
  std::string out;
  apigw::http::write_local_reply(out, reply);
  const std::size_t body = out.find("\r\n\r\n");
  FUZZ_CHECK(body != std::string::npos);
  boost::system::error_code error;
  const boost::json::value parsed = boost::json::parse(std::string_view(out).substr(body + 4), error);
  FUZZ_CHECK(!error && parsed.is_object() && parsed.as_object().contains("message"));
}

// Forwarder::read_client_chunk: the next body bytes into [data, data + size).
error_code read_client_chunk(ByteStream& stream, boost::beast::flat_buffer& buffer,
                             apigw::proxy::RequestParser& parser, char* data, std::size_t size, std::size_t& got) {
  auto& body = parser.get().body();
  body.data = data;
  body.size = size;
  error_code error = apigw::fuzz::parse_some(stream, buffer, parser, apigw::proxy::kClientReadSize);
  if (error == bhttp::error::need_buffer) error = {};
  got = size - body.size;
  return error;
}

// The request body as Forwarder::run reads it: whole when small and framed by Content-Length, else streamed.
void read_body(ByteStream& stream, boost::beast::flat_buffer& buffer, apigw::proxy::RequestParser& parser) {
  const bool chunked = parser.chunked();
  const auto length = parser.content_length();  // boost::optional
  const bool has_body = chunked || (length && *length > 0);
  if (!has_body) return;
  std::uint64_t total = 0;
  apigw::fuzz::ProgressGuard guard;
  if (!chunked && *length <= apigw::proxy::kBufferedBodyLimit) {
    // read_buffered_body
    std::string body(*length, '\0');
    std::size_t filled = 0;
    while (!parser.is_done()) {
      std::size_t got = 0;
      const std::size_t before = buffer.size() + stream.remaining();
      const error_code error =
          read_client_chunk(stream, buffer, parser, body.data() + filled, body.size() - filled, got);
      filled += got;
      if (error) return;
      guard.turn(got > 0 || buffer.size() + stream.remaining() != before);
    }
    FUZZ_CHECK(filled == *length);
    return;
  }
  // stream_request_body
  const auto relay = std::make_unique_for_overwrite<char[]>(apigw::proxy::kRelayChunk);
  while (!parser.is_done()) {
    std::size_t got = 0;
    const std::size_t before = buffer.size() + stream.remaining();
    const error_code error = read_client_chunk(stream, buffer, parser, relay.get(), apigw::proxy::kRelayChunk, got);
    total += got;
    if (length) FUZZ_CHECK(total <= *length);
    if (error) return;
    guard.turn(got > 0 || buffer.size() + stream.remaining() != before);
  }
  if (length) FUZZ_CHECK(total == *length);
}

}  // namespace

static_assert(std::is_same_v<apigw::proxy::RequestParser, bhttp::request_parser<bhttp::buffer_body>>);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  std::string_view data = apigw::fuzz::as_text(bytes, size);

  // read_head, with everything that arrived in one read.
  data.remove_prefix(apigw::http::leading_empty_lines(data));
  apigw::http::RequestHeadScanner scanner;
  const apigw::http::HeadScan scan = scanner.scan(data);
  FUZZ_CHECK(same_scan(scan, scan_bytewise(data)));
  apigw::http::RequestHeadScanner judged;
  const apigw::http::HeadVerdict verdict =
      apigw::http::judge_head(judged, data, {kLimits.max_uri_bytes, kLimits.max_header_bytes});
  if (verdict.kind == apigw::http::HeadVerdict::Kind::kRefuse) {
    FUZZ_CHECK(verdict.status >= 400 && !verdict.message.empty());
  }
  if (verdict.kind != apigw::http::HeadVerdict::Kind::kHead) return 0;
  FUZZ_CHECK(scan.state == apigw::http::HeadScan::State::kComplete && verdict.length == scan.length);
  const std::string_view head = data.substr(0, scan.length);
  check_clean_head(head);

  // serve_request: the head alone goes to the parser.
  apigw::proxy::RequestParser parser;
  parser.header_limit(static_cast<std::uint32_t>(kLimits.max_header_bytes + 4));
  parser.body_limit(kLimits.max_body_bytes);
  error_code error;
  const std::size_t used = parser.put(boost::asio::buffer(head.data(), head.size()), error);
  if (!error && !parser.is_header_done()) error = bhttp::error::need_more;
  if (error) return 0;
  FUZZ_CHECK(used == head.size());
  const auto& request = parser.get();
  std::string request_id = "0b6f3c1e-8a52-4c07-9d0e-2f4b7b1d9a11";
  const auto id = request.find("X-Request-Id");
  if (id != request.end() && apigw::http::is_sane_request_id(id->value())) {
    request_id = std::string(id->value());
  }
  apigw::http::CheckedRequest checked;
  if (apigw::http::check_request(request, parser.chunked(), kLimits.max_uri_bytes, checked)) return 0;
  const apigw::http::RequestTarget& target = checked.target;
  check_target(target);
  check_not_found_reply(request.method_string(), target.path, request_id);
  (void)apigw::http::strip_path_prefix(target.path, "/v1");

  // build_request_head's field filter, then the body, from the bytes after the head.
  const apigw::proxy::HopByHopRules rules(request);
  for (const auto& field : request) (void)rules.drop(field.name(), field.name_string());
  boost::beast::flat_buffer buffer;
  ByteStream stream(data.substr(head.size()), kReads);
  read_body(stream, buffer, parser);
  return 0;
}
