// Raw request-head checks that run before Beast's parser (see request_head.h).
#include "apigw/http/request_head.h"

#include "apigw/http/text.h"

namespace apigw::http {

HeadScan RequestHeadScanner::scan(std::string_view data) {
  // Each '\n' must follow a '\r', each '\r' must precede a '\n'; a CRLF followed by SP/HTAB is obs-fold (or
  // whitespace before the first field), which RFC 9112 lets a server reject; a blank line ends the head.
  while (pos_ < data.size()) {
    const char c = data[pos_];
    if (c == '\0') return {HeadScan::State::kBad, 0, "NUL byte in request head"};
    if (c == '\r') {
      if (pos_ + 1 >= data.size()) return {};  // wait for the byte after it
      if (data[pos_ + 1] != '\n') return {HeadScan::State::kBad, 0, "bare CR in request head"};
      if (pos_ + 2 >= data.size()) return {};
      const char next = data[pos_ + 2];
      if (is_ows(next)) return {HeadScan::State::kBad, 0, "obs-fold or whitespace before a header"};
      if (next == '\r') {
        if (pos_ + 3 >= data.size()) return {};
        if (data[pos_ + 3] != '\n') return {HeadScan::State::kBad, 0, "bare CR in request head"};
        pos_ += 4;
        return {HeadScan::State::kComplete, pos_, {}};
      }
      if (next == '\n') return {HeadScan::State::kBad, 0, "bare LF in request head"};
      ++lines_;
      pos_ += 2;
      continue;
    }
    if (c == '\n') return {HeadScan::State::kBad, 0, "bare LF in request head"};
    ++pos_;
  }
  return {};
}

namespace {
std::size_t request_line_length(std::string_view data) {
  const std::size_t end = data.find("\r\n");
  return end == std::string_view::npos ? data.size() : end;
}
}  // namespace

HeadVerdict judge_head(RequestHeadScanner& scanner, std::string_view data, const HeadLimits& limits) {
  using Kind = HeadVerdict::Kind;
  const HeadScan scan = scanner.scan(data);
  if (scan.state == HeadScan::State::kComplete && scan.length <= limits.max_header_bytes) {
    return {Kind::kHead, scan.length, 0, {}};
  }
  if (scan.state == HeadScan::State::kBad) return {Kind::kRefuse, 0, 400, scan.reason};
  if (scanner.in_request_line() && data.size() > limits.max_uri_bytes + 32) {
    return {Kind::kRefuse, 0, 414, "request target exceeds server.limits.max_uri_bytes"};
  }
  // A head over the limit is refused whether it is still arriving or came whole in one read.
  if (data.size() > limits.max_header_bytes) {
    if (scanner.in_request_line() || request_line_length(data) > limits.max_uri_bytes) {
      return {Kind::kRefuse, 0, 414, "request line exceeds server.limits.max_header_bytes"};
    }
    return {Kind::kRefuse, 0, 431, "request head exceeds server.limits.max_header_bytes"};
  }
  return {};
}

std::size_t leading_empty_lines(std::string_view data) {
  std::size_t n = 0;
  while (n + 1 < data.size() && data[n] == '\r' && data[n + 1] == '\n') n += 2;
  return n;
}

}  // namespace apigw::http
