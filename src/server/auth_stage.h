// The auth stage: on a route with `auth: required` or `optional`, the request's token (header, cookie or query, as
// auth.token_from says) is checked for shape, then looked up (the token cache, else Redis); the user it names
// goes upstream in auth.forward_header. A missing, malformed or unknown token on a required route is refused
// with 401; a token store that fails is 503, or anonymous with auth.on_error: anonymous.
#pragma once

#include "apigw/auth/auth_stats.h"
#include "stage.h"

namespace apigw::server {

class AuthStage final : public Stage {
 public:
  explicit AuthStage(auth::AuthStats& stats) : stats_(stats) {}

  bool applies(const RequestContext& context) const override {
    return context.generation->authenticator && context.route->auth != config::RouteAuth::kNone;
  }
  boost::asio::awaitable<StageResult> on_request(RequestContext& context) override;

 private:
  // A token was found and looked up: the user, or the refusal (kInvalid, kError).
  StageResult decide(RequestContext& context, const auth::Lookup& lookup);
  StageResult refuse_missing(RequestContext& context);

  auth::AuthStats& stats_;
};

}  // namespace apigw::server
