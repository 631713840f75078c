// The audit sink's format (see audit_sink.h).
#include "apigw/migration/audit_sink.h"

namespace apigw::migration {

namespace {

sink::Format audit_format() {
  sink::Format format;
  format.name = "audit sink";
  format.content_type = "application/x-ndjson";
  format.user_agent = "apigw-audit";
  format.max_pending = AuditSink::kMaxPendingRecords;
  format.batch = AuditSink::kBatchRecords;
  format.timeout = AuditSink::kHttpTimeout;
  return format;  // encode: one record a line
}

}  // namespace

AuditSink::AuditSink() : RecordSink(audit_format()) {}

}  // namespace apigw::migration
