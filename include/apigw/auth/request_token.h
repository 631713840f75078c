// Finding a request's token among the configured `auth.token_from` sources (keeping it out of the access log is
// http::redact_query_parameter). Pure (reads the parsed request only).
#pragma once

#include <span>
#include <string>
#include <string_view>

#include <boost/beast/http/fields.hpp>

#include "apigw/auth/token.h"

namespace apigw::auth {

struct RequestToken {
  bool found = false;  // a source was present, even with an empty or malformed value
  std::string token;   // as sent (a query value percent-decoded)
  TokenShape shape = TokenShape::kEmpty;
  TokenSource::Kind kind = TokenSource::Kind::kHeader;
};

// The first source the request carries wins:
// - header:Authorization takes "Bearer <token>" only; another scheme (Basic, ...) counts as absent, so it
//   passes through to the upstream untouched. Other headers take "Bearer <token>" or the whole value.
// - cookie:NAME looks in every Cookie header.
// - query:NAME takes the first parameter of that name; bad percent-encoding makes a malformed token.
RequestToken find_request_token(const boost::beast::http::fields& headers, std::string_view query, bool has_query,
                                std::span<const TokenSource> sources);

}  // namespace apigw::auth
