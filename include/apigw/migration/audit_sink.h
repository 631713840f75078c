// The writer of migration audit records: NDJSON lines, in batches, to a file or an HTTP collector, from a thread of
// its own (sink/record_sink.h).
#pragma once

#include <chrono>
#include <cstddef>

#include "apigw/sink/record_sink.h"

namespace apigw::migration {

class AuditSink final : public sink::RecordSink {
 public:
  static constexpr std::size_t kMaxPendingRecords = 20000;  // beyond this, write() drops and counts
  static constexpr std::size_t kBatchRecords = 1000;        // at most this many records per file write / POST
  static constexpr std::chrono::seconds kHttpTimeout{2};    // a POST (connect, send, answer) that takes longer fails
  static_assert(kBatchRecords > 0 && kBatchRecords <= kMaxPendingRecords);

  // Off until reopen() names a target (migration.audit.sink).
  AuditSink();
};

}  // namespace apigw::migration
