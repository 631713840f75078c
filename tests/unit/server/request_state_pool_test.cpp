// The per-worker pool of request states: reuse, bounds, and trimming to what the last period needed.
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "server/request_state.h"

namespace apigw::server {
namespace {

TEST(RequestStatePool, ReleasedStatesAreReusedWithTheirBufferAndWithoutTheirParser) {
  RequestStatePool pool;
  RequestStatePtr state = pool.acquire();
  state->buffer.prepare(8192);
  state->parser.emplace();
  RequestState* const address = state.get();
  pool.release(std::move(state));
  EXPECT_EQ(pool.spare(), 1u);

  RequestStatePtr again = pool.acquire();
  EXPECT_EQ(again.get(), address);
  EXPECT_FALSE(again->parser.has_value());
  EXPECT_EQ(again->buffer.size(), 0u);
  EXPECT_GE(again->buffer.capacity(), 8192u);
  EXPECT_EQ(pool.spare(), 0u);
}

TEST(RequestStatePool, AGrownBufferIsShrunkBeforeItIsKept) {
  RequestStatePool pool;
  RequestStatePtr state = pool.acquire();
  state->buffer.prepare(RequestStatePool::kMaxKeptCapacity * 4);
  pool.release(std::move(state));
  EXPECT_LE(pool.acquire()->buffer.capacity(), RequestStatePool::kMaxKeptCapacity);
}

TEST(RequestStatePool, KeepsAtMostMaxSpare) {
  RequestStatePool pool;
  std::vector<RequestStatePtr> busy;
  for (std::size_t i = 0; i < RequestStatePool::kMaxSpare + 10; ++i) busy.push_back(pool.acquire());
  for (RequestStatePtr& state : busy) pool.release(std::move(state));
  EXPECT_EQ(pool.spare(), RequestStatePool::kMaxSpare);
}

TEST(RequestStatePool, TrimFreesWhatThePeriodDidNotNeed) {
  RequestStatePool pool;
  std::vector<RequestStatePtr> busy;
  for (int i = 0; i < 10; ++i) busy.push_back(pool.acquire());
  for (RequestStatePtr& state : busy) pool.release(std::move(state));
  busy.clear();
  pool.trim();  // the first period ends: its low-water mark was 0 spares, so nothing was idle all along
  EXPECT_EQ(pool.spare(), 10u);

  // In the next period at most 3 are in use at once: 7 spares were never needed.
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 3; ++i) busy.push_back(pool.acquire());
    for (RequestStatePtr& state : busy) pool.release(std::move(state));
    busy.clear();
  }
  pool.trim();
  EXPECT_EQ(pool.spare(), 3u);

  // A quiet period frees the rest.
  pool.trim();
  EXPECT_EQ(pool.spare(), 0u);
}

}  // namespace
}  // namespace apigw::server
