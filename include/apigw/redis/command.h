// A command's words, built outside the coroutine that sends it: braced lists of string literals inside a
// co_await's operand trip g++ 12.
#pragma once

#include <string>
#include <vector>

namespace apigw::redis {

template <class... Words>
std::vector<std::string> command(const Words&... words) {
  return {std::string(words)...};
}

}  // namespace apigw::redis
