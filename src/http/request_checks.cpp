// The checks of a parsed request head (see request_checks.h).
#include "apigw/http/request_checks.h"

namespace apigw::http {
namespace bhttp = boost::beast::http;

std::optional<LocalReply> check_request(const bhttp::request_header<>& request, bool chunked,
                                        std::size_t max_uri_bytes, CheckedRequest& checked) {
  LocalReply reply;
  reply.status = 400;
  if (request.version() != 10 && request.version() != 11) {
    reply.status = 505;
    reply.message = "only HTTP/1.0 and HTTP/1.1 are served";
    return reply;
  }
  if (request.find(bhttp::field::transfer_encoding) != request.end() && !chunked) {
    reply.message = "Transfer-Encoding other than chunked";
    return reply;
  }
  const std::string_view target = request.target();
  if (target.size() > max_uri_bytes) {
    reply.status = 414;
    reply.message = "request target exceeds server.limits.max_uri_bytes";
    return reply;
  }
  if (const std::string_view error = parse_request_target(target, checked.target, checked.storage); !error.empty()) {
    reply.message = error;
    return reply;
  }
  const std::size_t hosts = request.count(bhttp::field::host);
  if (hosts > 1 || (hosts == 0 && request.version() == 11)) {
    reply.message = hosts > 1 ? "more than one Host header" : "missing Host header";
    return reply;
  }
  checked.host = checked.target.authority;
  if (checked.host.empty() && hosts == 1) checked.host = request.at(bhttp::field::host);
  return std::nullopt;
}

}  // namespace apigw::http
