// Waiting for a socket to become readable the way an edge-triggered event loop does it: without a system call.
// Asio's own reads try the socket at once and wait only after EAGAIN, which costs one wasted recv() each time a
// request or response is not there yet, and its async_wait(wait_read) re-arms epoll (one epoll_ctl) per wait.
// The fast path below instead uses the reactor's per-socket readiness flag: it completes at once when an event
// arrived since the last wait (the caller then reads, and may find nothing), and otherwise queues until the next
// edge. It reaches into Asio's epoll reactor, so it is compiled only for the Boost versions it was verified on
// (APIGW_ASIO_READINESS_FAST_PATH); every other version, other reactors, and builds configured with
// APIGW_PORTABLE_READINESS=ON take Asio's public async_wait(wait_read), which is correct everywhere and costs
// that one epoll_ctl per wait (docs/decisions.md).
#pragma once

#include <boost/version.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

// Boost versions whose epoll reactor the fast path was verified against (reactor_op, start_op's speculative
// flag, basic_socket's impl_): 1.81.
#if !defined(APIGW_PORTABLE_READINESS) && BOOST_VERSION == 108100 && defined(BOOST_ASIO_HAS_EPOLL) && \
    !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
#define APIGW_ASIO_READINESS_FAST_PATH 1
#else
#define APIGW_ASIO_READINESS_FAST_PATH 0
#endif

#if APIGW_ASIO_READINESS_FAST_PATH
#include <boost/asio/async_result.hpp>
#include <boost/asio/detail/bind_handler.hpp>
#include <boost/asio/detail/fenced_block.hpp>
#include <boost/asio/detail/handler_alloc_helpers.hpp>
#include <boost/asio/detail/handler_work.hpp>
#include <boost/asio/detail/memory.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>

namespace apigw::net {
namespace detail {

namespace adetail = boost::asio::detail;

// A reactor read operation that performs no I/O: it reports readiness and marks it consumed, so that the next
// wait on the same socket queues instead of completing at once.
template <typename Handler, typename IoExecutor>
class ReadableWaitOp : public adetail::reactor_op {
 public:
  BOOST_ASIO_DEFINE_HANDLER_PTR(ReadableWaitOp);

  ReadableWaitOp(Handler& handler, const IoExecutor& io_ex)
      : adetail::reactor_op(boost::system::error_code(), &ReadableWaitOp::do_perform, &ReadableWaitOp::do_complete),
        handler_(std::move(handler)),
        work_(handler_, io_ex) {}

  static status do_perform(adetail::reactor_op*) { return done_and_exhausted; }

  static void do_complete(void* owner, adetail::operation* base, const boost::system::error_code&, std::size_t) {
    auto* op = static_cast<ReadableWaitOp*>(base);
    ptr p = {std::addressof(op->handler_), op, op};
    adetail::handler_work<Handler, IoExecutor> work(std::move(op->work_));
    // The handler is moved out so the operation's memory is released before the upcall.
    adetail::binder1<Handler, boost::system::error_code> handler(op->handler_, op->ec_);
    p.h = std::addressof(handler.handler_);
    p.reset();
    if (owner) {
      adetail::fenced_block fence(adetail::fenced_block::half);
      work.complete(handler, handler.handler_);
    }
  }

 private:
  Handler handler_;
  adetail::handler_work<Handler, IoExecutor> work_;
};

// Reaches the socket's reactor registration, which basic_socket keeps protected.
class SocketAccess : public boost::asio::ip::tcp::socket {
 public:
  static auto& implementation(boost::asio::ip::tcp::socket& socket) {
    return (socket.*(&SocketAccess::impl_)).get_implementation();
  }
};

adetail::reactor& reactor_of(boost::asio::ip::tcp::socket& socket);

}  // namespace detail

// Completes with no error when `socket` is probably readable (or closed by the peer), with operation_aborted
// when the socket is cancelled or closed. Only one wait per socket at a time; reads are the caller's.
template <typename CompletionToken>
auto async_wait_readable(boost::asio::ip::tcp::socket& socket, CompletionToken&& token) {
  return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code)>(
      [](auto handler, boost::asio::ip::tcp::socket* socket) {
        using Handler = std::decay_t<decltype(handler)>;
        using IoExecutor = boost::asio::ip::tcp::socket::executor_type;
        using Op = detail::ReadableWaitOp<Handler, IoExecutor>;
        const bool is_continuation = boost_asio_handler_cont_helpers::is_continuation(handler);
        typename Op::ptr p = {std::addressof(handler), Op::ptr::allocate(handler), nullptr};
        p.p = new (p.v) Op(handler, socket->get_executor());
        auto& impl = detail::SocketAccess::implementation(*socket);
        detail::reactor_of(*socket).start_op(detail::adetail::reactor::read_op, impl.socket_, impl.reactor_data_, p.p,
                                             is_continuation, true);
        p.v = p.p = nullptr;
      },
      token, &socket);
}

}  // namespace apigw::net

#else  // the portable path: Asio's public API

namespace apigw::net {

// Completes with no error when `socket` is readable (or closed by the peer), with operation_aborted when the
// socket is cancelled or closed. Only one wait per socket at a time; reads are the caller's.
template <typename CompletionToken>
auto async_wait_readable(boost::asio::ip::tcp::socket& socket, CompletionToken&& token) {
  return socket.async_wait(boost::asio::ip::tcp::socket::wait_read, std::forward<CompletionToken>(token));
}

}  // namespace apigw::net

#endif
