// The HTTP/1.1 client exchange (see http_client.h).
#include "apigw/upstream/http_client.h"

#include <array>
#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/error.hpp>

#include "apigw/net/no_throw.h"
#include "apigw/net/socket_io.h"

namespace apigw::upstream {
namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using boost::system::error_code;

namespace {
using net::kNoThrow;
constexpr std::size_t kTypicalResponseFields = 16;
constexpr std::size_t kScratchBytes = 16 * 1024;
}  // namespace

TlsTarget tls_target(std::shared_ptr<net::TlsClientContext> context, const config::ResolvedEndpoint& endpoint) {
  TlsTarget target;
  target.server_name = net::tls_server_name(context->config().sni, endpoint.host);
  target.address = endpoint.address;
  target.context = std::move(context);
  return target;
}

asio::awaitable<error_code> connect(UpstreamConnection& connection, const asio::ip::tcp::endpoint& address,
                                    std::chrono::steady_clock::time_point deadline, const TlsTarget* tls,
                                    std::string* tls_failure) {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(connection.socket.get_executor(), deadline);
  // Whichever ends first cancels the other.
  auto outcome = co_await (connection.socket.async_connect(address, kNoThrow) || timer.async_wait(kNoThrow));
  error_code error = outcome.index() == 1 ? error_code(asio::error::timed_out) : std::get<0>(std::get<0>(outcome));
  if (!error) connection.socket.set_option(asio::ip::tcp::no_delay(true), error);
  if (!error && tls) {
    std::string failure;
    auto handshake = co_await (net::tls_handshake(connection, tls->context, {tls->server_name, tls->address},
                                                  tls->sessions, failure) ||
                               timer.async_wait(kNoThrow));
    // A handshake that runs out of time fails as a connect that does (timed_out); any other failure is TLS's.
    error = handshake.index() == 1 ? error_code(asio::error::timed_out) : std::get<0>(handshake);
    if (error && error != asio::error::timed_out && tls_failure) *tls_failure = std::move(failure);
  }
  if (error) {
    error_code ignored;
    connection.tls.reset();
    connection.socket.close(ignored);
  }
  co_return error;
}

asio::awaitable<std::tuple<error_code, std::size_t>> send_request(UpstreamConnection& connection,
                                                                  std::span<const asio::const_buffer> buffers,
                                                                  std::size_t sent) {
  error_code error;
  const std::size_t n = sent == 0 ? net::write_now(connection, buffers, error) : sent;
  if (error || n == asio::buffer_size(buffers)) co_return std::tuple{error, n};
  co_return co_await net::write_rest(connection, buffers, n);
}

ExchangeDeadline::ExchangeDeadline(const asio::any_io_executor& executor,
                                   std::chrono::steady_clock::time_point deadline)
    : state_(std::make_shared<State>()), timer_(executor, deadline) {
  timer_.async_wait([state = state_](const error_code& error) {
    if (error) return;
    state->expired = true;
    if (state->socket != nullptr) {
      error_code ignored;
      state->socket->cancel(ignored);
    }
  });
}

ExchangeDeadline::~ExchangeDeadline() {
  state_->socket = nullptr;
  timer_.cancel();
}

ResponseReader::ResponseReader() { fields_.reserve(kTypicalResponseFields); }

asio::awaitable<error_code> ResponseReader::read_head(UpstreamConnection& connection, bool head_request,
                                                      bool& got_bytes, bool stop_at_interim) {
  for (;;) {
    parser_.emplace(fields_);
    parser_->header_limit(kMaxResponseHeadBytes);
    parser_->body_limit(boost::none);
    if (head_request) parser_->skip(true);
    const error_code error = co_await net::parse_some(connection, connection.buffer, *parser_, kUpstreamReadSize);
    got_bytes = got_bytes || parser_->got_some() || connection.buffer.size() > 0;
    if (error) co_return error;
    if (!parser_->is_header_done()) co_return bhttp::error::partial_message;
    if (parser_->status() == 101) co_return bhttp::error::bad_status;
    if (parser_->status() >= 200) co_return error_code{};
    if (stop_at_interim && parser_->status() != 100) co_return error_code{};
    // An interim response: the final one follows.
  }
}

asio::awaitable<error_code> ResponseReader::read_body(UpstreamConnection& connection, std::span<char> into,
                                                      std::size_t& got) {
  parser_->set_body_buffer(into.data(), into.size());
  // A body that ends with the connection needs the end of stream, which may have come with the last bytes read
  // and so brings no new readiness: look at the socket itself.
  if (parser_->need_eof()) connection.drained = false;
  error_code error = co_await net::parse_some(connection, connection.buffer, *parser_, kUpstreamReadSize);
  if (error == bhttp::error::need_buffer) error = {};
  got = into.size() - parser_->body_space();
  co_return error;
}

asio::awaitable<error_code> ResponseReader::read_rest(UpstreamConnection& connection,
                                                      const std::function<void(std::string_view)>& sink) {
  // One scratch buffer per thread serves every body read through.
  thread_local std::array<char, kScratchBytes> scratch;
  while (!parser_->is_done()) {
    std::size_t got = 0;
    if (const error_code error = co_await read_body(connection, scratch, got)) co_return error;
    if (sink && got > 0) sink({scratch.data(), got});
  }
  co_return error_code{};
}

bool is_protocol_error(const error_code& error) {
  return error.category() == make_error_code(bhttp::error::bad_method).category() &&
         error != bhttp::error::partial_message && error != bhttp::error::end_of_stream;
}

}  // namespace apigw::upstream
