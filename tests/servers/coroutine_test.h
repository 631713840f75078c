// Helpers for tests written as Asio coroutines against real servers.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/system/error_code.hpp>
#include <gtest/gtest.h>

#include "apigw/redis/command.h"

// ASSERT_* for test coroutines, which cannot `return`: records the failure and ends the coroutine.
#define CO_ASSERT(condition)                                 \
  do {                                                       \
    if (!(condition)) {                                      \
      ADD_FAILURE() << "assertion failed: " << #condition;   \
      co_return;                                             \
    }                                                        \
  } while (false)
// The same for an operation that must succeed: `expression` gives an error_code.
#define CO_ASSERT_OK(expression)                                                  \
  do {                                                                            \
    if (const boost::system::error_code apigw_co_error = (expression)) {          \
      ADD_FAILURE() << #expression << " failed: " << apigw_co_error.message();    \
      co_return;                                                                  \
    }                                                                             \
  } while (false)

namespace apigw::test_servers {

// A command's arguments (g++ 12 mishandles braced lists of string literals inside coroutines).
template <class... Args>
std::vector<std::string> cmd(const Args&... args) {
  return redis::command(args...);
}

// Runs `body(executor)` as a coroutine on a fresh loop until it ends; rethrows what it threw.
template <class Body>
void run(Body body) {
  boost::asio::io_context loop;
  auto done = boost::asio::co_spawn(loop, body(loop.get_executor()), boost::asio::use_future);
  loop.run();
  done.get();
}

// Waits until `ready()` holds, checking every 10 ms, for at most `limit`.
template <class Ready>
boost::asio::awaitable<void> wait_until(boost::asio::any_io_executor executor, Ready ready,
                                        std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  constexpr auto kStep = std::chrono::milliseconds(10);
  boost::asio::steady_timer poll(executor);
  for (auto waited = std::chrono::milliseconds(0); !ready() && waited < limit; waited += kStep) {
    poll.expires_after(kStep);
    co_await poll.async_wait(boost::asio::use_awaitable);
  }
}

}  // namespace apigw::test_servers
