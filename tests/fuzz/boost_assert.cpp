// Boost's assertions stay on in the fuzz build (BOOST_ENABLE_ASSERT_HANDLER): a failed one is a finding, like a
// crash. One of Beast 1.81's is known to be wrong and is let through, as the optimised build (NDEBUG) does:
//
// - basic_parser::parse_chunk_header asserts `n >= 5` once it has seen the last chunk ("0\r\n") and waits for the
//   trailer. When that last chunk is the first one and arrives in pieces, the next call legitimately has only 4
//   bytes ("0\r\n\r"); the code after the assertion handles that (it waits for more).
#include <boost/assert.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

bool known_wrong(const char* expression, const char* file) {
  return std::strstr(file, "boost/beast/http/impl/basic_parser.ipp") != nullptr &&
         std::strcmp(expression, "n >= 5") == 0;
}

}  // namespace

namespace boost {

void assertion_failed(const char* expression, const char* function, const char* file, long line) {
  if (known_wrong(expression, file)) return;
  std::fprintf(stderr, "%s:%ld: %s: Assertion '%s' failed.\n", file, line, function, expression);
  std::abort();
}

void assertion_failed_msg(const char* expression, const char* message, const char* function, const char* file,
                          long line) {
  if (known_wrong(expression, file)) return;
  std::fprintf(stderr, "%s:%ld: %s: Assertion '%s' failed: %s\n", file, line, function, expression, message);
  std::abort();
}

}  // namespace boost
