// The audit record of one shadowed request (pure): what each side answered, whether the answers agree, and the
// NDJSON line written to the audit sink.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace apigw::migration {

// One side's answer as the audit saw it.
struct AuditSide {
  std::string upstream;
  std::string error;  // why there is no whole answer ("timeout", "connect", ...); empty when `status` is one
  unsigned status = 0;
  std::chrono::microseconds latency{0};  // from the request sent to the end of the response (or the failure)
  std::uint64_t body_bytes = 0;          // the whole body's size
  std::string body;                      // the body, when it was at most the audit's max_body_bytes
  bool body_kept = true;                 // false: the body was larger, and only its hash takes part
  std::string body_sha256;               // of the whole body
  std::string span_id;                   // the span the side was sent as (tracing on), in hex; else empty
};

struct AuditRecord {
  std::chrono::system_clock::time_point time;  // when the request arrived
  std::string request_id;
  std::string route;
  std::string method;
  std::string path;  // as received, without the query
  std::string query;
  std::string trace_id;  // the request's trace (tracing on), in hex; else empty
  std::optional<std::uint32_t> bucket;  // the affinity bucket; none for a beta user's request
  AuditSide primary;
  AuditSide shadow;
};

enum class AuditResult { kMatch, kMismatch, kIncomplete };

// The record's NDJSON line (one JSON object, no newline), and in `result` how it came out:
//   {"time","request_id","route","method","path","query"[,"trace_id"],"bucket",
//    "primary":{"upstream"[,"span_id"],"status","latency_ms","body_bytes","body_sha256"}, "shadow":{...},
//    "match","compared","differences"[,"more_differences"]}
// A side that did not answer has "error" instead of status and body. `match` needs both answers, equal statuses
// and equal bodies: compared as JSON values without `ignore_fields` when both bodies were kept and are JSON
// ("compared":"json"), byte for byte when both were kept ("bytes"), else by hash ("hash"). `differences` lists
// the JSON pointers that differ ("" for the whole body); "status" is not a pointer, so a status difference alone
// leaves it empty. An incomplete record (a side without an answer) has "match":false and "compared":"none".
std::string audit_line(const AuditRecord& record, std::span<const std::string> ignore_fields, AuditResult& result);

}  // namespace apigw::migration
