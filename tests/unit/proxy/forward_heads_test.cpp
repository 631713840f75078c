// The heads the forwarder writes: the upstream request's (hop-by-hop, forwarding, identity and framing headers) and
// the client response's (what is dropped and added, and how the body is framed).
#include "apigw/proxy/forward_heads.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/string.hpp>

#include "apigw/config/config.h"
#include "apigw/config/snapshot.h"
#include "apigw/http/response_parser.h"
#include "apigw/proxy/forward_request.h"

namespace apigw::proxy {
namespace {
namespace bhttp = boost::beast::http;

// The header lines of `head` (not the start line) named `name`, in any case, as "Name: value" strings.
std::vector<std::string> lines_named(std::string_view head, std::string_view name) {
  std::vector<std::string> found;
  std::size_t at = head.find("\r\n");
  while (at != std::string_view::npos && at + 2 < head.size()) {
    const std::size_t start = at + 2;
    const std::size_t end = head.find("\r\n", start);
    const std::string_view line = head.substr(start, end - start);
    const std::size_t colon = line.find(':');
    if (colon != std::string_view::npos && boost::beast::iequals(line.substr(0, colon), name)) {
      found.emplace_back(line);
    }
    at = end;
  }
  return found;
}

// The one value of `name` in `head`; "<absent>" or "<repeated>" otherwise.
std::string value_of(std::string_view head, std::string_view name) {
  const std::vector<std::string> lines = lines_named(head, name);
  if (lines.empty()) return "<absent>";
  if (lines.size() > 1) return "<repeated>";
  return lines.front().substr(lines.front().find(':') + 2);
}

bool has(std::string_view head, std::string_view name) { return !lines_named(head, name).empty(); }

// A client request head parsed as the session parses it.
class ClientRequest {
 public:
  explicit ClientRequest(std::string text) : text_(std::move(text)) {
    parser_.put(boost::asio::buffer(text_), error);
  }
  const bhttp::request_header<>& header() const { return parser_.get(); }

  boost::system::error_code error;

 private:
  std::string text_;
  RequestParser parser_;
};

// An upstream response head parsed as ResponseReader parses it (without a body for HEAD).
class UpstreamResponse {
 public:
  explicit UpstreamResponse(std::string text, bool head_request = false) : text_(std::move(text)), parser_(fields_) {
    if (head_request) parser_.skip(true);
    parser_.put(boost::asio::buffer(text_), error);
  }
  const http::ResponseParser& parser() const { return parser_; }

  boost::system::error_code error;

 private:
  std::string text_;
  std::vector<http::ResponseParser::Field> fields_;
  http::ResponseParser parser_;
};

class ForwardHeads : public ::testing::Test {
 protected:
  ForwardHeads() {
    route.name = "items-route";
    forward.route = &route;
    forward.request_id = "gw-req-1";
    forward.path = "/items";
    forward.host = "api.example.com";
    forward.peer_address = "192.0.2.7";
  }

  // The upstream request head for `request` with the fixture's ForwardRequest.
  std::string upstream_head(const ClientRequest& request, RequestFraming framing = {}) {
    EXPECT_FALSE(request.error) << request.error.message();
    std::string out;
    framing_at = build_upstream_request_head(request.header(), forward, framing, out);
    return out;
  }

  std::string client_head(const UpstreamResponse& response, ResponseFraming framing, bool head_request = false,
                          bool client_http11 = true) {
    EXPECT_FALSE(response.error) << response.error.message();
    std::string out;
    build_client_response_head(response.parser(), forward, "backend", framing, head_request, client_http11, out);
    return out;
  }

  config::Route route;
  ForwardRequest forward;
  std::size_t framing_at = 0;
};

// --- the upstream request head ---

TEST_F(ForwardHeads, TheRequestLineHasTheRewrittenPathAndQueryInHttp11) {
  forward.query = "page=2&sort=asc";
  forward.has_query = true;
  const std::string head =
      upstream_head(ClientRequest("GET /api/v1/items?page=2&sort=asc HTTP/1.0\r\nHost: api.example.com\r\n\r\n"));
  EXPECT_EQ(head.substr(0, head.find("\r\n")), "GET /items?page=2&sort=asc HTTP/1.1");
}

TEST_F(ForwardHeads, HopByHopAndConnectionNamedHeadersAreDropped) {
  const std::string head = upstream_head(ClientRequest(
      "GET /items HTTP/1.1\r\nHost: api.example.com\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\n"
      "X-Hop: secret\r\nTE: trailers\r\nUpgrade: h2c\r\nProxy-Authorization: Basic Zm9v\r\n"
      "Accept: application/json\r\nX-Custom: kept\r\n\r\n"));
  for (std::string_view dropped : {"Connection", "Keep-Alive", "X-Hop", "TE", "Upgrade", "Proxy-Authorization"}) {
    EXPECT_FALSE(has(head, dropped)) << dropped << " in\n" << head;
  }
  EXPECT_EQ(value_of(head, "Accept"), "application/json");
  EXPECT_EQ(value_of(head, "X-Custom"), "kept");
  EXPECT_EQ(value_of(head, "Host"), "api.example.com");
}

TEST_F(ForwardHeads, ExpectIsAnsweredByTheGatewayAndNotForwarded) {
  const std::string head = upstream_head(ClientRequest("PUT /items HTTP/1.1\r\nHost: api.example.com\r\n"
                                                       "Expect: 100-continue\r\nContent-Length: 3\r\n\r\n"),
                                         RequestFraming{false, 3});
  EXPECT_FALSE(has(head, "Expect")) << head;
}

TEST_F(ForwardHeads, XForwardedForFromATrustedPeerIsExtendedWithThePeer) {
  forward.trusted_peer = true;
  const std::string head = upstream_head(
      ClientRequest("GET /items HTTP/1.1\r\nHost: api.example.com\r\nX-Forwarded-For: 203.0.113.1\r\n"
                    "x-forwarded-for: 198.51.100.2, 198.51.100.3\r\n\r\n"));
  EXPECT_EQ(value_of(head, "X-Forwarded-For"), "203.0.113.1, 198.51.100.2, 198.51.100.3, 192.0.2.7") << head;
}

TEST_F(ForwardHeads, XForwardedForFromAnUntrustedPeerIsReplacedByThePeer) {
  const std::string head = upstream_head(ClientRequest(
      "GET /items HTTP/1.1\r\nHost: api.example.com\r\nX-Forwarded-For: 10.0.0.1, 10.0.0.2\r\n\r\n"));
  EXPECT_EQ(value_of(head, "X-Forwarded-For"), "192.0.2.7") << head;
}

TEST_F(ForwardHeads, XForwardedForIsThePeerWhenTheClientSentNone) {
  forward.trusted_peer = true;
  const std::string head = upstream_head(ClientRequest("GET /items HTTP/1.1\r\nHost: api.example.com\r\n\r\n"));
  EXPECT_EQ(value_of(head, "X-Forwarded-For"), "192.0.2.7");
}

TEST_F(ForwardHeads, ATrustedPeersForwardingHeadersAreKept) {
  forward.trusted_peer = true;
  const std::string head = upstream_head(ClientRequest(
      "GET /items HTTP/1.1\r\nHost: api.example.com\r\nX-Forwarded-Proto: https\r\n"
      "X-Forwarded-Host: public.example.com\r\nX-Real-IP: 203.0.113.9\r\n"
      "Forwarded: for=203.0.113.9;proto=https\r\n\r\n"));
  // The trusted proxy's values stand; apigw adds none of its own beside them.
  EXPECT_EQ(value_of(head, "X-Forwarded-Proto"), "https") << head;
  EXPECT_EQ(value_of(head, "X-Forwarded-Host"), "public.example.com") << head;
  EXPECT_EQ(value_of(head, "X-Real-IP"), "203.0.113.9");
  EXPECT_EQ(value_of(head, "Forwarded"), "for=203.0.113.9;proto=https");
}

TEST_F(ForwardHeads, AnUntrustedPeersForwardingHeadersAreReplacedOrDropped) {
  const std::string head = upstream_head(ClientRequest(
      "GET /items HTTP/1.1\r\nHost: api.example.com\r\nX-Forwarded-Proto: https\r\n"
      "X-Forwarded-Host: evil.example\r\nX-Real-IP: 10.9.9.9\r\nForwarded: for=10.9.9.9\r\n\r\n"));
  EXPECT_EQ(value_of(head, "X-Forwarded-Proto"), "http") << head;
  EXPECT_EQ(value_of(head, "X-Forwarded-Host"), "api.example.com") << head;
  EXPECT_FALSE(has(head, "X-Real-IP")) << head;
  EXPECT_FALSE(has(head, "Forwarded")) << head;
}

TEST_F(ForwardHeads, TheClientsRequestIdAndGatewayHeadersAreReplacedByApigws) {
  forward.trusted_peer = true;  // not even a trusted proxy speaks for apigw
  const std::string head = upstream_head(ClientRequest(
      "GET /items HTTP/1.1\r\nHost: api.example.com\r\nX-Request-Id: client-chosen\r\nX-Apigw-Route: spoofed\r\n"
      "x-apigw-upstream: spoofed\r\nX-Apigw-Anything: spoofed\r\n\r\n"));
  EXPECT_EQ(value_of(head, "X-Request-Id"), "gw-req-1") << head;
  EXPECT_FALSE(has(head, "X-Apigw-Route")) << head;
  EXPECT_FALSE(has(head, "X-Apigw-Upstream")) << head;
  EXPECT_FALSE(has(head, "X-Apigw-Anything")) << head;
}

TEST_F(ForwardHeads, TheUserHeaderCarriesOnlyTheAuthenticatedUser) {
  forward.user_header = "X-User-Id";
  forward.user_id = "user-42";
  forward.trusted_peer = true;
  const std::string head = upstream_head(ClientRequest(
      "GET /items HTTP/1.1\r\nHost: api.example.com\r\nX-User-Id: admin\r\nx-user-id: root\r\n\r\n"));
  EXPECT_EQ(value_of(head, "X-User-Id"), "user-42") << head;
}

TEST_F(ForwardHeads, AnAnonymousRequestCarriesNoUserHeader) {
  forward.user_header = "X-User-Id";
  const std::string head =
      upstream_head(ClientRequest("GET /items HTTP/1.1\r\nHost: api.example.com\r\nX-User-Id: admin\r\n\r\n"));
  EXPECT_FALSE(has(head, "X-User-Id")) << head;
}

TEST_F(ForwardHeads, AnAbsoluteFormAuthorityReplacesHost) {
  forward.authority = "backend.example:8080";
  forward.host = "backend.example:8080";
  const std::string head = upstream_head(
      ClientRequest("GET http://backend.example:8080/items HTTP/1.1\r\nHost: other.example\r\n\r\n"));
  EXPECT_EQ(value_of(head, "Host"), "backend.example:8080") << head;
  EXPECT_EQ(value_of(head, "X-Forwarded-Host"), "backend.example:8080") << head;
}

TEST_F(ForwardHeads, AChunkedBodyIsFramedChunkedAfterTheOffset) {
  const std::string head = upstream_head(
      ClientRequest("POST /items HTTP/1.1\r\nHost: api.example.com\r\nTransfer-Encoding: chunked\r\n\r\n"),
      RequestFraming{true, std::nullopt});
  EXPECT_EQ(head.substr(framing_at), "Transfer-Encoding: chunked\r\n\r\n");
  EXPECT_EQ(lines_named(head, "Transfer-Encoding").size(), 1u) << head;
  EXPECT_FALSE(has(head, "Content-Length")) << head;
}

TEST_F(ForwardHeads, ALengthBodyIsFramedByContentLengthAfterTheOffset) {
  const std::string head = upstream_head(
      ClientRequest("POST /items HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 11\r\n\r\n"),
      RequestFraming{false, 11});
  EXPECT_EQ(head.substr(framing_at), "Content-Length: 11\r\n\r\n");
  EXPECT_EQ(lines_named(head, "Content-Length").size(), 1u) << head;
  EXPECT_FALSE(has(head, "Transfer-Encoding")) << head;
}

TEST_F(ForwardHeads, NoBodyMeansNoFramingHeader) {
  const std::string head = upstream_head(ClientRequest("GET /items HTTP/1.1\r\nHost: api.example.com\r\n\r\n"));
  EXPECT_EQ(head.substr(framing_at), "\r\n");
  EXPECT_FALSE(has(head, "Content-Length"));
  EXPECT_FALSE(has(head, "Transfer-Encoding"));
}

TEST_F(ForwardHeads, TheTextBeforeTheFramingOffsetIsTheWholeHeadWithoutFraming) {
  const ClientRequest request("POST /items HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 4\r\n\r\n");
  std::string out = "previous bytes|";
  const std::size_t at = build_upstream_request_head(request.header(), forward, RequestFraming{false, 4}, out);
  const std::string_view copy = std::string_view(out).substr(0, at);
  // The offset counts from the start of `out`, what was in it before included.
  EXPECT_EQ(copy.substr(0, 15), "previous bytes|");
  EXPECT_EQ(copy.substr(15, copy.find("\r\n") - 15), "POST /items HTTP/1.1");
  EXPECT_EQ(copy.substr(copy.size() - 2), "\r\n");
  EXPECT_EQ(copy.find("\r\n\r\n"), std::string_view::npos);
  EXPECT_FALSE(has(copy.substr(15), "Content-Length"));
  EXPECT_TRUE(has(copy.substr(15), "X-Request-Id"));
  EXPECT_EQ(out.substr(at), "Content-Length: 4\r\n\r\n");
}

// --- the client response's framing ---

TEST_F(ForwardHeads, ResponsesToHeadAnd204And304HaveNoBody) {
  const UpstreamResponse head_answer("HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n", /*head_request=*/true);
  const UpstreamResponse no_content("HTTP/1.1 204 No Content\r\n\r\n");
  const UpstreamResponse not_modified("HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n");
  const ResponseFraming head = response_framing(head_answer.parser(), /*head_request=*/true, true, true);
  const ResponseFraming empty = response_framing(no_content.parser(), false, true, true);
  const ResponseFraming unchanged = response_framing(not_modified.parser(), false, true, true);
  for (const ResponseFraming& framing : {head, empty, unchanged}) {
    EXPECT_FALSE(framing.has_body);
    EXPECT_FALSE(framing.chunked);
    EXPECT_TRUE(framing.keep_alive);
  }
}

TEST_F(ForwardHeads, ALengthIsRelayedAsItIs) {
  const UpstreamResponse response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
  const ResponseFraming framing = response_framing(response.parser(), false, /*client_http11=*/false, true);
  EXPECT_TRUE(framing.has_body);
  EXPECT_FALSE(framing.chunked);
  EXPECT_TRUE(framing.keep_alive);
}

TEST_F(ForwardHeads, NoLengthIsRechunkedForAnHttp11Client) {
  const UpstreamResponse until_close("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n");
  const UpstreamResponse chunked("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
  for (const UpstreamResponse* response : {&until_close, &chunked}) {
    const ResponseFraming framing = response_framing(response->parser(), false, /*client_http11=*/true, true);
    EXPECT_TRUE(framing.has_body);
    EXPECT_TRUE(framing.chunked);
    EXPECT_TRUE(framing.keep_alive);
  }
}

TEST_F(ForwardHeads, NoLengthEndsAnHttp10ClientsConnection) {
  const UpstreamResponse chunked("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
  const ResponseFraming framing = response_framing(chunked.parser(), false, /*client_http11=*/false, true);
  EXPECT_TRUE(framing.has_body);
  EXPECT_FALSE(framing.chunked);
  EXPECT_FALSE(framing.keep_alive);
}

TEST_F(ForwardHeads, ClosingIsKeptWhenKeepAliveIsNotWanted) {
  const UpstreamResponse length("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
  const UpstreamResponse chunked("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
  const UpstreamResponse no_content("HTTP/1.1 204 No Content\r\n\r\n");
  for (const UpstreamResponse* response : {&length, &chunked, &no_content}) {
    EXPECT_FALSE(response_framing(response->parser(), false, true, /*keep_alive_wanted=*/false).keep_alive);
  }
}

// --- the client response head ---

TEST_F(ForwardHeads, TheStatusLineKeepsTheUpstreamsReasonOrUsesTheStandardOne) {
  const UpstreamResponse custom("HTTP/1.1 404 Nothing Here\r\nContent-Length: 0\r\n\r\n");
  const UpstreamResponse bare("HTTP/1.1 201 \r\nContent-Length: 0\r\n\r\n");
  const ResponseFraming framing{true, false, true};
  const std::string custom_head = client_head(custom, framing);
  const std::string bare_head = client_head(bare, framing);
  EXPECT_EQ(custom_head.substr(0, custom_head.find("\r\n")), "HTTP/1.1 404 Nothing Here");
  EXPECT_EQ(bare_head.substr(0, bare_head.find("\r\n")), "HTTP/1.1 201 Created");
}

TEST_F(ForwardHeads, TheUpstreamsGatewayAndHopByHopHeadersAreDropped) {
  const UpstreamResponse response(
      "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Up-Hop\r\nKeep-Alive: timeout=5\r\nX-Up-Hop: internal\r\n"
      "X-Request-Id: upstream-id\r\nX-Apigw-Route: spoofed\r\nx-apigw-upstream: spoofed\r\n"
      "Content-Type: application/json\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 2\r\n\r\n");
  forward.debug_headers = false;
  const std::string head = client_head(response, ResponseFraming{true, false, true});
  for (std::string_view dropped : {"Connection", "Keep-Alive", "X-Up-Hop", "X-Apigw-Route", "X-Apigw-Upstream"}) {
    EXPECT_FALSE(has(head, dropped)) << dropped << " in\n" << head;
  }
  EXPECT_EQ(value_of(head, "X-Request-Id"), "gw-req-1") << head;
  EXPECT_EQ(value_of(head, "Content-Type"), "application/json");
  EXPECT_EQ(lines_named(head, "Set-Cookie"), (std::vector<std::string>{"Set-Cookie: a=1", "Set-Cookie: b=2"}));
  EXPECT_EQ(value_of(head, "Content-Length"), "2");
}

TEST_F(ForwardHeads, DateIsAddedOnlyWhenTheUpstreamSentNone) {
  const UpstreamResponse dated("HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 0\r\n\r\n");
  const UpstreamResponse undated("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  const ResponseFraming framing{true, false, true};
  EXPECT_EQ(value_of(client_head(dated, framing), "Date"), "Sun, 06 Nov 1994 08:49:37 GMT");
  const std::string added = value_of(client_head(undated, framing), "Date");
  EXPECT_EQ(added.size(), std::string_view("Sun, 06 Nov 1994 08:49:37 GMT").size()) << added;
  EXPECT_EQ(added.substr(added.size() - 4), " GMT") << added;
}

TEST_F(ForwardHeads, DebugHeadersNameTheRouteAndTheUpstream) {
  const UpstreamResponse response("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  const ResponseFraming framing{true, false, true};
  forward.debug_headers = true;
  const std::string debug = client_head(response, framing);
  EXPECT_EQ(value_of(debug, "X-Apigw-Route"), "items-route");
  EXPECT_EQ(value_of(debug, "X-Apigw-Upstream"), "backend");

  forward.debug_headers = false;
  const std::string quiet = client_head(response, framing);
  EXPECT_FALSE(has(quiet, "X-Apigw-Route"));
  EXPECT_FALSE(has(quiet, "X-Apigw-Upstream"));

  // A split route names the side that answered even without debug headers.
  forward.name_upstream = true;
  const std::string split = client_head(response, framing);
  EXPECT_FALSE(has(split, "X-Apigw-Route"));
  EXPECT_EQ(value_of(split, "X-Apigw-Upstream"), "backend");
}

TEST_F(ForwardHeads, XCacheIsReplacedWhenTheGatewayHasACacheStatus) {
  const UpstreamResponse response("HTTP/1.1 200 OK\r\nX-Cache: HIT from upstream-cdn\r\nContent-Length: 0\r\n\r\n");
  const ResponseFraming framing{true, false, true};
  EXPECT_EQ(value_of(client_head(response, framing), "X-Cache"), "HIT from upstream-cdn");
  forward.cache_status = "MISS";
  EXPECT_EQ(value_of(client_head(response, framing), "X-Cache"), "MISS");
}

TEST_F(ForwardHeads, ConnectionSaysCloseOrKeepAliveAsTheClientNeeds) {
  const UpstreamResponse response("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(value_of(client_head(response, ResponseFraming{true, false, false}), "Connection"), "close");
  EXPECT_EQ(value_of(client_head(response, ResponseFraming{true, false, false}, false, /*client_http11=*/false),
                     "Connection"),
            "close");
  EXPECT_EQ(value_of(client_head(response, ResponseFraming{true, false, true}, false, /*client_http11=*/false),
                     "Connection"),
            "keep-alive");
  EXPECT_FALSE(has(client_head(response, ResponseFraming{true, false, true}), "Connection"));
}

TEST_F(ForwardHeads, ARechunkedBodyIsFramedChunked) {
  const UpstreamResponse response("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
  const std::string head = client_head(response, ResponseFraming{true, true, true});
  EXPECT_EQ(value_of(head, "Transfer-Encoding"), "chunked") << head;
  EXPECT_FALSE(has(head, "Content-Length"));
}

TEST_F(ForwardHeads, ContentLengthIsKeptForHeadAnd304) {
  // Either carries the length the full response would have.
  const UpstreamResponse head_answer("HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n", /*head_request=*/true);
  const UpstreamResponse not_modified("HTTP/1.1 304 Not Modified\r\nContent-Length: 42\r\n\r\n");
  const std::string head = client_head(head_answer, response_framing(head_answer.parser(), true, true, true), true);
  const std::string unchanged = client_head(not_modified, response_framing(not_modified.parser(), false, true, true));
  EXPECT_EQ(value_of(head, "Content-Length"), "42") << head;
  EXPECT_EQ(value_of(unchanged, "Content-Length"), "42") << unchanged;
}

TEST_F(ForwardHeads, TheHeadEndsWithOneBlankLine) {
  const UpstreamResponse response("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n");
  const std::string head = client_head(response, ResponseFraming{true, false, true});
  ASSERT_GE(head.size(), 4u);
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n");
  EXPECT_EQ(head.find("\r\n\r\n"), head.size() - 4);
}

}  // namespace
}  // namespace apigw::proxy
