// Parses an upstream response without building a field container: the status line and the fields are kept as
// views into the read buffer they were parsed from, valid until the next read into that buffer, which is all the
// forwarder needs to write the client's head. Body bytes are copied into a buffer the caller provides, as
// http::buffer_body does. Beast's basic_parser does the parsing and its checks (framing, limits, chunk syntax). A
// folded field value (obs-fold) is refused with bad_value: Beast unfolds it into storage that does not outlive the
// parse step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>

namespace apigw::http {

class ResponseParser : public boost::beast::http::basic_parser<false> {
 public:
  struct Field {
    boost::beast::http::field name;
    std::string_view name_text;
    std::string_view value;
  };

  // `fields` is storage the caller keeps across responses (so parsing allocates nothing once it has grown).
  explicit ResponseParser(std::vector<Field>& fields);

  unsigned status() const { return status_; }
  std::string_view reason() const { return reason_; }
  const std::vector<Field>& fields() const { return fields_; }

  // Where the next body bytes go; a parse step returns need_buffer once `size` bytes were stored.
  void set_body_buffer(char* data, std::size_t size) {
    body_data_ = data;
    body_space_ = size;
  }
  std::size_t body_space() const { return body_space_; }

 private:
  void on_request_impl(boost::beast::http::verb, boost::beast::string_view, boost::beast::string_view, int,
                       boost::system::error_code&) override {}
  void on_response_impl(int code, boost::beast::string_view reason, int version,
                        boost::system::error_code& ec) override;
  void on_field_impl(boost::beast::http::field name, boost::beast::string_view name_text,
                     boost::beast::string_view value, boost::system::error_code& ec) override;
  void on_header_impl(boost::system::error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, boost::system::error_code&) override {}
  std::size_t on_body_impl(boost::beast::string_view body, boost::system::error_code& ec) override;
  void on_chunk_header_impl(std::uint64_t, boost::beast::string_view, boost::system::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view body, boost::system::error_code& ec) override;
  void on_finish_impl(boost::system::error_code&) override {}

  std::size_t store_body(boost::beast::string_view body, boost::system::error_code& ec);

  std::vector<Field>& fields_;
  unsigned status_ = 0;
  std::string_view reason_;
  char* body_data_ = nullptr;
  std::size_t body_space_ = 0;
};

}  // namespace apigw::http
