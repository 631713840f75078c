// The checks a parsed request head passes before anything routes it: the HTTP version, Transfer-Encoding other
// than chunked, the target's length and syntax (normalised into `target`), and the Host header (exactly one in
// HTTP/1.1, at most one in HTTP/1.0). Pure: the session and the request-head fuzz target call the same code.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/http/message.hpp>

#include "apigw/http/local_reply.h"
#include "apigw/http/request_target.h"

namespace apigw::http {

struct CheckedRequest {
  RequestTarget target;   // the parsed, normalised target (views into the request or `storage`)
  std::string storage;    // backs `target` when normalising changed it
  std::string_view host;  // the effective host: the absolute-form target's authority, else the Host header
};

// Nullopt when the request may be routed (`checked` is then filled in), else the reply that refuses it (its
// message is a static string). `chunked`: the parser found Transfer-Encoding: chunked as the final coding.
std::optional<LocalReply> check_request(const boost::beast::http::request_header<>& request, bool chunked,
                                        std::size_t max_uri_bytes, CheckedRequest& checked);

}  // namespace apigw::http
