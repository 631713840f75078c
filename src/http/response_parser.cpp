// Upstream response parsing into views (see response_parser.h).
#include "apigw/http/response_parser.h"

#include <algorithm>
#include <cstring>

#include <boost/beast/http/error.hpp>

#include "apigw/http/text.h"

namespace apigw::http {
namespace bhttp = boost::beast::http;

ResponseParser::ResponseParser(std::vector<Field>& fields) : fields_(fields) { fields_.clear(); }

void ResponseParser::on_response_impl(int code, boost::beast::string_view reason, int, boost::system::error_code&) {
  status_ = static_cast<unsigned>(code);
  reason_ = reason;
}

void ResponseParser::on_field_impl(bhttp::field name, boost::beast::string_view name_text,
                                   boost::beast::string_view value, boost::system::error_code& ec) {
  // A value that does not start right after the name's ':' and whitespace was folded (obs-fold): Beast then passes
  // an unfolded copy in a buffer of its own that is gone when this parse step returns, so no view may be kept.
  // RFC 9112 §5.2 lets a gateway refuse such a response (502), as apigw refuses obs-fold in requests.
  const char* start = name_text.data() + name_text.size() + 1;  // after the ':', still in the parsed bytes
  while (http::is_ows(*start)) ++start;
  if (!value.empty() && value.data() != start) {
    ec = bhttp::error::bad_value;
    return;
  }
  fields_.push_back(Field{name, name_text, value});
}

std::size_t ResponseParser::on_body_impl(boost::beast::string_view body, boost::system::error_code& ec) {
  return store_body(body, ec);
}

std::size_t ResponseParser::on_chunk_body_impl(std::uint64_t, boost::beast::string_view body,
                                               boost::system::error_code& ec) {
  return store_body(body, ec);
}

std::size_t ResponseParser::store_body(boost::beast::string_view body, boost::system::error_code& ec) {
  const std::size_t n = std::min(body.size(), body_space_);
  if (n > 0) std::memcpy(body_data_, body.data(), n);
  body_data_ += n;
  body_space_ -= n;
  if (n < body.size()) ec = bhttp::error::need_buffer;
  return n;
}

}  // namespace apigw::http
