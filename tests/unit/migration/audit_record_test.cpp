// Tests for the audit record's line (fields, escaping, how each comparison comes out), the shadow's ignore list
// (the path as an upstream reads it) and the streaming SHA-256 the audit hashes bodies with.
#include "apigw/migration/audit_record.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <string>
#include <vector>

#include "apigw/core/digest.h"
#include "apigw/migration/shadow_policy.h"

namespace apigw::migration {
namespace {

namespace json = boost::json;

AuditSide answer(unsigned status, std::string body, std::string upstream) {
  AuditSide side;
  side.upstream = std::move(upstream);
  side.status = status;
  side.latency = std::chrono::microseconds(1500);
  side.body_bytes = body.size();
  side.body_sha256 = core::sha256_hex(body);
  side.body = std::move(body);
  return side;
}

AuditRecord record(AuditSide primary, AuditSide shadow) {
  AuditRecord r;
  r.time = std::chrono::system_clock::time_point(std::chrono::milliseconds(1'795'000'000'123));
  r.request_id = "req-1";
  r.route = "users";
  r.method = "GET";
  r.path = "/users/\"7\"";
  r.query = "a=1&b=\\";
  r.bucket = 42;
  r.primary = std::move(primary);
  r.shadow = std::move(shadow);
  return r;
}

json::object line_of(const AuditRecord& r, AuditResult& result, std::vector<std::string> ignore = {}) {
  const std::string line = audit_line(r, ignore, result);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  return json::parse(line).as_object();
}

TEST(AuditRecord, MatchingJsonAnswersCarryEveryField) {
  AuditResult result{};
  const json::object o = line_of(record(answer(200, R"({"id":1,"at":1})", "old"),
                                        answer(200, R"({"at":2,"id":1.0})", "new")),
                                 result, {"/at"});
  EXPECT_EQ(result, AuditResult::kMatch);
  EXPECT_EQ(o.at("time").as_string(), "2026-11-18T11:06:40.123Z");
  EXPECT_EQ(o.at("request_id").as_string(), "req-1");
  EXPECT_EQ(o.at("route").as_string(), "users");
  EXPECT_EQ(o.at("path").as_string(), "/users/\"7\"");
  EXPECT_EQ(o.at("query").as_string(), "a=1&b=\\");
  EXPECT_EQ(o.at("bucket").as_int64(), 42);
  const json::object& primary = o.at("primary").as_object();
  EXPECT_EQ(primary.at("upstream").as_string(), "old");
  EXPECT_EQ(primary.at("status").as_int64(), 200);
  EXPECT_DOUBLE_EQ(primary.at("latency_ms").as_double(), 1.5);
  EXPECT_EQ(primary.at("body_bytes").as_int64(), 15);
  EXPECT_EQ(primary.at("body_sha256").as_string(), core::sha256_hex(R"({"id":1,"at":1})"));
  EXPECT_EQ(o.at("shadow").as_object().at("upstream").as_string(), "new");
  EXPECT_TRUE(o.at("match").as_bool());
  EXPECT_EQ(o.at("compared").as_string(), "json");
  EXPECT_TRUE(o.at("differences").as_array().empty());
  EXPECT_FALSE(o.contains("more_differences"));
}

TEST(AuditRecord, DifferencesAreListedAndABetaUserHasNoBucket) {
  AuditRecord r = record(answer(200, R"({"a":1,"b":[1,2]})", "old"), answer(200, R"({"a":2,"b":[1]})", "new"));
  r.bucket.reset();
  AuditResult result{};
  const json::object o = line_of(r, result);
  EXPECT_EQ(result, AuditResult::kMismatch);
  EXPECT_TRUE(o.at("bucket").is_null());
  EXPECT_FALSE(o.at("match").as_bool());
  EXPECT_EQ(json::serialize(o.at("differences")), R"(["/a","/b/1"])");
}

TEST(AuditRecord, OtherBodiesCompareAsBytesAndStatusesCount) {
  AuditResult result{};
  json::object o = line_of(record(answer(200, "text", "old"), answer(200, "text", "new")), result);
  EXPECT_EQ(result, AuditResult::kMatch);
  EXPECT_EQ(o.at("compared").as_string(), "bytes");
  o = line_of(record(answer(200, "text", "old"), answer(503, "text", "new")), result);
  EXPECT_EQ(result, AuditResult::kMismatch);
  EXPECT_TRUE(o.at("differences").as_array().empty()) << "equal bodies; the statuses differ";
  o = line_of(record(answer(200, "text", "old"), answer(200, "texT", "new")), result);
  EXPECT_EQ(json::serialize(o.at("differences")), R"([""])");
}

TEST(AuditRecord, BodiesNotKeptCompareByHash) {
  AuditSide a = answer(200, "a large body", "old");
  AuditSide b = answer(200, "a large body", "new");
  a.body_kept = false;
  a.body.clear();
  AuditResult result{};
  json::object o = line_of(record(a, b), result);
  EXPECT_EQ(result, AuditResult::kMatch);
  EXPECT_EQ(o.at("compared").as_string(), "hash");
  b.body_sha256 = core::sha256_hex("another body");
  o = line_of(record(a, b), result);
  EXPECT_EQ(result, AuditResult::kMismatch);
  EXPECT_EQ(json::serialize(o.at("differences")), R"([""])");
}

TEST(AuditRecord, ASideWithoutAnAnswerIsIncomplete) {
  AuditSide failed;
  failed.upstream = "new";
  failed.error = "timed out";
  failed.latency = std::chrono::microseconds(300'000);
  AuditResult result{};
  const json::object o = line_of(record(answer(200, "{}", "old"), failed), result);
  EXPECT_EQ(result, AuditResult::kIncomplete);
  const json::object& shadow = o.at("shadow").as_object();
  EXPECT_EQ(shadow.at("error").as_string(), "timed out");
  EXPECT_FALSE(shadow.contains("status"));
  EXPECT_DOUBLE_EQ(shadow.at("latency_ms").as_double(), 300.0);
  EXPECT_FALSE(o.at("match").as_bool());
  EXPECT_EQ(o.at("compared").as_string(), "none");
}

TEST(ShadowPolicy, PathsCompareAsAnUpstreamReadsThem) {
  std::string storage;
  EXPECT_EQ(comparable_path("/payments/1", storage), "/payments/1");
  EXPECT_EQ(comparable_path("//payments///1", storage), "/payments/1");
  EXPECT_EQ(comparable_path("/pay%6Dents/%7E%41", storage), "/payments/~A");
  EXPECT_EQ(comparable_path("/a%2Fb/%20c", storage), "/a%2Fb/%20c") << "reserved and other escapes stay";
  EXPECT_EQ(comparable_path("/a%6", storage), "/a%6");
  EXPECT_EQ(comparable_path("/a%zz", storage), "/a%zz");
}

TEST(ShadowPolicy, IgnoreListMatchesMethodAndPath) {
  std::string why;
  std::vector<routing::RequestPattern> ignore{*routing::RequestPattern::parse("POST /payments/**", why),
                                              *routing::RequestPattern::parse("/notifications/*", why)};
  EXPECT_TRUE(shadow_ignored(ignore, "POST", "/payments/1/capture"));
  EXPECT_TRUE(shadow_ignored(ignore, "POST", "//payments/1"));
  EXPECT_TRUE(shadow_ignored(ignore, "POST", "/pay%6dents"));
  EXPECT_FALSE(shadow_ignored(ignore, "GET", "/payments/1"));
  EXPECT_TRUE(shadow_ignored(ignore, "PUT", "/notifications/7"));
  EXPECT_FALSE(shadow_ignored(ignore, "PUT", "/notifications/7/read"));
  EXPECT_FALSE(shadow_ignored({}, "POST", "/payments"));
}

TEST(Sha256, PiecesHashAsTheWhole) {
  core::Sha256 hash;
  hash.update("hello ");
  hash.update("");
  hash.update("world");
  EXPECT_EQ(hash.hex_final(), core::sha256_hex("hello world"));
  EXPECT_EQ(hash.hex_final(), core::sha256_hex("")) << "starts over after the final";
  EXPECT_EQ(core::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace apigw::migration
