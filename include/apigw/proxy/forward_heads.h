// The two heads the forwarder writes: the upstream request's, built from the client's request (hop-by-hop
// headers dropped, forwarding headers set as the peer's trust allows, the request id and the authenticated
// user added), and the client response's, built from the upstream's (hop-by-hop and gateway headers dropped,
// Date, X-Request-Id, the debug headers, X-Cache and the framing and Connection the client needs).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/http/message.hpp>

#include "apigw/http/response_parser.h"
#include "apigw/proxy/forward_request.h"

namespace apigw::proxy {

// How the upstream request's body is framed: chunked, a length, or no body.
struct RequestFraming {
  bool chunked = false;
  std::optional<std::uint64_t> length;
};

// Appends the upstream request's head to `out` and returns where its framing part (Transfer-Encoding or
// Content-Length, then the blank line) starts: what comes before is what the migration shadow copies.
std::size_t build_upstream_request_head(const boost::beast::http::request_header<>& request,
                                        const ForwardRequest& forward, RequestFraming framing, std::string& out);

// How the client response is framed and whether the client connection stays open after it.
struct ResponseFraming {
  bool has_body = false;    // the client gets body bytes (not for HEAD, 204, 304)
  bool chunked = false;     // re-chunked: the upstream sent no length and the client speaks HTTP/1.1
  bool keep_alive = false;  // the client asked for it, no drain began, and the end of the body is known
};
ResponseFraming response_framing(const http::ResponseParser& response, bool head_request, bool client_http11,
                                 bool keep_alive_wanted);

// The head of an interim (1xx) response for the client: its status line and its fields but the hop-by-hop ones.
void build_interim_response_head(const http::ResponseParser& response, std::string& out);

// Appends the client response's head, framed as `framing` says, to `out`.
void build_client_response_head(const http::ResponseParser& response, const ForwardRequest& forward,
                                std::string_view upstream_name, ResponseFraming framing, bool head_request,
                                bool client_http11, std::string& out);

}  // namespace apigw::proxy
