// When a failed attempt to forward a request is tried again, and how: the forwarder's retry rules in one place.
// A connect failure sent nothing, so any request whose body can be sent again tries another endpoint, within
// the upstream's retry_attempts. A kept-alive connection that fails before any response byte had most likely
// gone stale while idle: an idempotent request gets one extra try on a fresh connection, outside the budget. A
// timeout is never retried (the upstream may still be working on it). Other failures retry idempotent requests
// on another endpoint, within the budget.
#pragma once

#include <boost/system/error_code.hpp>

namespace apigw::proxy {

class RetryPolicy {
 public:
  enum class Next {
    kGiveUp,           // answer the client with the failure
    kOtherEndpoint,    // try again, avoiding the endpoint that failed
    kFreshConnection,  // try again on a new connection to any endpoint
  };

  // `replayable`: the request has no body, or one held whole (a streamed body cannot be sent twice).
  RetryPolicy(unsigned retry_attempts, bool idempotent, bool replayable)
      : retries_left_(retry_attempts), idempotent_(idempotent), replayable_(replayable) {}

  Next after_connect_failure();
  // An attempt on a leased connection failed before a response head arrived. `reused`: the connection had served
  // requests before; `got_response_bytes`: some of a response arrived.
  Next after_exchange_failure(const boost::system::error_code& error, bool reused, bool got_response_bytes);

 private:
  unsigned retries_left_;
  bool idempotent_;
  bool replayable_;
  bool stale_retry_used_ = false;
};

}  // namespace apigw::proxy
