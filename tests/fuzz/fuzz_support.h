// What the fuzz targets share: invariant checks that end the run, and a byte stream that hands out its input in
// reads of chosen sizes, parsed the way net::parse_some (src/net/socket_io.cpp) feeds a Beast parser.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string_view>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>

// A broken invariant is a finding like a crash: libFuzzer keeps the input that caused it.
#define FUZZ_CHECK(condition)                                                                               \
  do {                                                                                                      \
    if (!(condition)) {                                                                                     \
      std::fprintf(stderr, "invariant broken at %s:%d: %s\n", __FILE__, __LINE__, #condition);              \
      std::abort();                                                                                         \
    }                                                                                                       \
  } while (false)

namespace apigw::fuzz {

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// A peer's bytes as successive reads: each read returns at most the next size of `reads` (cycling), and 0 once
// everything was read (the end of the stream).
class ByteStream {
 public:
  ByteStream(std::string_view bytes, std::span<const std::size_t> reads) : rest_(bytes), reads_(reads) {}

  std::size_t read(boost::asio::mutable_buffer into) {
    const std::size_t limit = reads_.empty() ? rest_.size() : reads_[next_++ % reads_.size()];
    const std::size_t n = std::min({into.size(), limit, rest_.size()});
    std::copy_n(rest_.data(), n, static_cast<char*>(into.data()));
    rest_.remove_prefix(n);
    return n;
  }
  bool at_end() const { return rest_.empty(); }
  std::size_t remaining() const { return rest_.size(); }

 private:
  std::string_view rest_;
  std::span<const std::size_t> reads_;
  std::size_t next_ = 0;
};

// net::parse_some's loop (parse_step in src/net/socket_io.cpp) with the stream for the socket: feeds what is
// buffered, reads `read_size` more only when the parser needs more, and reports the end of the stream as the
// session does (end_of_stream before any byte of a message, else put_eof's verdict).
template <bool isRequest>
boost::system::error_code parse_some(ByteStream& stream, boost::beast::flat_buffer& buffer,
                                     boost::beast::http::basic_parser<isRequest>& parser, std::size_t read_size) {
  boost::system::error_code error;
  for (;;) {
    if (buffer.size() != 0) {
      const std::size_t used = parser.put(buffer.data(), error);
      buffer.consume(used);
      if (error != boost::beast::http::error::need_more) return error;
      error = {};
    }
    const std::size_t n = stream.read(buffer.prepare(read_size));
    buffer.commit(n);
    if (n == 0) {
      if (!parser.got_some()) return boost::beast::http::error::end_of_stream;
      parser.put_eof(error);
      return error;
    }
  }
}

// Counts loop turns that moved nothing (no byte consumed, no body byte delivered): a caller's loop that turns
// many times without progress would spin forever on a real connection.
class ProgressGuard {
 public:
  void turn(bool progressed) {
    idle_ = progressed ? 0 : idle_ + 1;
    FUZZ_CHECK(idle_ < 1000);
  }

 private:
  std::size_t idle_ = 0;
};

}  // namespace apigw::fuzz
