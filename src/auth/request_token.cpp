// Token sources in a request (see request_token.h).
#include "apigw/auth/request_token.h"

#include <boost/beast/core/string.hpp>

#include "apigw/http/cookie.h"
#include "apigw/http/query.h"

namespace apigw::auth {
namespace {

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
          if (const auto value = http::cookie_value(field->value(), source.name)) {
            return found(std::string(*value), source.kind);
          }
        }
        break;
      case TokenSource::Kind::kQuery: {
        if (!has_query || !http::find_query_parameter(query, source.name)) break;
        if (auto value = http::query_value(query, source.name)) return found(std::move(*value), source.kind);
        RequestToken malformed = found(std::string(), source.kind);
        malformed.shape = TokenShape::kBadCharacter;  // undecodable
        return malformed;
      }
    }
  }
  return {};
}

}  // namespace apigw::auth
