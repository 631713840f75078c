// The forwarder's retry rules (see retry_policy.h).
#include "apigw/proxy/retry_policy.h"

#include <boost/asio/error.hpp>

namespace apigw::proxy {

RetryPolicy::Next RetryPolicy::after_connect_failure() {
  // Nothing reached the upstream, so any method may try another endpoint.
  if (retries_left_ > 0 && replayable_) {
    --retries_left_;
    return Next::kOtherEndpoint;
  }
  return Next::kGiveUp;
}

RetryPolicy::Next RetryPolicy::after_exchange_failure(const boost::system::error_code& error, bool reused,
                                                      bool got_response_bytes) {
  const bool timed_out = error == boost::asio::error::timed_out;
  const bool stale = reused && !got_response_bytes && !timed_out;
  if (stale && idempotent_ && replayable_ && !stale_retry_used_) {
    stale_retry_used_ = true;
    return Next::kFreshConnection;
  }
  if (timed_out) return Next::kGiveUp;
  if (retries_left_ > 0 && idempotent_ && replayable_) {
    --retries_left_;
    return Next::kOtherEndpoint;
  }
  return Next::kGiveUp;
}

}  // namespace apigw::proxy
