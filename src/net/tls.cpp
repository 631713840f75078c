// Client TLS over a data-plane connection (see tls.h), and the reads and writes through it (tls_io.h).
#include "apigw/net/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <mutex>
#include <stdexcept>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>

#include "apigw/http/client_address.h"
#include "tls_io.h"

namespace apigw::net {
namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using boost::system::error_code;

namespace {
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

// The connection's session cache, for the callback that hands over each new session (SSL ex_data).
int session_cache_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// OpenSSL calls this with every session a server gives (TLS 1.3 tickets come after the handshake, with the
// first response): the connection's cache keeps the latest. Returning 1 takes the reference OpenSSL passed.
int keep_new_session(SSL* ssl, SSL_SESSION* session) {
  auto* cache = static_cast<TlsSessionCache*>(SSL_get_ex_data(ssl, session_cache_index()));
  if (cache == nullptr) return 0;
  cache->keep(reinterpret_cast<TlsSessionCache::Session*>(session));
  return 1;
}

std::string openssl_reason(const error_code& error) {
  if (error.category() == asio::error::get_ssl_category()) {
    const char* reason = ERR_reason_error_string(static_cast<unsigned long>(error.value()));
    if (reason != nullptr) return reason;
  }
  return error.message();
}
}  // namespace

struct TlsClientContext::Impl {
  ssl::context context{ssl::context::tls_client};
};

// Live contexts by configuration, so that equal configurations share one (and its trust anchors).
namespace {
struct ContextRegistry {
  std::mutex mutex;
  std::vector<std::weak_ptr<TlsClientContext>> contexts;
};
ContextRegistry& registry() {
  static ContextRegistry instance;
  return instance;
}
}  // namespace

TlsClientContext::TlsClientContext(const config::TlsClientConfig& config)
    : config_(config), impl_(std::make_unique<Impl>()) {}

TlsClientContext::~TlsClientContext() = default;

std::shared_ptr<TlsClientContext> TlsClientContext::get(const config::TlsClientConfig& config, std::string& error) {
  ContextRegistry& live = registry();
  std::lock_guard lock(live.mutex);
  std::erase_if(live.contexts, [](const std::weak_ptr<TlsClientContext>& entry) { return entry.expired(); });
  for (const auto& entry : live.contexts) {
    if (auto context = entry.lock(); context && context->config() == config) return context;
  }

  std::shared_ptr<TlsClientContext> made(new TlsClientContext(config));
  ssl::context& context = made->impl().context;
  SSL_CTX* native = context.native_handle();
  error_code failed;
  context.set_options(ssl::context::default_workarounds | ssl::context::no_compression, failed);
  if (!failed && config.ca) {
    context.add_certificate_authority(asio::buffer(config.ca->pem), failed);
  } else if (!failed) {
    context.set_default_verify_paths(failed);
  }
  if (!failed && config.cert) context.use_certificate_chain(asio::buffer(config.cert->pem), failed);
  if (!failed && config.key) context.use_private_key(asio::buffer(config.key->pem), ssl::context::pem, failed);
  if (failed) {
    error = openssl_reason(failed);
    return nullptr;
  }
  context.set_verify_mode(config.verify ? ssl::verify_peer : ssl::verify_none);
  SSL_CTX_set_min_proto_version(native,
                                config.min_version == config::TlsVersion::k13 ? TLS1_3_VERSION : TLS1_2_VERSION);
  static constexpr unsigned char kAlpn[] = "\x08http/1.1";
  SSL_CTX_set_alpn_protos(native, kAlpn, sizeof kAlpn - 1);
  // Sessions are kept per peer by apigw (TlsSessionCache), not in OpenSSL's cache keyed by nothing useful here.
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(native, keep_new_session);
  live.contexts.push_back(made);
  return made;
}

std::shared_ptr<TlsClientContext> TlsClientContext::require(const config::TlsClientConfig& config) {
  std::string error;
  auto context = get(config, error);
  if (!context) throw std::runtime_error("TLS context refused by OpenSSL: " + error);
  return context;
}

TlsSessionCache::~TlsSessionCache() {
  if (latest_ != nullptr) SSL_SESSION_free(reinterpret_cast<SSL_SESSION*>(latest_));
}

void TlsSessionCache::keep(Session* session) {
  if (latest_ != nullptr) SSL_SESSION_free(reinterpret_cast<SSL_SESSION*>(latest_));
  latest_ = session;
}

struct TlsStream {
  TlsStream(asio::ip::tcp::socket& socket, std::shared_ptr<TlsClientContext> client_context,
            std::shared_ptr<TlsSessionCache> session_cache)
      : context(std::move(client_context)),
        sessions(std::move(session_cache)),
        stream(socket, context->impl().context) {}

  // A connection is closed without a close_notify (the upstream needs none: HTTP/1.1 frames its messages).
  // Marked as shut down, OpenSSL does not take its session for a bad one: otherwise freeing it would make the
  // session it holds, the latest ticket the endpoint gave, unresumable.
  ~TlsStream() { SSL_set_shutdown(stream.native_handle(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN); }

  std::shared_ptr<TlsClientContext> context;  // outlives the stream's SSL object
  std::shared_ptr<TlsSessionCache> sessions;  // where the callback puts new sessions, while the stream lives
  ssl::stream<asio::ip::tcp::socket&> stream;
};

void TlsStreamDelete::operator()(TlsStream* stream) const { delete stream; }

std::string tls_server_name(std::string_view sni, std::string_view host) {
  if (!sni.empty()) return std::string(sni);
  if (http::parse_ip(host).size != 0) return {};
  return std::string(host);
}

asio::awaitable<error_code> tls_handshake(Connection& connection, std::shared_ptr<TlsClientContext> context,
                                          TlsPeer peer, std::shared_ptr<TlsSessionCache> sessions,
                                          std::string& failure) {
  connection.tls.reset(new TlsStream(connection.socket, std::move(context), std::move(sessions)));
  TlsStream& tls = *connection.tls;
  SSL* ssl = tls.stream.native_handle();
  const config::TlsClientConfig& config = tls.context->config();
  if (!peer.server_name.empty()) {
    const std::string name(peer.server_name);
    SSL_set_tlsext_host_name(ssl, name.c_str());
    if (config.verify) SSL_set1_host(ssl, name.c_str());
  } else if (config.verify) {
    const std::string address(peer.address);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), address.c_str());
  }
  if (tls.sessions) {
    SSL_set_ex_data(ssl, session_cache_index(), tls.sessions.get());
    if (auto* session = tls.sessions->latest()) SSL_set_session(ssl, reinterpret_cast<SSL_SESSION*>(session));
  }
  auto [error] = co_await tls.stream.async_handshake(ssl::stream_base::client, kNoThrow);
  if (!error) {
    if (tls.sessions && SSL_session_reused(ssl)) ++tls.sessions->resumed;
    co_return error;
  }
  const long verified = SSL_get_verify_result(ssl);
  if (config.verify && verified != X509_V_OK) {
    failure = std::string("certificate verify failed: ") + X509_verify_cert_error_string(verified);
  } else if (error == asio::error::operation_aborted) {
    failure = "handshake cancelled";
  } else {
    failure = openssl_reason(error);
  }
  co_return error;
}

namespace detail {

asio::awaitable<std::tuple<error_code, std::size_t>> tls_read_some(Connection& connection,
                                                                   asio::mutable_buffer buffer) {
  auto [error, n] = co_await connection.tls->stream.async_read_some(buffer, kNoThrow);
  // A peer that closes without close_notify ends the stream as far as HTTP/1.1 is concerned: its messages carry
  // their own framing, and a body that ends with the connection is read as such by every HTTPS client.
  if (error == ssl::error::stream_truncated) error = asio::error::eof;
  co_return std::tuple{error, n};
}

asio::awaitable<std::tuple<error_code, std::size_t>> tls_write(Connection& connection,
                                                               std::span<const asio::const_buffer> buffers,
                                                               std::size_t written) {
  boost::beast::buffers_suffix<std::span<const asio::const_buffer>> rest(buffers);
  rest.consume(written);
  auto [error, n] = co_await asio::async_write(connection.tls->stream, rest, kNoThrow);
  co_return std::tuple{error, written + n};
}

}  // namespace detail
}  // namespace apigw::net
