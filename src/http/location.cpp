// Resolving a response's URI references against its request (see location.h), with Boost.URL.
#include "apigw/http/location.h"

#include <vector>

#include <boost/url/parse.hpp>

#include "apigw/http/text.h"

namespace apigw::http {
namespace {

// The authority as compared: lower case, no trailing dot on the name, no default port.
std::string comparable_authority(std::string_view authority) {
  std::string_view name = authority;
  std::string_view port;
  const std::size_t colon = authority.rfind(':');
  const std::size_t bracket = authority.rfind(']');
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    name = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (name.size() > 1 && name.back() == '.') name.remove_suffix(1);
  std::string out = lower_case(name);
  if (!port.empty() && port != "80" && port != "443") out.append(":").append(port);
  return out;
}

// A segment of dots, "%2e" counting as one (RFC 3986 §6.2.2.2): 1 or 2, else 0.
int dots(std::string_view segment) {
  int count = 0;
  while (!segment.empty()) {
    if (segment.front() == '.') {
      segment.remove_prefix(1);
    } else if (segment.size() >= 3 && segment[0] == '%' && segment[1] == '2' &&
               (segment[2] == 'e' || segment[2] == 'E')) {
      segment.remove_prefix(3);
    } else {
      return 0;
    }
    if (++count > 2) return 0;
  }
  return count;
}

// RFC 3986 §5.2.4: "." and ".." segments removed; ".." above the root is dropped.
std::string remove_dot_segments(std::string_view input) {
  std::vector<std::string_view> segments;
  const bool absolute = input.starts_with('/');
  if (absolute) input.remove_prefix(1);
  bool directory = false;  // the path ends in '/' (or in a dot segment, which stands for one)
  while (true) {
    const std::size_t slash = input.find('/');
    const std::string_view segment = input.substr(0, slash);
    const bool last = slash == std::string_view::npos;
    const int dot_count = dots(segment);
    if (dot_count == 1) {
      directory = last;
    } else if (dot_count == 2) {
      if (!segments.empty()) segments.pop_back();
      directory = last;
    } else {
      segments.push_back(segment);
      directory = false;
    }
    if (last) break;
    input.remove_prefix(slash + 1);
  }
  std::string out = absolute ? "/" : "";
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (i > 0) out.push_back('/');
    out.append(segments[i]);
  }
  if (directory && !out.ends_with('/')) out.push_back('/');
  return out;
}

}  // namespace

std::optional<SameHostTarget> same_host_target(std::string_view reference, std::string_view host,
                                               std::string_view path, std::string_view query) {
  const auto parsed = boost::urls::parse_uri_reference(trim_ows(reference));
  if (!parsed) return std::nullopt;
  if (parsed->has_scheme()) {
    const std::string scheme = lower_case(parsed->scheme());
    if (scheme != "http" && scheme != "https") return std::nullopt;
  }
  if (parsed->has_authority() &&
      comparable_authority(parsed->encoded_authority()) != comparable_authority(host)) {
    return std::nullopt;
  }
  // RFC 3986 §5.2, on the encoded path: Boost.URL's resolve() decodes some escapes (%2F among them), and
  // "/a%2Fb" is not the resource "/a/b".
  const std::string_view reference_path = parsed->encoded_path();
  SameHostTarget target;
  if (parsed->has_authority() || reference_path.starts_with('/')) {
    target.path = remove_dot_segments(reference_path);
    target.query = std::string(parsed->encoded_query());
  } else if (reference_path.empty()) {
    target.path = std::string(path.empty() ? std::string_view("/") : path);
    target.query = parsed->has_query() ? std::string(parsed->encoded_query()) : std::string(query);
  } else {
    const std::string_view base = path.empty() ? std::string_view("/") : path;
    std::string merged(base.substr(0, base.rfind('/') + 1));
    merged.append(reference_path);
    target.path = remove_dot_segments(merged);
    target.query = std::string(parsed->encoded_query());
  }
  if (target.path.empty()) target.path = "/";
  return target;
}

}  // namespace apigw::http
