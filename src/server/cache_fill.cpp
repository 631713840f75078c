// The cache stage's fill (see cache_fill.h).
#include "cache_fill.h"

#include <array>
#include <iterator>

#include <boost/beast/core/string.hpp>
#include <fmt/format.h>

#include "apigw/cache/cache_policy.h"
#include "apigw/http/http_date.h"
#include "apigw/http/local_reply.h"
#include "apigw/http/text.h"

namespace apigw::server {

void CacheFill::on_head(unsigned status, std::span<const http::ResponseParser::Field> fields) {
  std::vector<cache::HeaderView> views;
  views.reserve(fields.size());
  for (const auto& field : fields) views.push_back({field.name_text, field.value});
  response_time_ = cache::unix_now();
  const std::optional<cache::Storable> storable = cache::storable_for(
      status, views, rule_, {options_.request_time, response_time_}, options_.shared_authorization);
  if (!storable) return;
  collecting_ = true;
  status_ = status;
  storable_ = *storable;
  headers_.reserve(fields.size() + 1);
  for (const auto& field : fields) {
    // A Date that cannot be read is replaced by the time the response arrived (RFC 9110 §6.6.1).
    if (!storable_.has_date && boost::beast::iequals(field.name_text, "Date")) continue;
    headers_.push_back({std::string(field.name_text), std::string(field.value)});
  }
  if (!storable_.has_date) headers_.push_back({"Date", http::format_http_date(storable_.date)});
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

std::optional<std::string> CacheFill::record() const {
  if (!complete_) return std::nullopt;
  std::vector<cache::HeaderView> views;
  views.reserve(headers_.size());
  for (const auto& header : headers_) views.push_back({header.name, header.value});
  cache::ResponseToStore response{status_, views, body_, response_time_, storable_.lifetime};
  response.initial_age = storable_.initial_age;
  response.resource_version = options_.version;
  return cache::encode_record(response, max_bytes_);
}

void WriteObserver::on_head(unsigned response_status, std::span<const http::ResponseParser::Field> fields) {
  status = response_status;
  for (const auto& field : fields) {
    if (!location && field.name == boost::beast::http::field::location) location = std::string(field.value);
    if (!content_location && field.name == boost::beast::http::field::content_location) {
      content_location = std::string(field.value);
    }
  }
  if (decided_) decided_(*this);
}

}  // namespace apigw::server
