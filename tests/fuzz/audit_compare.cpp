// The migration audit's comparison and record: migration::compare_responses on two bodies with a list of
// `ignore_fields` JSON pointers, and migration::audit_line, the NDJSON line written for them. The input is split at
// each 0xFF byte (never part of UTF-8 text): primary body, shadow body, request path, then one ignore pointer per
// part.
//
// Invariants: a body compared with itself matches, with or without the ignore list; the comparison is symmetric;
// different statuses never match; every reported difference is a JSON pointer that parses and prints back to
// itself, as does every well-formed ignore pointer; the audit line is one line of valid JSON whose "match" agrees
// with the comparison.
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "apigw/core/json_pointer.h"
#include "apigw/migration/audit_compare.h"
#include "apigw/migration/audit_record.h"
#include "fuzz_support.h"

namespace {

using apigw::migration::Comparison;

std::vector<std::string_view> split(std::string_view input) {
  std::vector<std::string_view> parts;
  for (;;) {
    const std::size_t at = input.find('\xff');
    parts.push_back(input.substr(0, at));
    if (at == std::string_view::npos) return parts;
    input.remove_prefix(at + 1);
  }
}

void check_pointer_round_trip(std::string_view pointer) {
  const auto tokens = apigw::core::parse_json_pointer(pointer);
  if (!tokens) return;
  FUZZ_CHECK(apigw::core::json_pointer(*tokens) == pointer);
}

std::size_t difference_count(const Comparison& comparison) {
  return comparison.differences.size() + comparison.more;
}

void check_self(std::string_view body, const std::vector<std::string>& ignore) {
  const Comparison plain = apigw::migration::compare_responses(200, body, 200, body, {});
  FUZZ_CHECK(plain.match && plain.differences.empty() && plain.more == 0);
  const Comparison ignoring = apigw::migration::compare_responses(200, body, 200, body, ignore);
  FUZZ_CHECK(ignoring.match && ignoring.json == plain.json);
}

apigw::migration::AuditSide side(std::string_view upstream, unsigned status, std::string_view body) {
  apigw::migration::AuditSide out;
  out.upstream = upstream;
  out.status = status;
  out.latency = std::chrono::microseconds(1234);
  out.body_bytes = body.size();
  out.body = body;
  out.body_sha256 = apigw::migration::body_hash(body);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  const std::vector<std::string_view> parts = split(apigw::fuzz::as_text(bytes, size));
  const std::string_view body_a = parts[0];
  const std::string_view body_b = parts.size() > 1 ? parts[1] : std::string_view();
  const std::string_view path = parts.size() > 2 ? parts[2] : std::string_view("/");
  std::vector<std::string> ignore;
  for (std::size_t i = 3; i < parts.size(); ++i) ignore.emplace_back(parts[i]);
  for (const std::string& pointer : ignore) check_pointer_round_trip(pointer);

  check_self(body_a, ignore);
  check_self(body_b, ignore);
  const Comparison ab = apigw::migration::compare_responses(200, body_a, 200, body_b, ignore);
  const Comparison ba = apigw::migration::compare_responses(200, body_b, 200, body_a, ignore);
  FUZZ_CHECK(ab.match == ba.match && ab.json == ba.json && difference_count(ab) == difference_count(ba));
  FUZZ_CHECK(ab.match == (difference_count(ab) == 0));
  FUZZ_CHECK(ab.differences.size() <= apigw::migration::kMaxReportedDifferences);
  if (!ab.json) FUZZ_CHECK(ab.match == (body_a == body_b));
  for (const std::string& difference : ab.differences) check_pointer_round_trip(difference);
  const Comparison statuses = apigw::migration::compare_responses(200, body_a, 503, body_a, ignore);
  FUZZ_CHECK(!statuses.match);

  apigw::migration::AuditRecord record;
  record.time = std::chrono::system_clock::time_point(std::chrono::milliseconds(1700000000123));
  record.request_id = "0b6f3c1e-8a52-4c07-9d0e-2f4b7b1d9a11";
  record.route = "users";
  record.method = "GET";
  const std::size_t question = path.find('?');
  record.path = path.substr(0, question);
  if (question != std::string_view::npos) record.query = path.substr(question + 1);
  record.bucket = 42;
  record.primary = side("demo", 200, body_a);
  record.shadow = side("demo-cloud", 200, body_b);
  apigw::migration::AuditResult result{};
  const std::string line = apigw::migration::audit_line(record, ignore, result);
  FUZZ_CHECK(line.find('\n') == std::string::npos);
  boost::system::error_code error;
  const boost::json::value parsed = boost::json::parse(line, error);
  FUZZ_CHECK(!error && parsed.is_object());
  const boost::json::value* match = parsed.as_object().if_contains("match");
  FUZZ_CHECK(match != nullptr && match->is_bool());
  FUZZ_CHECK(match->as_bool() == ab.match && (result == apigw::migration::AuditResult::kMatch) == ab.match);
  return 0;
}
