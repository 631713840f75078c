// Checks the raw bytes of a request head before the HTTP parser sees them, for what the parser tolerates but a
// gateway must refuse (request smuggling vectors): bare CR or LF, NUL, obs-fold. Pure; never allocates.
#pragma once

#include <cstddef>
#include <string_view>

namespace apigw::http {

struct HeadScan {
  enum class State { kNeedMore, kComplete, kBad };
  State state = State::kNeedMore;
  std::size_t length = 0;   // with kComplete: bytes up to and including the blank line
  std::string_view reason;  // with kBad: what was wrong, for the error body and the log
};

// Scans `data` (the bytes buffered so far, starting at the request line) from offset `from`, which must be a
// previously returned `resume` point (0 at first). Returns kComplete once "\r\n\r\n" is seen.
class RequestHeadScanner {
 public:
  HeadScan scan(std::string_view data);
  std::size_t scanned() const { return pos_; }
  // True while the request line has not ended yet (for telling 414 from 431 when the head is too long).
  bool in_request_line() const { return lines_ == 0; }

 private:
  std::size_t pos_ = 0;
  std::size_t lines_ = 0;
};

// What the bytes of a request head buffered so far come to under the size limits: a complete head within
// max_header_bytes, a refusal (400 for a malformed head, 414 for a request line over max_uri_bytes, 431 for a head
// over max_header_bytes, whether it is still arriving or came whole), or a need for more bytes.
struct HeadLimits {
  std::size_t max_uri_bytes = 0;
  std::size_t max_header_bytes = 0;
};
struct HeadVerdict {
  enum class Kind { kNeedMore, kHead, kRefuse };
  Kind kind = Kind::kNeedMore;
  std::size_t length = 0;    // kHead: the head's bytes, blank line included
  unsigned status = 0;       // kRefuse
  std::string_view message;  // kRefuse: a static text
};
// Scans `data` on with `scanner` (the same data, grown, at each call) and judges it.
HeadVerdict judge_head(RequestHeadScanner& scanner, std::string_view data, const HeadLimits& limits);

// Leading empty lines before a request line are allowed by RFC 9112 §2.2; returns how many bytes of them `data`
// starts with (only complete CRLFs).
std::size_t leading_empty_lines(std::string_view data);

}  // namespace apigw::http
