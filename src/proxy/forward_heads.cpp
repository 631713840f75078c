// The upstream request's head and the client response's head (see forward_heads.h).
#include "apigw/proxy/forward_heads.h"

#include <cstring>
#include <iterator>

#include <boost/beast/core/string.hpp>
#include <fmt/format.h>

#include "apigw/http/local_reply.h"
#include "apigw/proxy/header_rules.h"

namespace apigw::proxy {
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {

constexpr std::string_view kCrlf = "\r\n";

// One header line, sized once and copied in (the heads are built per request: four appends cost twice as much).
void append_header(std::string& out, std::string_view name, std::string_view value) {
  const std::size_t at = out.size();
  out.resize(at + name.size() + value.size() + 4);
  char* line = out.data() + at;
  std::memcpy(line, name.data(), name.size());
  line += name.size();
  *line++ = ':';
  *line++ = ' ';
  std::memcpy(line, value.data(), value.size());
  line += value.size();
  *line++ = '\r';
  *line = '\n';
}

// The forwarding headers a client may only set through a trusted proxy, and W3C Trace Context's request fields,
// which apigw writes itself when it traces.
enum class ForwardingHeader { kNone, kFor, kProto, kHost, kRealIp, kForwarded, kRequestId, kApigw, kTraceContext };

ForwardingHeader classify(bhttp::field field, std::string_view name) {
  if (field == bhttp::field::forwarded) return ForwardingHeader::kForwarded;
  if (field == bhttp::field::unknown && !name.empty() && (name[0] == 't' || name[0] == 'T') &&
      (beast::iequals(name, "traceparent") || beast::iequals(name, "tracestate"))) {
    return ForwardingHeader::kTraceContext;
  }
  if (field != bhttp::field::unknown || name.size() < 9 || (name[0] != 'x' && name[0] != 'X')) {
    return ForwardingHeader::kNone;
  }
  if (beast::iequals(name, "x-forwarded-for")) return ForwardingHeader::kFor;
  if (beast::iequals(name, "x-forwarded-proto")) return ForwardingHeader::kProto;
  if (beast::iequals(name, "x-forwarded-host")) return ForwardingHeader::kHost;
  if (beast::iequals(name, "x-real-ip")) return ForwardingHeader::kRealIp;
  if (beast::iequals(name, "x-request-id")) return ForwardingHeader::kRequestId;
  if (beast::iequals(name.substr(0, 8), "x-apigw-")) return ForwardingHeader::kApigw;
  return ForwardingHeader::kNone;
}

// Whether a client request field goes upstream as it is; X-Forwarded-For values from a trusted peer are
// gathered into `forwarded_for` instead.
struct ForwardedFields {
  std::string forwarded_for;
  bool has_host = false;
  bool has_proto = false;
  bool has_forwarded_host = false;

  bool keep(const ForwardRequest& forward, bhttp::field name, std::string_view name_text, std::string_view value) {
    if (name == bhttp::field::host) {
      if (!forward.authority.empty()) return false;  // absolute-form: the target's authority is the host
      has_host = true;
    }
    switch (classify(name, name_text)) {
      case ForwardingHeader::kFor:
        if (forward.trusted_peer) {
          if (!forwarded_for.empty()) forwarded_for.append(", ");
          forwarded_for.append(value);
        }
        return false;
      case ForwardingHeader::kProto:
        has_proto = has_proto || forward.trusted_peer;
        return forward.trusted_peer;
      case ForwardingHeader::kHost:
        has_forwarded_host = has_forwarded_host || forward.trusted_peer;
        return forward.trusted_peer;
      case ForwardingHeader::kRealIp:
      case ForwardingHeader::kForwarded:
        return forward.trusted_peer;
      case ForwardingHeader::kRequestId:
      case ForwardingHeader::kApigw:
        return false;
      case ForwardingHeader::kTraceContext:
        return forward.trace_headers.empty();  // tracing off: passed like any other field
      case ForwardingHeader::kNone:
        return true;
    }
    return true;
  }
};

}  // namespace

std::size_t build_upstream_request_head(const bhttp::request_header<>& request, const ForwardRequest& forward,
                                        RequestFraming framing, std::string& out) {
  const HopByHopRules rules(request);
  out.reserve(out.size() + 512);
  out.append(request.method_string());
  out.push_back(' ');
  out.append(forward.path);
  if (forward.has_query) {
    out.push_back('?');
    out.append(forward.query);
  }
  out.append(" HTTP/1.1\r\n");

  ForwardedFields seen;
  for (const auto& field : request) {
    const std::string_view name = field.name_string();
    if (rules.drop(field.name(), name) || field.name() == bhttp::field::expect) continue;
    if (!forward.user_header.empty() && beast::iequals(name, forward.user_header)) continue;
    if (seen.keep(forward, field.name(), name, field.value())) append_header(out, name, field.value());
  }
  if (!seen.has_host && !forward.host.empty()) append_header(out, "Host", forward.host);
  if (!seen.forwarded_for.empty()) seen.forwarded_for.append(", ");
  seen.forwarded_for.append(forward.peer_address);
  append_header(out, "X-Forwarded-For", seen.forwarded_for);
  if (!seen.has_proto) append_header(out, "X-Forwarded-Proto", "http");
  if (!seen.has_forwarded_host && !forward.host.empty()) append_header(out, "X-Forwarded-Host", forward.host);
  append_header(out, "X-Request-Id", forward.request_id);
  if (!forward.user_id.empty()) append_header(out, forward.user_header, forward.user_id);
  out.append(forward.trace_headers);
  const std::size_t framing_at = out.size();
  if (framing.chunked) {
    append_header(out, "Transfer-Encoding", "chunked");
  } else if (framing.length) {
    const fmt::format_int length(*framing.length);
    append_header(out, "Content-Length", {length.data(), length.size()});
  }
  out.append(kCrlf);
  return framing_at;
}

ResponseFraming response_framing(const http::ResponseParser& response, bool head_request, bool client_http11,
                                 bool keep_alive_wanted) {
  ResponseFraming framing;
  const unsigned status = response.status();
  framing.has_body = !head_request && status != 204 && status != 304;
  framing.chunked = framing.has_body && !response.content_length() && client_http11;
  // Without a length and without chunked, the end of the body is the end of the connection.
  framing.keep_alive =
      keep_alive_wanted && (!framing.has_body || response.content_length().has_value() || framing.chunked);
  return framing;
}

void build_interim_response_head(const http::ResponseParser& response, std::string& out) {
  HopByHopRules rules;
  for (const http::ResponseParser::Field& field : response.fields()) {
    if (field.name == bhttp::field::connection) rules.add_connection(field.value);
  }
  const std::string_view reason = response.reason();
  fmt::format_to(std::back_inserter(out), "HTTP/1.1 {} {}\r\n", response.status(),
                 reason.empty() ? http::reason_phrase(response.status()) : reason);
  for (const http::ResponseParser::Field& field : response.fields()) {
    if (rules.drop(field.name, field.name_text) || field.name == bhttp::field::content_length) continue;
    append_header(out, field.name_text, field.value);
  }
  out.append(kCrlf);
}

void build_client_response_head(const http::ResponseParser& response, const ForwardRequest& forward,
                                std::string_view upstream_name, ResponseFraming framing, bool head_request,
                                bool client_http11, std::string& out) {
  const unsigned status = response.status();
  HopByHopRules rules;
  for (const http::ResponseParser::Field& field : response.fields()) {
    if (field.name == bhttp::field::connection) rules.add_connection(field.value);
  }
  out.reserve(out.size() + 512);
  const std::string_view reason = response.reason();
  out.append("HTTP/1.1 ");
  const fmt::format_int status_text(status);
  out.append(status_text.data(), status_text.size());
  out.push_back(' ');
  out.append(reason.empty() ? http::reason_phrase(status) : reason);
  out.append(kCrlf);
  bool has_date = false;
  for (const http::ResponseParser::Field& field : response.fields()) {
    if (rules.drop(field.name, field.name_text)) continue;
    const ForwardingHeader kind = classify(field.name, field.name_text);
    if (kind == ForwardingHeader::kRequestId || kind == ForwardingHeader::kApigw) continue;
    if (!forward.rate_limit_headers.empty() &&
        (beast::iequals(field.name_text, "RateLimit") || beast::iequals(field.name_text, "RateLimit-Policy"))) {
      continue;
    }
    if (!forward.cache_status.empty() && beast::iequals(field.name_text, "X-Cache")) continue;
    if (!forward.drop_response_header.empty() && beast::iequals(field.name_text, forward.drop_response_header)) {
      continue;
    }
    has_date = has_date || field.name == bhttp::field::date;
    append_header(out, field.name_text, field.value);
  }
  if (!has_date) append_header(out, "Date", http::http_date());
  append_header(out, "X-Request-Id", forward.request_id);
  if (forward.debug_headers) append_header(out, "X-Apigw-Route", forward.route->name);
  if (forward.debug_headers || forward.name_upstream) append_header(out, "X-Apigw-Upstream", upstream_name);
  if (framing.chunked) {
    append_header(out, "Transfer-Encoding", "chunked");
  } else if (response.content_length() && (framing.has_body || head_request || status == 304)) {
    // A HEAD or 304 answer carries the length the full response would have.
    const fmt::format_int length(*response.content_length());
    append_header(out, "Content-Length", {length.data(), length.size()});
  }
  if (!forward.cache_status.empty()) append_header(out, "X-Cache", forward.cache_status);
  out.append(forward.rate_limit_headers);
  if (!framing.keep_alive) {
    append_header(out, "Connection", "close");
  } else if (!client_http11) {
    append_header(out, "Connection", "keep-alive");
  }
  out.append(kCrlf);
}

}  // namespace apigw::proxy
