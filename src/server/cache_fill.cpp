// The cache stage's fill (see cache_fill.h).
#include "cache_fill.h"

#include <algorithm>
#include <array>
#include <iterator>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <boost/beast/core/string.hpp>
#include <fmt/format.h>

#include "apigw/cache/cache_policy.h"
#include "apigw/cache/cache_tags.h"
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
  for (const auto& field : fields) {
    if (!boost::beast::iequals(field.name_text, rule_.tag_header)) continue;
    if (!cache::add_header_tags(field.value, header_tags_)) return;  // a tag that cannot be filed
  }
  if (header_tags_.size() + rule_.tags.size() > cache::kMaxRecordTags) return;
  collecting_ = true;
  status_ = status;
  storable_ = *storable;
  headers_.reserve(fields.size() + 1);
  for (const auto& field : fields) {
    if (boost::beast::iequals(field.name_text, rule_.tag_header)) continue;
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

std::optional<std::string> CacheFill::record(std::span<const cache::TagVersion> tags) const {
  if (!complete_) return std::nullopt;
  std::vector<cache::HeaderView> views;
  views.reserve(headers_.size());
  for (const auto& header : headers_) views.push_back({header.name, header.value});
  cache::ResponseToStore response{status_, views, body_, response_time_, storable_.lifetime};
  response.initial_age = storable_.initial_age;
  response.resource_version = options_.version;
  response.stale = storable_.stale;
  response.tags = tags;
  return cache::encode_record(response, max_bytes_);
}

namespace {

// Reads (or creates) the versions of the upstream's tags, then stores the record with all of them.
boost::asio::awaitable<void> store_with_header_tags(std::shared_ptr<cache::ResponseCache> cache, std::string key,
                                                    std::string resource, std::shared_ptr<const CacheFill> fill,
                                                    std::vector<cache::TagVersion> tags, std::size_t first_header_tag,
                                                    std::chrono::seconds ttl) {
  std::vector<std::string> keys;
  for (std::size_t i = first_header_tag; i < tags.size(); ++i) {
    keys.push_back(cache::tag_key(cache->config().key_prefix, tags[i].tag));
  }
  const std::vector<std::optional<std::uint64_t>> versions = co_await cache->tag_versions(keys, resource);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    std::optional<std::uint64_t> version = versions[i];
    if (!version) version = co_await cache->create_version_at(keys[i], resource);
    if (!version) {
      cache->stats().stores_failed.add();  // a tag without a version cannot be checked: nothing is stored
      co_return;
    }
    tags[first_header_tag + i].version = *version;
  }
  std::optional<std::string> record = fill->record(tags);
  if (record) cache->store(std::move(key), std::move(*record), ttl, std::move(resource));
}

}  // namespace

std::shared_ptr<const cache::CachedResponse> store_fill(cache::ResponseCache& cache, const std::string& key,
                                                        const std::string& resource, const CacheFill& fill,
                                                        std::vector<cache::TagVersion> tags) {
  const std::size_t first_header_tag = tags.size();
  for (const std::string& tag : fill.header_tags()) {
    const auto same = [&](const cache::TagVersion& known) { return known.tag == tag; };
    if (std::none_of(tags.begin(), tags.end(), same)) tags.push_back({tag, 0});
  }
  // The versions of the upstream's tags are not known yet: what the waiting requests get carries none.
  std::optional<std::string> record = fill.record(tags);
  if (!record) return nullptr;
  std::optional<cache::CachedResponse> decoded = cache::decode_record(*record);
  if (!decoded) return nullptr;
  std::vector<std::string> header_tags;
  for (std::size_t i = first_header_tag; i < tags.size(); ++i) header_tags.push_back(tags[i].tag);
  cache.learn_header_tags(key, std::move(header_tags));
  if (first_header_tag == tags.size()) {
    cache.store(key, std::move(*record), fill.ttl(), resource);
  } else {
    boost::asio::co_spawn(cache.executor(),
                          store_with_header_tags(cache.shared_from_this(), key, resource,
                                                 std::make_shared<const CacheFill>(fill), std::move(tags),
                                                 first_header_tag, fill.ttl()),
                          boost::asio::detached);
  }
  return std::make_shared<const cache::CachedResponse>(std::move(*decoded));
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
