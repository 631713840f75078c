// The cache stage's fill (see cache_fill.h).
#include "cache_fill.h"

#include <array>
#include <iterator>

#include <boost/beast/core/string.hpp>
#include <fmt/format.h>

#include "apigw/cache/cache_policy.h"
#include "apigw/http/local_reply.h"
#include "apigw/http/text.h"

namespace apigw::server {

void CacheFill::on_head(unsigned status, std::span<const http::ResponseParser::Field> fields) {
  std::vector<cache::HeaderView> views;
  views.reserve(fields.size());
  for (const auto& field : fields) views.push_back({field.name_text, field.value});
  const std::optional<std::chrono::seconds> ttl = cache::storable_for(status, views, rule_);
  if (!ttl) return;
  collecting_ = true;
  status_ = status;
  ttl_ = *ttl;
  headers_.reserve(fields.size());
  for (const auto& field : fields) headers_.push_back({std::string(field.name_text), std::string(field.value)});
}

void CacheFill::on_body(std::string_view bytes) {
  if (!collecting_) return;
  if (body_.size() + bytes.size() > max_bytes_) {
    collecting_ = false;  // too large to store: let go of what was kept
    std::string().swap(body_);
    return;
  }
  body_.append(bytes);
}

std::optional<std::string> CacheFill::record(std::int64_t now) const {
  if (!complete_) return std::nullopt;
  std::vector<cache::HeaderView> views;
  views.reserve(headers_.size());
  for (const auto& header : headers_) views.push_back({header.name, header.value});
  return cache::encode_record({status_, views, body_, now, ttl_}, max_bytes_);
}

}  // namespace apigw::server
