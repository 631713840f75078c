// A connection's current deadline, checked by its worker's sweeper: one periodic timer per worker instead of a
// timer per socket operation. The sweeper cancels the socket's operations once `at` has passed.
#pragma once

#include <chrono>

#include "apigw/core/units.h"

namespace apigw::core {

struct Deadline {
  using Clock = std::chrono::steady_clock;

  Clock::time_point at = Clock::time_point::max();
  bool expired = false;  // set when the sweeper cancelled the socket because `at` passed

  void arm(Duration timeout) {
    at = Clock::now() + timeout;
    expired = false;
  }
  void arm_at(Clock::time_point when) {
    at = when;
    expired = false;
  }
  void disarm() {
    at = Clock::time_point::max();
    expired = false;
  }
  // For the sweeper: true once when `at` has passed.
  bool expire(Clock::time_point now) {
    if (expired || now < at) return false;
    expired = true;
    return true;
  }
};

}  // namespace apigw::core
