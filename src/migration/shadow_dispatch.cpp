// The shadow's batches (see shadow_dispatch.h).
#include "apigw/migration/shadow_dispatch.h"

#include <algorithm>
#include <optional>
#include <tuple>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include "apigw/upstream/http_client.h"

namespace apigw::migration {
namespace asio = boost::asio;

namespace {
// What a batch of copies may take the shadow side to answer, at the pace it answers (see ShadowDispatch).
constexpr std::chrono::milliseconds kBatchBudget{5};
// Connections in a row one batch may use without any copy coming out answered or failed: a stale kept-alive one
// and a fresh one.
constexpr unsigned kBatchFruitlessConnections = 2;
}  // namespace

bool ShadowDispatch::begin(unsigned max) {
  if (in_flight_.value() >= static_cast<std::int64_t>(max)) return false;
  in_flight_.add(1);
  return true;
}

std::size_t ShadowDispatch::Lane::batch_limit(unsigned pipeline) const {
  if (pace_us <= 0) return 1;  // not measured yet: the first copies go alone, and are measured
  const double fits = std::chrono::duration<double, std::micro>(kBatchBudget).count() / pace_us;
  return fits >= static_cast<double>(pipeline) ? pipeline : std::max<std::size_t>(1, static_cast<std::size_t>(fits));
}

void ShadowDispatch::Lane::observe(std::chrono::steady_clock::duration answer_time) {
  const double us = std::chrono::duration<double, std::micro>(answer_time).count();
  pace_us = pace_us <= 0 ? us : pace_us + (us - pace_us) / 8;
}

void ShadowDispatch::add(std::shared_ptr<ShadowCopy> copy) {
  const upstream::UpstreamPoolPtr& pool = copy->pool();
  auto [it, inserted] = lanes_.try_emplace(pool.get());
  Lane& lane = it->second;
  if (lane.pool.expired()) {  // new, or a pool at the address of a retired one
    lane = Lane{};
    lane.pool = pool;
  }
  const bool idempotent = copy->idempotent();
  const std::size_t limit = lane.batch_limit(copy->pipeline());
  lane.batch.push_back(std::move(copy));
  if (lane.batch.size() >= limit || !idempotent) return launch(lane);
  // While a batch of this lane is on its way, the next one fills up until that one is back (or it is full).
  if (lane.sending > 0 || flush_posted_) return;
  flush_posted_ = true;
  // Behind the handlers already due in this turn of the loop: their copies join this batch.
  asio::post(executor_, [this] {
    flush_posted_ = false;
    flush();
  });
}

void ShadowDispatch::launch(Lane& lane) {
  ++lane.sending;
  Batch batch;
  batch.swap(lane.batch);
  upstream::UpstreamPoolPtr pool = batch.front()->pool();
  asio::co_spawn(executor_, send(lane, std::move(pool), std::move(batch)), asio::detached);
}

void ShadowDispatch::flush() {
  for (auto& [key, lane] : lanes_) {
    if (!lane.batch.empty() && lane.sending == 0) launch(lane);
  }
  // A running batch holds its pool: an expired pool's lane is idle.
  std::erase_if(lanes_, [](const auto& entry) { return entry.second.pool.expired(); });
}

// One batch on its way: its copies, the first of them without an outcome yet, and the deadline they share.
struct ShadowDispatch::Run {
  Run(Lane& batch_lane, upstream::UpstreamPool& shadow_pool, Batch batch, const asio::any_io_executor& executor,
      core::Duration timeout)
      : lane(batch_lane), pool(shadow_pool), copies(std::move(batch)),
        deadline(executor, std::chrono::steady_clock::now() + timeout) {}

  bool done() const { return next == copies.size(); }
  // The next copy's outcome: answered (no failure) or not.
  void settle(std::optional<ShadowFailure> failure) {
    copies[next]->finish(failure);
    copies[next++].reset();
  }
  void fail_rest(ShadowFailure failure) {
    while (!done()) settle(failure);
  }

  Lane& lane;
  upstream::UpstreamPool& pool;
  Batch copies;
  std::size_t next = 0;
  upstream::ExchangeDeadline deadline;
};

namespace {
ShadowFailure lease_failure(const upstream::LeaseResult& leased, bool timed_out) {
  switch (leased.failure) {
    case upstream::LeaseResult::Failure::kNoEndpoint: return ShadowFailure::kNoEndpoint;
    case upstream::LeaseResult::Failure::kPoolFull: return ShadowFailure::kPoolFull;
    case upstream::LeaseResult::Failure::kTls: return ShadowFailure::kTls;
    default: return timed_out ? ShadowFailure::kTimeout : ShadowFailure::kConnect;
  }
}
}  // namespace

asio::awaitable<void> ShadowDispatch::send(Lane& lane, upstream::UpstreamPoolPtr pool_ptr, Batch copies) {
  core::Duration timeout = copies.front()->timeout();
  for (const auto& copy : copies) timeout = std::min(timeout, copy->timeout());
  Run run(lane, *pool_ptr, std::move(copies), executor_, timeout);
  for (const auto& copy : run.copies) copy->sending();

  bool fresh = false;  // the next connection is a new one (the last, reused, had gone stale)
  for (unsigned fruitless = 0; !run.done();) {
    if (fruitless == kBatchFruitlessConnections) {
      run.fail_rest(ShadowFailure::kReset);
      break;
    }
    upstream::LeaseResult leased = run.pool.lease_idle(upstream::kNoEndpoint, fresh);
    if (leased.pending()) leased = co_await run.pool.lease_new(leased.endpoint, fresh);
    if (!leased.lease) {
      run.fail_rest(lease_failure(leased, run.deadline.expired()));
      break;
    }
    upstream::Lease& lease = leased.lease;
    if (run.deadline.expired()) {
      // After the worker drained, an idle connection's watch would keep its loop from ending.
      if (drained_) {
        lease.discard();
      } else {
        lease.put_back();
      }
      run.fail_rest(ShadowFailure::kTimeout);
      break;
    }
    fresh = false;
    const ConnectionOutcome outcome = co_await exchange(run, lease.connection());
    if (!outcome.error) {
      const bool reusable = outcome.keep_alive && run.done() && lease->buffer.size() == 0;
      if (reusable && !drained_) {
        lease.put_back();
      } else {
        lease.discard();
      }
      fruitless = 0;
      continue;  // the shadow side closed after an answer: the copies after it go on another connection
    }
    const bool reused = lease.reused();
    lease.discard();
    if (run.deadline.expired()) {
      run.pool.stats().error(upstream::UpstreamError::kTimeout);
      run.fail_rest(ShadowFailure::kTimeout);
      break;
    }
    fruitless = after_failure(run, outcome, reused, fresh) ? fruitless + 1 : 0;
  }
  // The batch that filled up meanwhile leaves now.
  --lane.sending;
  if (!lane.batch.empty()) launch(lane);
}

asio::awaitable<ShadowDispatch::ConnectionOutcome> ShadowDispatch::exchange(Run& run,
                                                                          upstream::UpstreamConnection& connection) {
  ConnectionOutcome outcome;
  outcome.first = run.next;
  std::vector<asio::const_buffer> buffers;
  buffers.reserve(2 * (run.copies.size() - run.next));
  for (std::size_t i = run.next; i < run.copies.size(); ++i) {
    const auto request = run.copies[i]->request();
    buffers.insert(buffers.end(), request.begin(), request.end());
  }
  run.deadline.watch(connection);
  const auto start = std::chrono::steady_clock::now();
  auto last = start;
  std::tie(outcome.error, std::ignore) = co_await upstream::send_request(connection, buffers);
  while (!outcome.error && outcome.keep_alive && !run.done()) {
    outcome.got_bytes = false;
    outcome.error = co_await run.copies[run.next]->read_answer(connection, outcome.got_bytes, outcome.keep_alive);
    if (outcome.error) break;
    const auto now = std::chrono::steady_clock::now();
    run.pool.stats().duration.observe(now - start);
    // How fast the shadow side answers: the time between two answers of one write, or, for a copy written alone,
    // its whole exchange (an upper bound: it includes the round trip).
    if (run.next > outcome.first || run.copies.size() - outcome.first == 1) run.lane.observe(now - last);
    last = now;
    ++connection.requests;
    run.settle(std::nullopt);
  }
  run.deadline.unwatch();
  co_return outcome;
}

bool ShadowDispatch::after_failure(Run& run, const ConnectionOutcome& outcome, bool reused, bool& fresh) {
  bool fruitless = false;
  // A kept-alive connection the upstream closed while idle: nothing was answered, and the copies go again on a
  // fresh one, as the primary does. Otherwise the copy being answered failed, and the copies after it, which the
  // shadow side may not have read, go again.
  if (upstream::is_protocol_error(outcome.error)) {
    run.pool.stats().error(upstream::UpstreamError::kBadResponse);
    run.settle(ShadowFailure::kBadResponse);
  } else {
    run.pool.stats().error(upstream::UpstreamError::kReset);
    const bool answered_here = run.next > outcome.first || outcome.got_bytes;
    if (reused && !answered_here) {
      fresh = true;
      fruitless = true;
    } else {
      run.settle(ShadowFailure::kReset);
    }
  }
  // Only idempotent copies are sent again; one that is not is the last of its batch.
  if (!run.done() && !run.copies.back()->idempotent()) {
    run.copies.back()->finish(ShadowFailure::kReset);
    run.copies.pop_back();
  }
  return fruitless;
}

}  // namespace apigw::migration
