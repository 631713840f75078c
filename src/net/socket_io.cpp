// Readiness-driven reads, direct writes and buffered parse steps (see socket_io.h).
#include "apigw/net/socket_io.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/http/error.hpp>

#include "apigw/net/no_throw.h"
#include "apigw/net/readiness.h"
#include "tls_io.h"

namespace apigw::net {
namespace asio = boost::asio;
namespace beast = boost::beast;
using boost::system::error_code;

#if APIGW_ASIO_READINESS_FAST_PATH
namespace detail {
namespace {

// io_contexts destroyed so far in the process: a thread's cached reactor is good only while none was, since a new
// io_context may be made at the address of a freed one.
std::atomic<std::uint64_t> contexts_gone{0};

// Registered with each io_context whose reactor is cached; it goes with its io_context.
class ContextGone final : public asio::execution_context::service {
 public:
  static inline asio::execution_context::id id;
  explicit ContextGone(asio::execution_context& context) : service(context) {}
  ~ContextGone() override { contexts_gone.fetch_add(1, std::memory_order_relaxed); }

 private:
  void shutdown() override {}
};

}  // namespace

adetail::reactor& reactor_of(asio::ip::tcp::socket& socket) {
  // One io_context per worker thread: the lookup (which takes a lock) happens once per thread, and again only
  // after some io_context was destroyed.
  thread_local asio::execution_context* context = nullptr;
  thread_local adetail::reactor* reactor = nullptr;
  thread_local std::uint64_t gone_before = 0;
  asio::execution_context& wanted = asio::query(socket.get_executor(), asio::execution::context);
  const std::uint64_t gone = contexts_gone.load(std::memory_order_relaxed);
  if (context != &wanted || gone != gone_before) {
    asio::use_service<ContextGone>(wanted);
    reactor = &asio::use_service<adetail::reactor>(wanted);
    context = &wanted;
    gone_before = gone;
  }
  return *reactor;
}

}  // namespace detail
#endif

namespace {

// One non-blocking recv: the bytes read, 0 with eof, or 0 with no error when nothing is there.
std::size_t recv_now(asio::ip::tcp::socket& socket, asio::mutable_buffer buffer, error_code& error) {
  for (;;) {
    const ssize_t n = ::recv(socket.native_handle(), buffer.data(), buffer.size(), MSG_DONTWAIT);
    if (n > 0) return static_cast<std::size_t>(n);
    if (n == 0) {
      error = asio::error::eof;
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) error.assign(errno, boost::system::system_category());
    return 0;
  }
}

template <bool isRequest>
asio::awaitable<error_code> parse_step(Connection& connection, beast::flat_buffer& buffer,
                                       beast::http::basic_parser<isRequest>& parser, std::size_t read_size,
                                       PendingWatch* watch) {
  error_code error;
  for (;;) {
    if (buffer.size() != 0) {
      const std::size_t used = parser.put(buffer.data(), error);
      buffer.consume(used);
      if (error != beast::http::error::need_more) co_return error;
      error = {};
      if (watch != nullptr && buffer.size() != 0) {
        const auto pending = buffer.data();
        if (const error_code stop =
                watch->on_pending({static_cast<const char*>(pending.data()), pending.size()})) {
          co_return stop;
        }
      }
    }
    auto [read_error, n] = co_await read_some(connection, buffer.prepare(read_size));
    buffer.commit(n);
    if (read_error == asio::error::eof) {
      // The end of a close-delimited body, or a peer that left (mid-message or before one started).
      if (!parser.got_some()) co_return beast::http::error::end_of_stream;
      parser.put_eof(error);
      co_return error;
    }
    if (read_error) co_return read_error;
  }
}
}  // namespace

std::size_t read_now(Connection& connection, asio::mutable_buffer buffer, error_code& error) {
  if (connection.tls) return detail::tls_read_now(connection, buffer, error);
  const std::size_t n = recv_now(connection.socket, buffer, error);
  connection.drained = n < buffer.size();
  return n;
}

asio::awaitable<std::tuple<error_code, std::size_t>> read_some(Connection& connection, asio::mutable_buffer buffer) {
  if (connection.tls) co_return co_await detail::tls_read_some(connection, buffer);
  error_code error;
  if (!connection.drained) {
    const std::size_t n = read_now(connection, buffer, error);
    if (error || n > 0) co_return std::tuple{error, n};
  }
  for (;;) {
    auto [wait_error] = co_await async_wait_readable(connection.socket, kNoThrow);
    if (wait_error) co_return std::tuple{wait_error, std::size_t{0}};
    const std::size_t n = read_now(connection, buffer, error);
    // Nothing there: the readiness was from bytes an earlier read already took; the next edge is a new one.
    if (!error && n == 0) continue;
    co_return std::tuple{error, n};
  }
}

std::size_t write_now(Connection& connection, std::span<const asio::const_buffer> buffers, error_code& error) {
  if (connection.tls) {
    bool wants_read = false;
    return detail::tls_write_now(connection, buffers, 0, error, wants_read);
  }
  constexpr std::size_t kMaxIov = 8;
  iovec iov[kMaxIov];
  const std::size_t count = std::min(buffers.size(), kMaxIov);
  for (std::size_t i = 0; i < count; ++i) {
    iov[i].iov_base = const_cast<void*>(buffers[i].data());
    iov[i].iov_len = buffers[i].size();
  }
  msghdr message{};
  message.msg_iov = iov;
  message.msg_iovlen = count;
  for (;;) {
    const ssize_t n = ::sendmsg(connection.socket.native_handle(), &message, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) error.assign(errno, boost::system::system_category());
    return 0;
  }
}

void shutdown_send(Connection& connection, error_code& error) {
  if (connection.tls) detail::tls_close_notify(connection);
  connection.socket.shutdown(asio::socket_base::shutdown_send, error);
}

asio::awaitable<std::tuple<error_code, std::size_t>> write_all(Connection& connection,
                                                               std::span<const asio::const_buffer> buffers) {
  error_code error;
  const std::size_t written = write_now(connection, buffers, error);
  if (error || written == asio::buffer_size(buffers)) co_return std::tuple{error, written};
  co_return co_await write_rest(connection, buffers, written);
}

asio::awaitable<std::tuple<error_code, std::size_t>> write_rest(Connection& connection,
                                                                std::span<const asio::const_buffer> buffers,
                                                                std::size_t written) {
  if (connection.tls) co_return co_await detail::tls_write(connection, buffers, written);
  beast::buffers_suffix<std::span<const asio::const_buffer>> rest(buffers);
  rest.consume(written);
  auto [wait_error, n] = co_await asio::async_write(connection.socket, rest, kNoThrow);
  co_return std::tuple{wait_error, written + n};
}

asio::awaitable<std::tuple<error_code, std::size_t>> write_all(Connection& connection, asio::const_buffer buffer) {
  // A coroutine of its own, so that the one-element sequence lives in this frame while the write waits.
  co_return co_await write_all(connection, std::span<const asio::const_buffer>(&buffer, 1));
}

asio::awaitable<error_code> parse_some(Connection& connection, beast::flat_buffer& buffer,
                                       beast::http::basic_parser<true>& parser, std::size_t read_size,
                                       PendingWatch* watch) {
  return parse_step(connection, buffer, parser, read_size, watch);
}

asio::awaitable<error_code> parse_some(Connection& connection, beast::flat_buffer& buffer,
                                       beast::http::basic_parser<false>& parser, std::size_t read_size) {
  return parse_step(connection, buffer, parser, read_size, nullptr);
}

}  // namespace apigw::net
