// Response-cache keys (see cache_key.h). The digest's input is a sequence of length-prefixed fields, so no two
// different requests can produce the same input by moving bytes from one field to the next.
#include "apigw/cache/cache_key.h"

#include <algorithm>
#include <vector>

#include "apigw/core/digest.h"
#include "apigw/http/query.h"
#include "apigw/http/text.h"

namespace apigw::cache {
namespace {

// "<decimal length>:<bytes>", the netstring shape without its trailing comma.
void append_field(std::string& out, std::string_view value) {
  out += std::to_string(value.size());
  out += ':';
  out += value;
}

// Absent and empty are different: "-" alone for absent, "+" and the value for present.
void append_optional(std::string& out, std::optional<std::string_view> value) {
  if (!value) {
    out += '-';
    return;
  }
  out += '+';
  append_field(out, *value);
}

std::optional<std::string> header_value(const boost::beast::http::fields* headers, std::string_view name) {
  if (headers == nullptr) return std::nullopt;
  const auto [begin, end] = headers->equal_range(name);
  if (begin == end) return std::nullopt;
  std::string joined;
  for (auto it = begin; it != end; ++it) {
    if (it != begin) joined += ", ";
    joined += http::trim_ows(it->value());
  }
  return joined;
}

// `<prefix><version>:<route>:<sha256 hex of material>`.
std::optional<std::string> finish_key(std::string_view prefix, std::string_view version, std::string_view route,
                                      std::string_view material) {
  const std::string digest = core::sha256_hex(material);
  if (digest.size() != kKeyDigestChars) return std::nullopt;
  std::string key;
  key.reserve(prefix.size() + version.size() + route.size() + digest.size() + 2);
  key.append(prefix).append(version).append(":").append(route).append(":").append(digest);
  if (!valid_key(key)) return std::nullopt;
  return key;
}

}  // namespace

std::string cache_key_host(std::string_view host) {
  std::string_view name = host;
  std::string_view port;
  const std::size_t colon = host.rfind(':');
  const std::size_t bracket = host.rfind(']');
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    name = host.substr(0, colon);
    port = host.substr(colon + 1);
  }
  if (name.size() > 1 && name.back() == '.') name.remove_suffix(1);
  std::string out = http::lower_case(name);
  if (!port.empty() && port != "80" && port != "443") {
    out += ':';
    out += port;
  }
  return out;
}

std::string canonical_query(std::string_view query) {
  std::vector<std::string_view> parameters;
  http::for_each_query_parameter(query, [&](std::string_view parameter) {
    if (!parameter.empty()) parameters.push_back(parameter);
  });
  const auto name = [](std::string_view parameter) { return http::split_query_parameter(parameter).name; };
  std::stable_sort(parameters.begin(), parameters.end(),
                   [&](std::string_view a, std::string_view b) { return name(a) < name(b); });
  std::string out;
  for (const std::string_view parameter : parameters) {
    if (!out.empty()) out += '&';
    out += parameter;
  }
  return out;
}

std::optional<std::string> build_cache_key(std::string_view prefix, std::string_view route,
                                           const config::RouteCacheConfig& rule, const KeyRequest& request) {
  std::string material;
  material.reserve(256 + request.path.size() + request.query.size());
  append_field(material, kKeyVersion);
  append_field(material, route);
  append_field(material, request.method);
  append_field(material, cache_key_host(request.host));
  append_field(material, request.path);
  append_field(material, canonical_query(request.query));
  for (const std::string& name : rule.vary) {
    append_field(material, http::lower_case(name));
    append_optional(material, header_value(request.headers, name));
  }
  if (rule.scope == config::CacheScope::kUser) append_optional(material, request.user_id);

  return finish_key(prefix, kKeyVersion, route, material);
}

std::optional<std::string> build_resource_key(std::string_view prefix, std::string_view route,
                                              const config::RouteCacheConfig& rule, const KeyRequest& request) {
  std::string material;
  material.reserve(256 + request.path.size() + request.query.size());
  append_field(material, kResourceKeyVersion);
  append_field(material, route);
  append_field(material, cache_key_host(request.host));
  append_field(material, request.path);
  append_field(material, canonical_query(request.query));
  if (rule.scope == config::CacheScope::kUser) append_optional(material, request.user_id);
  return finish_key(prefix, kResourceKeyVersion, route, material);
}

bool valid_key(std::string_view key) {
  if (key.empty() || key.size() > kMaxKeyBytes) return false;
  return std::none_of(key.begin(), key.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte <= 0x20 || byte == 0x7f;
  });
}

}  // namespace apigw::cache
