// The auth stage (see auth_stage.h).
#include "auth_stage.h"

#include <fmt/format.h>

#include "apigw/auth/request_token.h"

namespace apigw::server {
namespace asio = boost::asio;
using Decision = auth::AuthStats::Decision;

namespace {
// The 401 every refusal starts from.
void unauthorized(http::LocalReply& reply) {
  reply.status = 401;
  reply.no_store = true;
  reply.www_authenticate = R"(Bearer realm="apigw", error="invalid_token")";
}
}  // namespace

asio::awaitable<StageResult> AuthStage::on_request(RequestContext& context) {
  const config::AuthConfig& auth = context.snapshot->config.auth;
  auth::RequestToken token = auth::find_request_token(context.request(), context.checked.target.query,
                                                      context.checked.target.has_query, auth.token_from);
  if (token.found && token.shape != auth::TokenShape::kValid) {
    // Refused before Redis is asked: such a token can name no session.
    stats_.record(Decision::kMalformed);
    unauthorized(context.reply);
    context.reply_message = fmt::format("malformed token: {}", auth::token_shape_text(token.shape));
    context.reply.message = context.reply_message;
    co_return StageResult::kReply;
  }
  if (!token.found) {
    if (context.route->auth == config::RouteAuth::kRequired) co_return refuse_missing(context);
    stats_.record(Decision::kAnonymous);
    co_return StageResult::kContinue;
  }
  context.token_id = auth::token_fingerprint(token.token);
  // The generation (and with it the authenticator) outlives the lookup, whatever reloads happen meanwhile.
  auth::Authenticator& authenticator = *context.generation->authenticator;
  // (No co_await inside a conditional expression: g++ 12 miscompiles it.)
  std::optional<auth::Lookup> cached = authenticator.cached(token.token);
  auth::Lookup lookup;
  if (cached) {
    lookup = std::move(*cached);
  } else {
    lookup = co_await authenticator.lookup(std::move(token.token));
  }
  co_return decide(context, lookup);
}

StageResult AuthStage::refuse_missing(RequestContext& context) {
  stats_.record(Decision::kMissing);
  unauthorized(context.reply);
  context.reply_message = "this route needs a token; none was found in";
  for (const auth::TokenSource& source : context.snapshot->config.auth.token_from) {
    context.reply_message += source.kind == auth::TokenSource::Kind::kHeader   ? " header:"
                             : source.kind == auth::TokenSource::Kind::kCookie ? " cookie:"
                                                                               : " query:";
    context.reply_message += source.name;
  }
  context.reply.message = context.reply_message;
  context.reply.www_authenticate = R"(Bearer realm="apigw")";
  return StageResult::kReply;
}

StageResult AuthStage::decide(RequestContext& context, const auth::Lookup& lookup) {
  switch (lookup.outcome) {
    case auth::Lookup::Outcome::kUser:
      stats_.record(Decision::kAuthenticated);
      context.user = lookup.user;
      return StageResult::kContinue;
    case auth::Lookup::Outcome::kInvalid:
      stats_.record(Decision::kInvalid);
      unauthorized(context.reply);
      context.reply.message = "invalid or expired token";
      return StageResult::kReply;
    case auth::Lookup::Outcome::kError:
      break;
  }
  const config::AuthConfig& auth = context.snapshot->config.auth;
  const bool required = context.route->auth == config::RouteAuth::kRequired;
  const std::string cause =
      lookup.error == asio::error::timed_out ? std::string("timed out") : lookup.error.message();
  if (auth.on_error == config::AuthOnError::kAnonymous && !required) {
    stats_.record(Decision::kAnonymous);
    return StageResult::kContinue;
  }
  stats_.record(Decision::kUnavailable);
  unauthorized(context.reply);
  if (auth.on_error == config::AuthOnError::kAnonymous) {
    // The token counts as absent, and this route needs one.
    context.reply_message = fmt::format(
        "the token could not be checked ({}), so the request is anonymous; this route needs a user", cause);
    context.reply.message = context.reply_message;
    context.reply.www_authenticate = R"(Bearer realm="apigw")";
    return StageResult::kReply;
  }
  context.reply_message = fmt::format("the token store is unavailable: {}", cause);
  context.reply.status = 503;
  context.reply.error = "auth_unavailable";
  context.reply.message = context.reply_message;
  context.reply.www_authenticate = {};
  return StageResult::kReply;
}

}  // namespace apigw::server
