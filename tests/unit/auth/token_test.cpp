// Token shapes, bearer tokens in header values, key expansion and fingerprints.
#include <gtest/gtest.h>

#include <vector>

#include "apigw/auth/token.h"
#include "apigw/redis/key_slot.h"

namespace apigw::auth {
namespace {

TEST(TokenShape, RefusesWhatCouldNotBeAToken) {
  EXPECT_EQ(check_token("abc.DEF-123_~+/="), TokenShape::kValid);
  EXPECT_EQ(check_token(std::string(kMaxTokenBytes, 'a')), TokenShape::kValid);
  EXPECT_EQ(check_token(""), TokenShape::kEmpty);
  EXPECT_EQ(check_token(std::string(kMaxTokenBytes + 1, 'a')), TokenShape::kTooLong);
  for (const std::string& bad : std::vector<std::string>{"a b", "a\tb", std::string("a\0b", 3), "a\x7f",
                                                         "caf\xc3\xa9", "{x}", "a}", "{"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(check_token(bad), TokenShape::kBadCharacter);
  }
}

TEST(TokenSource, BearerScheme) {
  EXPECT_EQ(bearer_token("Bearer abc"), "abc");
  EXPECT_EQ(bearer_token("bearer   abc  "), "abc");
  EXPECT_EQ(bearer_token("BEARER abc"), "abc");
  EXPECT_EQ(bearer_token("Bearer"), "");        // present but empty: refused as an empty token
  EXPECT_EQ(bearer_token("Bearer a b"), "a b");  // refused later by its shape
  EXPECT_FALSE(bearer_token("Basic dXNlcjpwYXNz"));
  EXPECT_FALSE(bearer_token("Bearerabc"));
  EXPECT_FALSE(bearer_token(""));
}

TEST(KeyTemplate, ExpandsTheToken) {
  EXPECT_EQ(expand_key("{token}", "abc"), "abc");
  EXPECT_EQ(expand_key("session:{token}", "abc"), "session:abc");
  EXPECT_EQ(expand_key("s:{token}:v1", "abc"), "s:abc:v1");
}

TEST(KeyTemplate, AValidTokenCannotChooseTheSlot) {
  // Braces are refused, so a token never brings a hash tag of its own into the key.
  EXPECT_EQ(check_token("{victim}"), TokenShape::kBadCharacter);
  const std::string key = expand_key("session:{token}", "abc");
  EXPECT_EQ(redis::hash_tag(key), key);
}

TEST(UserIdField, OnlyHeaderSafeIdsAreForwarded) {
  EXPECT_TRUE(forwardable_user_id("user-42"));
  EXPECT_TRUE(forwardable_user_id(std::string(256, '7')));
  EXPECT_FALSE(forwardable_user_id(""));
  EXPECT_FALSE(forwardable_user_id(std::string(257, '7')));
  EXPECT_FALSE(forwardable_user_id("42\r\nX-Admin: yes"));
  EXPECT_FALSE(forwardable_user_id("a b"));
}

TEST(TokenFingerprint, StableShortAndDistinct) {
  EXPECT_EQ(token_fingerprint("abc").size(), 12u);
  EXPECT_EQ(token_fingerprint("abc"), token_fingerprint("abc"));
  // Tokens one character apart share no long run of fingerprint digits.
  const std::string a = token_fingerprint("token-1");
  const std::string b = token_fingerprint("token-2");
  std::size_t same = 0;
  for (std::size_t i = 0; i < a.size(); ++i) same += a[i] == b[i];
  EXPECT_LT(same, 6u) << a << " " << b;
  EXPECT_EQ(token_fingerprint("secret-token").find("secret"), std::string::npos);
}

}  // namespace
}  // namespace apigw::auth
