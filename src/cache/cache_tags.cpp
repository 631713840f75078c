// Cache tags (see cache_tags.h).
#include "apigw/cache/cache_tags.h"

#include <algorithm>

#include "apigw/cache/cache_key.h"
#include "apigw/cache/cached_response.h"
#include "apigw/core/digest.h"

namespace apigw::cache {
namespace {
constexpr std::size_t kMaxPlainTagKeyBytes = 128;

// Calls `word` for each run of `value` between spaces and tabs, until it returns false; false then.
template <class Word>
bool for_each_word(std::string_view value, Word word) {
  std::size_t at = 0;
  while (at < value.size()) {
    const std::size_t start = value.find_first_not_of(" \t", at);
    if (start == std::string_view::npos) break;
    std::size_t end = value.find_first_of(" \t", start);
    if (end == std::string_view::npos) end = value.size();
    if (!word(value.substr(start, end - start))) return false;
    at = end;
  }
  return true;
}
}  // namespace

std::optional<std::string> expand_tag(std::string_view tag_template, std::span<const routing::PathParam> params) {
  std::string tag;
  tag.reserve(tag_template.size() + 16);
  std::size_t at = 0;
  while (at < tag_template.size()) {
    const std::size_t open = tag_template.find('{', at);
    if (open == std::string_view::npos) {
      tag.append(tag_template.substr(at));
      break;
    }
    const std::size_t close = tag_template.find('}', open);
    if (close == std::string_view::npos) return std::nullopt;
    tag.append(tag_template.substr(at, open - at));
    const std::string_view name = tag_template.substr(open + 1, close - open - 1);
    const auto param = std::find_if(params.begin(), params.end(),
                                    [&](const routing::PathParam& p) { return p.name == name; });
    if (param == params.end()) return std::nullopt;
    tag.append(param->value);
    at = close + 1;
  }
  if (tag.empty() || tag.size() > kMaxTagBytes) return std::nullopt;
  return tag;
}

bool add_header_tags(std::string_view value, std::vector<std::string>& tags) {
  return for_each_word(value, [&](std::string_view tag) {
    if (!valid_tag(tag)) return false;
    if (std::find(tags.begin(), tags.end(), tag) == tags.end()) tags.emplace_back(tag);
    return true;
  });
}

std::string tag_key(std::string_view prefix, std::string_view tag) {
  std::string key(prefix);
  if (tag.size() <= kMaxPlainTagKeyBytes && valid_key(tag)) {
    key += "t:";
    key += tag;
  } else {
    key += "th:";
    key += core::sha256_hex(tag);
  }
  return key;
}

bool valid_tag(std::string_view tag) {
  return !tag.empty() && tag.size() <= kMaxTagBytes && std::none_of(tag.begin(), tag.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte <= ' ' || byte == 0x7f;
  });
}

std::optional<Invalidation> invalidation_from_fields(std::span<const std::pair<std::string, std::string>> fields,
                                                     std::string& why) {
  Invalidation invalidation;
  for (const auto& [name, value] : fields) {
    if (name != "tags" && name != "keys") continue;
    std::vector<std::string>& into = name == "tags" ? invalidation.tags : invalidation.keys;
    const bool all_valid = for_each_word(value, [&](std::string_view item) {
      if (!(name == "tags" ? valid_tag(item) : valid_key(item))) {
        why = "bad " + std::string(name == "tags" ? "tag" : "key") + " '" + std::string(item.substr(0, 64)) + "'";
        return false;
      }
      if (std::find(into.begin(), into.end(), item) == into.end()) into.emplace_back(item);
      return true;
    });
    if (!all_valid) return std::nullopt;
  }
  if (invalidation.tags.empty() && invalidation.keys.empty()) {
    why = "no tags or keys (an event has a \"tags\" or \"keys\" field, space-separated)";
    return std::nullopt;
  }
  if (invalidation.tags.size() + invalidation.keys.size() > kMaxInvalidationItems) {
    why = "more than " + std::to_string(kMaxInvalidationItems) + " tags and keys";
    return std::nullopt;
  }
  return invalidation;
}

}  // namespace apigw::cache
