// Token sources in a request (see request_token.h).
#include "apigw/auth/request_token.h"

#include <boost/beast/core/string.hpp>

namespace apigw::auth {
namespace {

// Whether `query` has a parameter called `name`, with or without a value.
bool has_parameter(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const std::size_t end = query.find('&');
    const std::string_view pair = query.substr(0, end);
    query = end == std::string_view::npos ? std::string_view() : query.substr(end + 1);
    if (pair.substr(0, pair.find('=')) == name) return true;
  }
  return false;
}

RequestToken found(std::string token, TokenSource::Kind kind) {
  RequestToken result;
  result.found = true;
  result.shape = check_token(token);
  result.token = std::move(token);
  result.kind = kind;
  return result;
}

}  // namespace

RequestToken find_request_token(const boost::beast::http::fields& headers, std::string_view query, bool has_query,
                                std::span<const TokenSource> sources) {
  for (const TokenSource& source : sources) {
    switch (source.kind) {
      case TokenSource::Kind::kHeader: {
        const auto field = headers.find(source.name);
        if (field == headers.end()) break;
        const std::string_view value = field->value();
        if (const auto bearer = bearer_token(value)) return found(std::string(*bearer), source.kind);
        if (boost::beast::iequals(source.name, "authorization")) break;  // another scheme: not ours
        return found(std::string(value), source.kind);
      }
      case TokenSource::Kind::kCookie:
        for (auto [field, end] = headers.equal_range(boost::beast::http::field::cookie); field != end; ++field) {
          if (const auto value = cookie_value(field->value(), source.name)) {
            return found(std::string(*value), source.kind);
          }
        }
        break;
      case TokenSource::Kind::kQuery: {
        if (!has_query || !has_parameter(query, source.name)) break;
        if (auto value = query_value(query, source.name)) return found(std::move(*value), source.kind);
        RequestToken malformed = found(std::string(), source.kind);
        malformed.shape = TokenShape::kBadCharacter;  // undecodable
        return malformed;
      }
    }
  }
  return {};
}

std::string redact_query_parameter(std::string_view target, std::string_view name) {
  const std::size_t question = target.find('?');
  if (question == std::string_view::npos) return std::string(target);
  std::string out(target.substr(0, question + 1));
  std::string_view query = target.substr(question + 1);
  bool first = true;
  while (!query.empty() || first) {
    const std::size_t end = query.find('&');
    const std::string_view pair = query.substr(0, end);
    query = end == std::string_view::npos ? std::string_view() : query.substr(end + 1);
    if (!first) out.push_back('&');
    first = false;
    const std::size_t equals = pair.find('=');
    if (pair.substr(0, equals) == name && equals != std::string_view::npos) {
      out.append(pair.substr(0, equals + 1)).append("REDACTED");
    } else {
      out.append(pair);
    }
    if (end == std::string_view::npos) break;
  }
  return out;
}

}  // namespace apigw::auth
