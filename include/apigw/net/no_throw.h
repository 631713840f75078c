// The completion token of the operations whose failure is a value to look at, not an exception:
// `auto [error, n] = co_await socket.async_read_some(buffer, kNoThrow);`.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace apigw::net {

inline constexpr auto kNoThrow = boost::asio::as_tuple(boost::asio::use_awaitable);

}  // namespace apigw::net
