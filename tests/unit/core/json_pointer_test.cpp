// Tests for JSON pointers (RFC 6901): parsing with its two escapes, refusals, and escaping back.
#include "apigw/core/json_pointer.h"

#include <gtest/gtest.h>

namespace apigw::core {
namespace {

using Tokens = std::vector<std::string>;

TEST(JsonPointer, ParsesTokens) {
  EXPECT_EQ(parse_json_pointer(""), Tokens{});
  EXPECT_EQ(parse_json_pointer("/"), Tokens{""});
  EXPECT_EQ(parse_json_pointer("/a"), Tokens{"a"});
  EXPECT_EQ(parse_json_pointer("/meta/server_time"), (Tokens{"meta", "server_time"}));
  EXPECT_EQ(parse_json_pointer("/a//b/"), (Tokens{"a", "", "b", ""}));
  EXPECT_EQ(parse_json_pointer("/items/0"), (Tokens{"items", "0"}));
  EXPECT_EQ(parse_json_pointer("/ a b "), Tokens{" a b "});
}

TEST(JsonPointer, UndoesEscapesOnceLeftToRight) {
  EXPECT_EQ(parse_json_pointer("/a~1b"), Tokens{"a/b"});
  EXPECT_EQ(parse_json_pointer("/m~0n"), Tokens{"m~n"});
  EXPECT_EQ(parse_json_pointer("/~01"), Tokens{"~1"}) << "not '/'";
  EXPECT_EQ(parse_json_pointer("/~10"), Tokens{"/0"});
  EXPECT_EQ(parse_json_pointer("/~0~1/~1~0"), (Tokens{"~/", "/~"}));
}

TEST(JsonPointer, RefusesWhatIsNotAPointer) {
  EXPECT_EQ(parse_json_pointer("a"), std::nullopt);
  EXPECT_EQ(parse_json_pointer("a/b"), std::nullopt);
  EXPECT_EQ(parse_json_pointer("#/a"), std::nullopt) << "the URI fragment form is not accepted";
  EXPECT_EQ(parse_json_pointer("/a~"), std::nullopt);
  EXPECT_EQ(parse_json_pointer("/a~2"), std::nullopt);
  EXPECT_EQ(parse_json_pointer("/~a"), std::nullopt);
  EXPECT_EQ(parse_json_pointer("/a/~/b"), std::nullopt);
}

TEST(JsonPointer, EscapesTokens) {
  EXPECT_EQ(json_pointer({}), "");
  EXPECT_EQ(json_pointer({""}), "/");
  EXPECT_EQ(json_pointer({"a", "b/c"}), "/a/b~1c");
  EXPECT_EQ(json_pointer({"m~n", "0"}), "/m~0n/0");
  EXPECT_EQ(json_pointer({"~1"}), "/~01");
}

TEST(JsonPointer, RoundTrips) {
  for (const Tokens& tokens : {Tokens{}, Tokens{""}, Tokens{"a/b", "~", "~1/~0"}, Tokens{"x", "", "y"}}) {
    EXPECT_EQ(parse_json_pointer(json_pointer(tokens)), tokens);
  }
}

}  // namespace
}  // namespace apigw::core
