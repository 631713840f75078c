// JSON error responses and small response helpers (see local_reply.h).
#include "apigw/http/local_reply.h"

#include <ctime>

#include <fmt/format.h>

namespace apigw::http {

std::string_view error_code(unsigned status) {
  switch (status) {
    case 400: return "bad_request";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 408: return "request_timeout";
    case 413: return "payload_too_large";
    case 414: return "uri_too_long";
    case 417: return "expectation_failed";
    case 431: return "header_fields_too_large";
    case 500: return "internal_error";
    case 501: return "not_implemented";
    case 502: return "bad_gateway";
    case 503: return "service_unavailable";
    case 504: return "gateway_timeout";
    case 505: return "http_version_not_supported";
    default: return status >= 500 ? "server_error" : "client_error";
  }
}

std::string_view reason_phrase(unsigned status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

std::string_view http_date() {
  thread_local std::time_t cached_second = 0;
  thread_local char buffer[40];
  thread_local std::size_t length = 0;
  const std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    std::tm utc{};
    gmtime_r(&now, &utc);
    length = std::strftime(buffer, sizeof buffer, "%a, %d %b %Y %H:%M:%S GMT", &utc);
    cached_second = now;
  }
  return {buffer, length};
}

namespace {

// The length of the well-formed UTF-8 sequence (RFC 3629) that starts `text` and is not plain ASCII, or 0 when
// there is none: a stray continuation byte, a bad or missing continuation, an overlong form, a surrogate, or a
// code point past U+10FFFF.
std::size_t utf8_sequence(std::string_view text) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  std::size_t length = 0;
  unsigned char low = 0x80, high = 0xbf;  // the range of the second byte
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead == 0xe0) low = 0xa0;
    if (lead == 0xed) high = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead == 0xf0) low = 0x90;
    if (lead == 0xf4) high = 0x8f;
  } else {
    return 0;
  }
  if (text.size() < length || byte(1) < low || byte(1) > high) return 0;
  for (std::size_t i = 2; i < length; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xbf) return 0;
  }
  return length;
}

}  // namespace

void append_json_escaped(std::string& out, std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
        } else if (static_cast<unsigned char>(c) < 0x80) {
          out.push_back(c);
        } else if (const std::size_t n = utf8_sequence(text.substr(i)); n > 0) {
          out.append(text.substr(i, n));
          i += n - 1;
        } else {
          // JSON text is UTF-8 (RFC 8259 §8.1); bytes that are not (a request target may carry any byte from 0x80
          // up) become U+FFFD, one per byte.
          out += "\\ufffd";
        }
    }
  }
}

void write_local_reply(std::string& out, const LocalReply& reply) {
  std::string body;
  body.reserve(96 + reply.message.size());
  body += R"({"error":")";
  body += reply.error.empty() ? error_code(reply.status) : reply.error;
  body += R"(","message":")";
  append_json_escaped(body, reply.message);
  body += R"(","request_id":")";
  append_json_escaped(body, reply.request_id);
  body += "\"}\n";

  fmt::format_to(std::back_inserter(out), "HTTP/1.1 {} {}\r\nDate: {}\r\nContent-Type: application/json\r\n"
                 "Content-Length: {}\r\nX-Request-Id: {}\r\n",
                 reply.status, reason_phrase(reply.status), http_date(), body.size(), reply.request_id);
  if (!reply.allow.empty()) fmt::format_to(std::back_inserter(out), "Allow: {}\r\n", reply.allow);
  if (!reply.www_authenticate.empty()) {
    fmt::format_to(std::back_inserter(out), "WWW-Authenticate: {}\r\n", reply.www_authenticate);
  }
  if (reply.no_store) out += "Cache-Control: no-store\r\n";
  if (!reply.cache_status.empty()) fmt::format_to(std::back_inserter(out), "X-Cache: {}\r\n", reply.cache_status);
  if (!reply.route.empty()) fmt::format_to(std::back_inserter(out), "X-Apigw-Route: {}\r\n", reply.route);
  if (!reply.upstream.empty()) fmt::format_to(std::back_inserter(out), "X-Apigw-Upstream: {}\r\n", reply.upstream);
  out += reply.extra_headers;
  if (reply.close) out += "Connection: close\r\n";
  out += "\r\n";
  if (!reply.head) out += body;
}

}  // namespace apigw::http
