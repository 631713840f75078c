// The forwarder's retry rules: which failed attempts are tried again, how, and within which budget.
#include "apigw/proxy/retry_policy.h"

#include <gtest/gtest.h>

#include <boost/asio/error.hpp>
#include <boost/beast/http/error.hpp>

namespace apigw::proxy {
namespace {
namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using Next = RetryPolicy::Next;

const boost::system::error_code kReset = asio::error::connection_reset;
const boost::system::error_code kClosed = bhttp::error::end_of_stream;
const boost::system::error_code kTimedOut = asio::error::timed_out;

TEST(RetryPolicy, AConnectFailureTriesAnotherEndpointForAnyReplayableRequest) {
  // Nothing reached the upstream: a POST may be sent elsewhere as safely as a GET.
  RetryPolicy get(1, /*idempotent=*/true, /*replayable=*/true);
  EXPECT_EQ(get.after_connect_failure(), Next::kOtherEndpoint);
  RetryPolicy post(1, /*idempotent=*/false, /*replayable=*/true);
  EXPECT_EQ(post.after_connect_failure(), Next::kOtherEndpoint);
}

TEST(RetryPolicy, AConnectFailureGivesUpOnAStreamedBody) {
  RetryPolicy streamed(3, /*idempotent=*/true, /*replayable=*/false);
  EXPECT_EQ(streamed.after_connect_failure(), Next::kGiveUp);
}

TEST(RetryPolicy, ConnectFailuresUseTheBudgetAndThenGiveUp) {
  RetryPolicy retry(2, true, true);
  EXPECT_EQ(retry.after_connect_failure(), Next::kOtherEndpoint);
  EXPECT_EQ(retry.after_connect_failure(), Next::kOtherEndpoint);
  EXPECT_EQ(retry.after_connect_failure(), Next::kGiveUp);
  EXPECT_EQ(retry.after_connect_failure(), Next::kGiveUp);
}

TEST(RetryPolicy, NoBudgetMeansNoRetryAfterAConnectFailure) {
  RetryPolicy retry(0, true, true);
  EXPECT_EQ(retry.after_connect_failure(), Next::kGiveUp);
}

TEST(RetryPolicy, AStaleReusedConnectionGetsOneFreshConnectionRetry) {
  RetryPolicy retry(0, /*idempotent=*/true, /*replayable=*/true);
  EXPECT_EQ(retry.after_exchange_failure(kClosed, /*reused=*/true, /*got_response_bytes=*/false),
            Next::kFreshConnection);
  // The fresh connection failing the same way is not stale: with no budget left, that is the end.
  EXPECT_EQ(retry.after_exchange_failure(kClosed, true, false), Next::kGiveUp);
}

TEST(RetryPolicy, TheStaleRetryIsOutsideTheBudget) {
  RetryPolicy retry(1, true, true);
  EXPECT_EQ(retry.after_exchange_failure(kReset, /*reused=*/true, /*got_response_bytes=*/false),
            Next::kFreshConnection);
  // The budget of one is still whole: one retry on another endpoint, and then none.
  EXPECT_EQ(retry.after_exchange_failure(kReset, true, false), Next::kOtherEndpoint);
  EXPECT_EQ(retry.after_exchange_failure(kReset, true, false), Next::kGiveUp);
}

TEST(RetryPolicy, TheStaleRetryLeavesTheBudgetToConnectFailures) {
  RetryPolicy retry(1, true, true);
  EXPECT_EQ(retry.after_exchange_failure(kClosed, true, false), Next::kFreshConnection);
  EXPECT_EQ(retry.after_connect_failure(), Next::kOtherEndpoint);
  EXPECT_EQ(retry.after_connect_failure(), Next::kGiveUp);
}

TEST(RetryPolicy, ANewConnectionThatFailsIsNotStale) {
  RetryPolicy retry(0, true, true);
  EXPECT_EQ(retry.after_exchange_failure(kClosed, /*reused=*/false, /*got_response_bytes=*/false), Next::kGiveUp);
}

TEST(RetryPolicy, AConnectionThatSentPartOfAResponseIsNotStale) {
  RetryPolicy retry(0, true, true);
  EXPECT_EQ(retry.after_exchange_failure(bhttp::error::partial_message, /*reused=*/true, /*got_response_bytes=*/true),
            Next::kGiveUp);
}

TEST(RetryPolicy, NoStaleRetryForANonIdempotentRequest) {
  RetryPolicy retry(3, /*idempotent=*/false, /*replayable=*/true);
  EXPECT_EQ(retry.after_exchange_failure(kClosed, /*reused=*/true, /*got_response_bytes=*/false), Next::kGiveUp);
}

TEST(RetryPolicy, NoStaleRetryForAStreamedBody) {
  RetryPolicy retry(3, /*idempotent=*/true, /*replayable=*/false);
  EXPECT_EQ(retry.after_exchange_failure(kClosed, /*reused=*/true, /*got_response_bytes=*/false), Next::kGiveUp);
}

TEST(RetryPolicy, ATimeoutIsNeverRetried) {
  // The upstream may still be working on the request; a stale-looking reused connection changes nothing.
  RetryPolicy retry(3, true, true);
  EXPECT_EQ(retry.after_exchange_failure(kTimedOut, /*reused=*/true, /*got_response_bytes=*/false), Next::kGiveUp);
  EXPECT_EQ(retry.after_exchange_failure(kTimedOut, /*reused=*/false, /*got_response_bytes=*/true), Next::kGiveUp);
  EXPECT_EQ(retry.after_exchange_failure(kTimedOut, /*reused=*/false, /*got_response_bytes=*/false), Next::kGiveUp);
}

TEST(RetryPolicy, ATimeoutLeavesTheBudgetUntouched) {
  RetryPolicy retry(1, true, true);
  EXPECT_EQ(retry.after_exchange_failure(kTimedOut, false, false), Next::kGiveUp);
  EXPECT_EQ(retry.after_connect_failure(), Next::kOtherEndpoint);
}

TEST(RetryPolicy, AnExchangeFailureRetriesAnIdempotentRequestOnAnotherEndpointWithinTheBudget) {
  RetryPolicy retry(2, true, true);
  EXPECT_EQ(retry.after_exchange_failure(kReset, /*reused=*/false, /*got_response_bytes=*/true), Next::kOtherEndpoint);
  EXPECT_EQ(retry.after_exchange_failure(bhttp::error::bad_version, false, true), Next::kOtherEndpoint);
  EXPECT_EQ(retry.after_exchange_failure(kReset, false, true), Next::kGiveUp);
}

TEST(RetryPolicy, AnExchangeFailureNeverRetriesANonIdempotentRequest) {
  // The upstream may have acted on the request before failing.
  RetryPolicy retry(3, /*idempotent=*/false, /*replayable=*/true);
  EXPECT_EQ(retry.after_exchange_failure(kReset, /*reused=*/false, /*got_response_bytes=*/false), Next::kGiveUp);
  EXPECT_EQ(retry.after_exchange_failure(kReset, /*reused=*/false, /*got_response_bytes=*/true), Next::kGiveUp);
  // Nor does the failure use any of its budget: a later connect failure may still go elsewhere.
  EXPECT_EQ(retry.after_connect_failure(), Next::kOtherEndpoint);
}

TEST(RetryPolicy, AnExchangeFailureNeverRetriesAStreamedBody) {
  RetryPolicy retry(3, /*idempotent=*/true, /*replayable=*/false);
  EXPECT_EQ(retry.after_exchange_failure(kReset, false, true), Next::kGiveUp);
}

TEST(RetryPolicy, ConnectAndExchangeFailuresShareOneBudget) {
  RetryPolicy retry(2, true, true);
  EXPECT_EQ(retry.after_connect_failure(), Next::kOtherEndpoint);
  EXPECT_EQ(retry.after_exchange_failure(kReset, false, true), Next::kOtherEndpoint);
  EXPECT_EQ(retry.after_connect_failure(), Next::kGiveUp);
  EXPECT_EQ(retry.after_exchange_failure(kReset, false, true), Next::kGiveUp);
}

}  // namespace
}  // namespace apigw::proxy
