// Cache tags: names a stored response is filed under, so that one invalidation reaches every response that shows
// an entity, whatever its URL ("product:7" for every page that shows product 7). A route's tags come from its
// `cache.tags` templates, expanded with the request's path parameters, and from the upstream's tag header
// (Surrogate-Key, space-separated). Each tag has a version in Memcached (see ResponseCache); a record carries the
// versions its tags had when it was stored. Pure.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "apigw/routing/route_trie.h"

namespace apigw::cache {

// The tag a template gives for a request: each `{name}` replaced by the path parameter's value (as received,
// still percent-encoded). nullopt when a parameter is missing or the tag would exceed kMaxTagBytes.
std::optional<std::string> expand_tag(std::string_view tag_template, std::span<const routing::PathParam> params);

// Adds the tags a tag header value lists (separated by spaces or tabs) to `tags`, each once. Returns false when
// one is longer than kMaxTagBytes or holds a control character (the response is then not stored).
bool add_header_tags(std::string_view value, std::vector<std::string>& tags);

// The Memcached key of a tag's version: `<prefix>t:<tag>`, or `<prefix>th:<sha256 hex>` for a tag longer than
// 128 bytes or one holding bytes a key may not (see valid_key), so that any tag has a key.
std::string tag_key(std::string_view prefix, std::string_view tag);

// What one invalidation names: tags (every response filed under them) and exact keys (as the cache API takes
// them). From `POST /_cache/invalidate` or an event of the invalidation stream.
struct Invalidation {
  std::vector<std::string> tags;
  std::vector<std::string> keys;
};
inline constexpr std::size_t kMaxInvalidationItems = 1000;  // tags plus keys in one invalidation

// The invalidation an event's fields give: `tags` (separated by spaces) and `keys` (separated by spaces); other
// fields are ignored. nullopt with `why` when it names nothing, or a tag or key that cannot be (see
// add_header_tags, valid_key), or more than kMaxInvalidationItems.
std::optional<Invalidation> invalidation_from_fields(
    std::span<const std::pair<std::string, std::string>> fields, std::string& why);

// Checks a tag as the API takes it: 1 to kMaxTagBytes bytes, no whitespace or control characters.
bool valid_tag(std::string_view tag);

}  // namespace apigw::cache
