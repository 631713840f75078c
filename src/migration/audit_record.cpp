// The audit record's line (see audit_record.h).
#include "apigw/migration/audit_record.h"

#include <ctime>
#include <iterator>

#include <fmt/format.h>

#include "apigw/http/local_reply.h"
#include "apigw/migration/audit_compare.h"

namespace apigw::migration {
namespace {

void append_string(std::string& out, std::string_view name, std::string_view value) {
  out += '"';
  out += name;
  out += "\":\"";
  http::append_json_escaped(out, value);
  out += '"';
}

void append_time(std::string& out, std::chrono::system_clock::time_point time) {
  const auto since = time.time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since - seconds).count();
  const std::time_t whole = seconds.count();
  std::tm utc{};
  gmtime_r(&whole, &utc);
  char text[32];
  const std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  fmt::format_to(std::back_inserter(out), "\"time\":\"{}.{:03}Z\"", std::string_view(text, n), millis);
}

void append_side(std::string& out, std::string_view name, const AuditSide& side) {
  out += '"';
  out += name;
  out += "\":{";
  append_string(out, "upstream", side.upstream);
  if (!side.span_id.empty()) {
    out += ',';
    append_string(out, "span_id", side.span_id);
  }
  const double latency_ms = static_cast<double>(side.latency.count()) / 1000.0;
  if (!side.error.empty()) {
    out += ',';
    append_string(out, "error", side.error);
    fmt::format_to(std::back_inserter(out), ",\"latency_ms\":{:.3f}}}", latency_ms);
    return;
  }
  fmt::format_to(std::back_inserter(out), ",\"status\":{},\"latency_ms\":{:.3f},\"body_bytes\":{},", side.status,
                 latency_ms, side.body_bytes);
  append_string(out, "body_sha256", side.body_sha256);
  out += '}';
}

}  // namespace

std::string audit_line(const AuditRecord& record, std::span<const std::string> ignore_fields, AuditResult& result) {
  std::string out;
  out.reserve(512);
  out += '{';
  append_time(out, record.time);
  out += ',';
  append_string(out, "request_id", record.request_id);
  out += ',';
  append_string(out, "route", record.route);
  out += ',';
  append_string(out, "method", record.method);
  out += ',';
  append_string(out, "path", record.path);
  out += ',';
  append_string(out, "query", record.query);
  if (!record.trace_id.empty()) {
    out += ',';
    append_string(out, "trace_id", record.trace_id);
  }
  if (record.bucket) {
    fmt::format_to(std::back_inserter(out), ",\"bucket\":{},", *record.bucket);
  } else {
    out += ",\"bucket\":null,";
  }
  append_side(out, "primary", record.primary);
  out += ',';
  append_side(out, "shadow", record.shadow);

  const AuditSide& a = record.primary;
  const AuditSide& b = record.shadow;
  if (!a.error.empty() || !b.error.empty()) {
    result = AuditResult::kIncomplete;
    out += R"(,"match":false,"compared":"none","differences":[]})";
    return out;
  }
  Comparison comparison;
  std::string_view compared;
  if (a.body_kept && b.body_kept) {
    comparison = compare_responses(a.status, a.body, b.status, b.body, ignore_fields);
    compared = comparison.json ? "json" : "bytes";
  } else {
    compared = "hash";
    const bool same_body = a.body_sha256 == b.body_sha256;
    comparison.match = same_body && a.status == b.status;
    if (!same_body) comparison.differences.emplace_back();
  }
  result = comparison.match ? AuditResult::kMatch : AuditResult::kMismatch;
  fmt::format_to(std::back_inserter(out), ",\"match\":{},\"compared\":\"{}\",\"differences\":[",
                 comparison.match, compared);
  for (std::size_t i = 0; i < comparison.differences.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    http::append_json_escaped(out, comparison.differences[i]);
    out += '"';
  }
  out += ']';
  if (comparison.more > 0) fmt::format_to(std::back_inserter(out), ",\"more_differences\":{}", comparison.more);
  out += '}';
  return out;
}

}  // namespace apigw::migration
