// Cache tags: templates expanded with path parameters, the upstream's tag header, and the keys of tag versions.
#include "apigw/cache/cache_tags.h"

#include <gtest/gtest.h>

#include <array>

#include "apigw/cache/cached_response.h"

namespace apigw::cache {
namespace {

TEST(CacheTags, TemplatesTakeThePathParameters) {
  const std::array<routing::PathParam, 2> params{routing::PathParam{"id", "7"},
                                                 routing::PathParam{"rest", "a/b%20c"}};
  EXPECT_EQ(expand_tag("product:{id}", params), "product:7");
  EXPECT_EQ(expand_tag("{id}", params), "7");
  EXPECT_EQ(expand_tag("page:{id}:{rest}:end", params), "page:7:a/b%20c:end");
  EXPECT_EQ(expand_tag("catalog", params), "catalog");
  EXPECT_EQ(expand_tag("user:{user}", params), std::nullopt) << "not a parameter";
  EXPECT_EQ(expand_tag("p:{id", params), std::nullopt);
  const std::string long_value(kMaxTagBytes, 'x');
  const std::array<routing::PathParam, 1> long_param{routing::PathParam{"id", long_value}};
  EXPECT_EQ(expand_tag("{id}", long_param), long_value);
  EXPECT_EQ(expand_tag("p{id}", long_param), std::nullopt) << "longer than a record holds";
}

TEST(CacheTags, TheHeaderListsTagsOnce) {
  std::vector<std::string> tags{"product:7"};
  EXPECT_TRUE(add_header_tags("  user:42\tproduct:7 product:8  ", tags));
  EXPECT_EQ(tags, (std::vector<std::string>{"product:7", "user:42", "product:8"}));
  EXPECT_TRUE(add_header_tags("", tags));
  EXPECT_EQ(tags.size(), 3u);
  std::vector<std::string> refused;
  EXPECT_FALSE(add_header_tags("a " + std::string(kMaxTagBytes + 1, 'x'), refused));
  EXPECT_FALSE(add_header_tags(std::string("a\x01" "b", 3), refused));
}

TEST(CacheTags, EveryTagHasAKey) {
  EXPECT_EQ(tag_key("apigw:", "product:7"), "apigw:t:product:7");
  const std::string long_tag(129, 'x');
  const std::string hashed = tag_key("apigw:", long_tag);
  EXPECT_TRUE(hashed.starts_with("apigw:th:")) << hashed;
  EXPECT_EQ(hashed.size(), 9u + 64u);
  EXPECT_EQ(tag_key("apigw:", std::string(128, 'x')), "apigw:t:" + std::string(128, 'x'));
  EXPECT_NE(tag_key("apigw:", "caf\xc3\xa9"), tag_key("apigw:", "cafe"));
  EXPECT_TRUE(tag_key("p:", "a\x7f").starts_with("p:th:")) << "a byte no key may hold";
  EXPECT_NE(tag_key("p:", long_tag), tag_key("p:", long_tag + "y"));
}

}  // namespace
}  // namespace apigw::cache
