// Tests for the audit's comparison of two answers: JSON compared as values with ignored fields, pointers of what
// differs, byte comparison for everything else, and body hashes.
#include "apigw/migration/audit_compare.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace apigw::migration {
namespace {

using Pointers = std::vector<std::string>;

Comparison compare(std::string_view a, std::string_view b, const std::vector<std::string>& ignore = {}) {
  return compare_responses(200, a, 200, b, ignore);
}

TEST(AuditCompare, EqualJsonMatches) {
  const Comparison same = compare(R"({"id":7,"name":"ann","tags":["a","b"],"ok":true,"x":null})",
                                  R"({"id":7,"name":"ann","tags":["a","b"],"ok":true,"x":null})");
  EXPECT_TRUE(same.match);
  EXPECT_TRUE(same.json);
  EXPECT_EQ(same.differences, Pointers{});
  EXPECT_EQ(same.more, 0u);
}

TEST(AuditCompare, StatusesMustBeEqual) {
  const Comparison statuses = compare_responses(200, R"({"a":1})", 500, R"({"a":1})", {});
  EXPECT_FALSE(statuses.match);
  EXPECT_TRUE(statuses.json);
  EXPECT_EQ(statuses.differences, Pointers{}) << "the bodies themselves are equal";
  EXPECT_FALSE(compare_responses(200, "", 204, "", {}).match);
  EXPECT_TRUE(compare_responses(204, "", 204, "", {}).match);
}

TEST(AuditCompare, KeyOrderAndWhitespaceDoNotCount) {
  const Comparison reordered = compare(R"({"a":1,"b":{"c":2,"d":3}})", "{ \"b\" : {\"d\":3, \"c\":2},\n \"a\":1 }");
  EXPECT_TRUE(reordered.match);
  EXPECT_TRUE(reordered.json);
}

TEST(AuditCompare, NestedDifferencesAreReportedAsPointers) {
  const Comparison nested = compare(R"({"user":{"name":"ann","roles":["a","b"]},"n":1,"same":[1]})",
                                    R"({"user":{"name":"bob","roles":["a","c"]},"n":2,"same":[1]})");
  EXPECT_FALSE(nested.match);
  EXPECT_TRUE(nested.json);
  EXPECT_EQ(nested.differences, (Pointers{"/user/name", "/user/roles/1", "/n"}));
}

TEST(AuditCompare, KeysOnOneSideOnlyDiffer) {
  const Comparison keys = compare(R"({"a":1,"gone":2,"c":{"x":1}})", R"({"a":1,"c":{"x":1,"y":2},"new":3})");
  EXPECT_EQ(keys.differences, (Pointers{"/gone", "/c/y", "/new"}));
  EXPECT_EQ(compare(R"({"a":null})", R"({})").differences, Pointers{"/a"}) << "null is not absent";
}

TEST(AuditCompare, PointersEscapeSlashAndTilde) {
  const Comparison escaped = compare(R"({"a/b":1,"m~n":{"~1":true},"":0})", R"({"a/b":2,"m~n":{"~1":false},"":1})");
  EXPECT_EQ(escaped.differences, (Pointers{"/a~1b", "/m~0n/~01", "/"}));
}

TEST(AuditCompare, ArraysCompareByIndexAndExtraElementsDiffer) {
  EXPECT_EQ(compare("[1,2,3]", "[1,2]").differences, Pointers{"/2"});
  EXPECT_EQ(compare("[1]", "[1,2,3]").differences, (Pointers{"/1", "/2"}));
  EXPECT_EQ(compare("[1,2]", "[2,1]").differences, (Pointers{"/0", "/1"})) << "order counts in arrays";
  EXPECT_EQ(compare(R"({"l":[{"a":1},{"a":2}]})", R"({"l":[{"a":1},{"a":3}]})").differences, Pointers{"/l/1/a"});
}

TEST(AuditCompare, KindsThatDifferAreOneDifference) {
  EXPECT_EQ(compare(R"({"a":{"b":1}})", R"({"a":[1]})").differences, Pointers{"/a"});
  EXPECT_EQ(compare(R"({"a":"1"})", R"({"a":1})").differences, Pointers{"/a"});
  EXPECT_EQ(compare(R"({"a":true})", R"({"a":1})").differences, Pointers{"/a"});
  EXPECT_EQ(compare(R"({"a":false})", R"({"a":null})").differences, Pointers{"/a"});
  EXPECT_EQ(compare("1", "2").differences, Pointers{""}) << "a scalar document differs as a whole";
  EXPECT_TRUE(compare(R"("x")", R"("x")").match);
}

TEST(AuditCompare, NumbersCompareByValue) {
  EXPECT_TRUE(compare("[1]", "[1.0]").match);
  EXPECT_TRUE(compare("[100]", "[1e2]").match);
  EXPECT_TRUE(compare("[0]", "[-0.0]").match);
  EXPECT_TRUE(compare("[-5]", "[-5.0]").match);
  EXPECT_TRUE(compare("[18446744073709551615]", "[18446744073709551615]").match) << "uint64";
  EXPECT_TRUE(compare("[9223372036854775808]", "[9223372036854775808.0]").match) << "2^63: uint64 vs double";
  EXPECT_FALSE(compare("[1]", "[1.5]").match);
  EXPECT_FALSE(compare("[-1]", "[18446744073709551615]").match);
  EXPECT_FALSE(compare("[9007199254740993]", "[9007199254740992.0]").match)
      << "2^53+1 is not the double 2^53, though a plain conversion would round it so";
  EXPECT_FALSE(compare("[9223372036854775807]", "[9223372036854775808.0]").match);
  EXPECT_FALSE(compare("[1.1]", "[1.2]").match);
}

TEST(AuditCompare, ZeroWithAHugeExponentIsZero) {
  // Boost.JSON 1.81 parses "0e309" as NaN (zero times an infinite power of ten), and NaN equals nothing.
  EXPECT_TRUE(compare(R"({"a":0e400})", R"({"a":0e400})").match);
  EXPECT_TRUE(compare("[0e309]", "[0]").match);
  EXPECT_TRUE(compare("[-0.0e999]", "[0.0]").match);
  EXPECT_TRUE(compare("[0e400]", "[0e-400]").match);
  EXPECT_FALSE(compare("[0e400]", "[1]").match);
  EXPECT_TRUE(compare("[1e400]", "[2e400]").match) << "both overflow to infinity";
}

TEST(AuditCompare, IgnoredTopLevelFieldsAreLeftOut) {
  const std::vector<std::string> ignore = {"/request_id", "/meta/server_time"};
  const Comparison ignored = compare(R"({"request_id":"r1","user":7,"meta":{"server_time":1,"v":2}})",
                                     R"({"request_id":"r2","user":7,"meta":{"server_time":9,"v":2}})", ignore);
  EXPECT_TRUE(ignored.match);
  EXPECT_TRUE(ignored.json);
  EXPECT_TRUE(compare(R"({"request_id":"r1","a":1})", R"({"a":1})", ignore).match) << "present on one side only";
  EXPECT_EQ(compare(R"({"request_id":"r1","a":1})", R"({"a":2})", ignore).differences, Pointers{"/a"});
}

TEST(AuditCompare, IgnoredNestedFieldsNeedTheirWholePath) {
  const std::vector<std::string> ignore = {"/meta/server_time"};
  EXPECT_TRUE(compare(R"({"meta":{"server_time":1}})", R"({"meta":{"server_time":2}})", ignore).match);
  EXPECT_EQ(compare(R"({"server_time":1})", R"({"server_time":2})", ignore).differences, Pointers{"/server_time"});
  EXPECT_EQ(compare(R"({"meta":1})", R"({"meta":2})", ignore).differences, Pointers{"/meta"})
      << "a pointer through a scalar names nothing";
  EXPECT_TRUE(compare(R"({"meta":{"server_time":1}})", R"({"meta":{}})", ignore).match);
  EXPECT_TRUE(compare(R"({"a/b":{"~":1}})", R"({"a/b":{"~":2}})", {"/a~1b/~0"}).match) << "escaped pointers";
}

TEST(AuditCompare, IgnoredArrayElementsKeepTheOthersInPlace) {
  // "/items/1" ignores that element on both sides (it is compared as null), and elements after it keep their index.
  const std::vector<std::string> ignore = {"/items/1"};
  EXPECT_TRUE(compare(R"({"items":[1,"x",3]})", R"({"items":[1,"y",3]})", ignore).match);
  EXPECT_EQ(compare(R"({"items":[1,"x",3]})", R"({"items":[1,"y",4]})", ignore).differences, Pointers{"/items/2"});
  EXPECT_EQ(compare(R"({"items":[1,"x"]})", R"({"items":[1]})", ignore).differences, Pointers{"/items/1"})
      << "an element on one side only still makes the arrays differ in length";
  EXPECT_TRUE(compare(R"({"items":[{"t":1,"v":1}]})", R"({"items":[{"t":2,"v":1}]})", {"/items/0/t"}).match);
  EXPECT_TRUE(compare("[1,2]", "[1,3]", {"/1"}).match);
  // Not indexes: "-", a leading zero, a name, out of range.
  for (const std::string pointer : {"/items/-", "/items/01", "/items/x", "/items/9", "/items/99999999999999999999"}) {
    EXPECT_EQ(compare(R"({"items":[1,2]})", R"({"items":[1,3]})", {pointer}).differences, Pointers{"/items/1"})
        << pointer;
  }
}

TEST(AuditCompare, IgnoringTheWholeDocumentOrNothing) {
  EXPECT_TRUE(compare(R"({"a":1})", R"([2])", {""}).match) << "\"\" is the whole body";
  EXPECT_EQ(compare(R"({"a":1})", R"({"a":2})", {"/b", "/a/b", "not a pointer", "/a~2"}).differences,
            Pointers{"/a"});
}

TEST(AuditCompare, NonJsonBodiesCompareAsBytes) {
  const Comparison same = compare("<html>ok</html>", "<html>ok</html>");
  EXPECT_TRUE(same.match);
  EXPECT_FALSE(same.json);
  const Comparison differ = compare("<html>ok</html>", "<html>OK</html>");
  EXPECT_FALSE(differ.match);
  EXPECT_FALSE(differ.json);
  EXPECT_EQ(differ.differences, Pointers{""});
  EXPECT_TRUE(compare("", "").match);
  EXPECT_FALSE(compare("", "").json) << "an empty body is not JSON";
  EXPECT_EQ(compare("", "{}").differences, Pointers{""});
  EXPECT_FALSE(compare("{\"a\":1", "{\"a\":1").json) << "truncated JSON is bytes, equal bytes match";
  EXPECT_TRUE(compare("{\"a\":1", "{\"a\":1").match);
}

TEST(AuditCompare, OneSideJsonTheOtherNotComparesBytes) {
  for (const auto& [a, b] : std::vector<std::pair<std::string, std::string>>{{R"({"a":1})", "Internal error"},
                                                                             {"Internal error", R"({"a":1})"}}) {
    const Comparison mixed = compare(a, b, {"/a"});
    EXPECT_FALSE(mixed.match);
    EXPECT_FALSE(mixed.json);
    EXPECT_EQ(mixed.differences, Pointers{""});
  }
  EXPECT_TRUE(compare(R"({"a":1})", R"({"a": 1})").match) << "both JSON: values, not bytes";
}

TEST(AuditCompare, DeeplyNestedBodiesCompareAsBytes) {
  const std::string deep = std::string(100, '[') + std::string(100, ']');
  const Comparison too_deep = compare(deep, deep);
  EXPECT_FALSE(too_deep.json);
  EXPECT_TRUE(too_deep.match);
  const std::string fine = std::string(60, '[') + std::string(60, ']');
  EXPECT_TRUE(compare(fine, fine).json);
}

TEST(AuditCompare, ReportsAtMost64DifferencesAndCountsTheRest) {
  std::string a = "{";
  std::string b = "{";
  for (int i = 0; i < 100; ++i) {
    const std::string key = "\"k" + std::to_string(i) + "\":";
    a += (i ? "," : "") + key + "0";
    b += (i ? "," : "") + key + "1";
  }
  a += "}";
  b += "}";
  const Comparison many = compare(a, b);
  EXPECT_FALSE(many.match);
  ASSERT_EQ(many.differences.size(), kMaxReportedDifferences);
  EXPECT_EQ(many.differences.front(), "/k0");
  EXPECT_EQ(many.differences.back(), "/k63");
  EXPECT_EQ(many.more, 36u);
}

TEST(AuditCompare, ExactlyTheLimitLeavesNothingMore) {
  std::string a = "[";
  std::string b = "[";
  for (std::size_t i = 0; i < kMaxReportedDifferences; ++i) {
    a += i ? ",0" : "0";
    b += i ? ",1" : "1";
  }
  const Comparison exactly = compare(a + "]", b + "]");
  EXPECT_EQ(exactly.differences.size(), kMaxReportedDifferences);
  EXPECT_EQ(exactly.more, 0u);
  EXPECT_FALSE(exactly.match);
}

TEST(AuditCompare, BodyHashIsLowerCaseHexSha256) {
  EXPECT_EQ(body_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(body_hash(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

}  // namespace
}  // namespace apigw::migration
