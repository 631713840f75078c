// Redis replies read from the bytes a server sent (RESP, through hiredis's incremental reader), as
// redis::Connection reads them. Pure: no I/O. An array longer than kMaxArrayElements is a protocol error before
// anything is allocated for it.
#pragma once

#include <cstddef>
#include <memory>

#include "apigw/redis/reply.h"

struct redisReader;

namespace apigw::redis {

// The longest array a reply may hold. hiredis 0.14 allocates an array's element pointers as soon as it has read
// the length, which may be up to 2^31 - 1 (16 GiB of pointers for "*2147483647\r\n"); apigw's longest replies are
// CLUSTER SLOTS' (a few elements per slot range, at most 16384 ranges).
inline constexpr int kMaxArrayElements = 1 << 20;

class ReplyReader {
 public:
  enum class Status { kReply, kNeedMore, kProtocolError };

  ReplyReader();
  ~ReplyReader();
  ReplyReader(const ReplyReader&) = delete;
  ReplyReader& operator=(const ReplyReader&) = delete;

  // Appends bytes the server sent; false on a protocol error (the stream cannot be read any further).
  bool feed(const char* data, std::size_t n);
  // The next complete reply, if the bytes fed so far hold one.
  Status next(Reply& reply);
  // Forgets everything fed so far (a new connection).
  void reset();

 private:
  std::unique_ptr<redisReader, void (*)(redisReader*)> reader_;
};

}  // namespace apigw::redis
