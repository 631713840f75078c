// Responses the gateway answers itself (404, 405, 502, ...): a JSON body {"error", "message", "request_id"}
// with the status, written as one buffer. Pure; the session sends it.
#pragma once

#include <string>
#include <string_view>

namespace apigw::http {

// The machine-readable code of an error status: 404 → "not_found", 502 → "bad_gateway".
std::string_view error_code(unsigned status);

// The reason phrase of a status ("Not Found"); "Unknown" for codes without one.
std::string_view reason_phrase(unsigned status);

// The current time as an IMF-fixdate for the Date header, cached per thread and second.
std::string_view http_date();

// Appends `text` to `out` as the inside of a JSON string; each byte that is not part of well-formed UTF-8 becomes
// U+FFFD, so that the JSON stays valid whatever bytes a client sent.
void append_json_escaped(std::string& out, std::string_view text);

struct LocalReply {
  unsigned status = 500;
  std::string_view error;  // the "error" code; empty = error_code(status)
  std::string_view message;
  std::string_view request_id;
  std::string_view route;     // debug header X-Apigw-Route, when not empty
  std::string_view upstream;  // debug header X-Apigw-Upstream, when not empty
  std::string_view allow;     // Allow header (405), when not empty
  std::string_view www_authenticate;  // WWW-Authenticate header (401), when not empty
  std::string_view cache_status;      // X-Cache header (a cached route's answer), when not empty
  std::string_view extra_headers;     // whole header lines ("Name: value\r\n"...) added as they are
  bool no_store = false;      // adds Cache-Control: no-store
  bool close = false;         // adds Connection: close
  bool head = false;          // answer to HEAD: headers only
};

// Appends the whole response (status line, headers, body) to `out`.
void write_local_reply(std::string& out, const LocalReply& reply);

}  // namespace apigw::http
