// Token redaction (see token_redaction.h).
#include "token_redaction.h"

#include "apigw/auth/request_token.h"
#include "apigw/http/query.h"

namespace apigw::server {

std::string redact_tokens(const config::Snapshot* snapshot, std::string_view target) {
  std::string redacted;
  if (!snapshot || !snapshot->config.auth.enabled || target.find('?') == std::string_view::npos) return redacted;
  for (const auth::TokenSource& source : snapshot->config.auth.token_from) {
    if (source.kind != auth::TokenSource::Kind::kQuery) continue;
    redacted = http::redact_query_parameter(redacted.empty() ? target : std::string_view(redacted), source.name);
  }
  return redacted;
}

}  // namespace apigw::server
