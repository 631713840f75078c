// Client TLS over a data-plane connection (see tls.h), and the reads and writes through it (tls_io.h).
#include "apigw/net/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <new>
#include <stdexcept>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "apigw/http/client_address.h"
#include "apigw/net/no_throw.h"
#include "apigw/net/readiness.h"
#include "tls_io.h"

namespace apigw::net {
namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using boost::system::error_code;

namespace {

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

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};

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

struct TlsServerContext::Impl {
  ssl::context context{ssl::context::tls_server};
};

namespace {
// Live contexts by configuration, so that equal configurations share one (and its trust anchors, and for a server
// its session ticket keys).
template <typename Context>
struct ContextRegistry {
  std::mutex mutex;
  std::vector<std::weak_ptr<Context>> contexts;

  static ContextRegistry& instance() {
    static ContextRegistry registry;
    return registry;
  }

  template <typename Config, typename Make>
  std::shared_ptr<Context> get(const Config& config, Make make) {
    std::lock_guard lock(mutex);
    std::erase_if(contexts, [](const std::weak_ptr<Context>& entry) { return entry.expired(); });
    for (const auto& entry : contexts) {
      if (auto context = entry.lock(); context && context->config() == config) return context;
    }
    std::shared_ptr<Context> made = make();
    if (made) contexts.push_back(made);
    return made;
  }
};

// What every context has: no compression, the oldest version allowed, and writes that may end after whole
// records, from a buffer that may move between the attempts (tls_write_now gathers small pieces anew).
void set_common(ssl::context& context, config::TlsVersion min_version, error_code& failed) {
  context.set_options(ssl::context::default_workarounds | ssl::context::no_compression, failed);
  SSL_CTX* native = context.native_handle();
  SSL_CTX_set_min_proto_version(native, min_version == config::TlsVersion::k13 ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_mode(native, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Whole socket reads, not one for each record's header and one for its body.
  SSL_CTX_set_read_ahead(native, 1);
}

// ALPN on a listener: http/1.1 when the client offers it; a client that offers only others goes on without ALPN.
int select_http1(SSL*, const unsigned char** out, unsigned char* out_size, const unsigned char* offered,
                 unsigned int offered_size, void*) {
  static constexpr unsigned char kHttp1[] = "\x08http/1.1";
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_size, kHttp1, sizeof kHttp1 - 1, offered, offered_size) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}
}  // namespace

TlsClientContext::TlsClientContext(const config::TlsClientConfig& config)
    : config_(config), impl_(std::make_unique<Impl>()) {}

TlsClientContext::~TlsClientContext() = default;

std::shared_ptr<TlsClientContext> TlsClientContext::get(const config::TlsClientConfig& config, std::string& error) {
  return ContextRegistry<TlsClientContext>::instance().get(config, [&]() -> std::shared_ptr<TlsClientContext> {
    std::shared_ptr<TlsClientContext> made(new TlsClientContext(config));
    ssl::context& context = made->impl().context;
    SSL_CTX* native = context.native_handle();
    error_code failed;
    set_common(context, config.min_version, failed);
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
    static constexpr unsigned char kAlpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(native, kAlpn, sizeof kAlpn - 1);
    // Sessions are kept per peer by apigw (TlsSessionCache), not in OpenSSL's cache keyed by nothing useful here.
    SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(native, keep_new_session);
    return made;
  });
}

std::shared_ptr<TlsClientContext> TlsClientContext::require(const config::TlsClientConfig& config) {
  std::string error;
  auto context = get(config, error);
  if (!context) throw std::runtime_error("TLS context refused by OpenSSL: " + error);
  return context;
}

TlsServerContext::TlsServerContext(const config::TlsServerConfig& config)
    : config_(config), impl_(std::make_unique<Impl>()) {}

TlsServerContext::~TlsServerContext() = default;

std::shared_ptr<TlsServerContext> TlsServerContext::get(const config::TlsServerConfig& config, std::string& error) {
  return ContextRegistry<TlsServerContext>::instance().get(config, [&]() -> std::shared_ptr<TlsServerContext> {
    std::shared_ptr<TlsServerContext> made(new TlsServerContext(config));
    ssl::context& context = made->impl().context;
    SSL_CTX* native = context.native_handle();
    error_code failed;
    set_common(context, config.min_version, failed);
    if (!failed) context.use_certificate_chain(asio::buffer(config.cert.pem), failed);
    if (!failed) context.use_private_key(asio::buffer(config.key.pem), ssl::context::pem, failed);
    if (!failed && config.client_ca) context.add_certificate_authority(asio::buffer(config.client_ca->pem), failed);
    if (failed) {
      error = openssl_reason(failed);
      return nullptr;
    }
    if (config.client_ca) {
      context.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
      // The issuers a client may choose its certificate by.
      STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
      std::unique_ptr<BIO, BioFree> pem(BIO_new_mem_buf(config.client_ca->pem.data(),
                                                        static_cast<int>(config.client_ca->pem.size())));
      X509* certificate = nullptr;
      while (names != nullptr && pem &&
             (certificate = PEM_read_bio_X509(pem.get(), nullptr, nullptr, nullptr)) != nullptr) {
        sk_X509_NAME_push(names, X509_NAME_dup(X509_get_subject_name(certificate)));
        X509_free(certificate);
      }
      ERR_clear_error();
      if (names != nullptr) SSL_CTX_set_client_CA_list(native, names);
    }
    // Resumption (tickets, and the server's cache for clients without them) across every worker; the context
    // id lets a session with a client certificate resume.
    static constexpr unsigned char kSessionContext[] = "apigw";
    SSL_CTX_set_session_id_context(native, kSessionContext, sizeof kSessionContext - 1);
    SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_SERVER);
    // An idle client connection holds no record buffers.
    SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_alpn_select_cb(native, select_http1, nullptr);
    return made;
  });
}

std::shared_ptr<TlsServerContext> TlsServerContext::require(const config::TlsServerConfig& config) {
  std::string error;
  auto context = get(config, error);
  if (!context) throw std::runtime_error("TLS context refused by OpenSSL: " + error);
  return context;
}

ssl::context& asio_context(TlsServerContext& context) { return context.impl().context; }

TlsSessionCache::~TlsSessionCache() {
  if (latest_ != nullptr) SSL_SESSION_free(reinterpret_cast<SSL_SESSION*>(latest_));
}

void TlsSessionCache::keep(Session* session) {
  if (latest_ != nullptr) SSL_SESSION_free(reinterpret_cast<SSL_SESSION*>(latest_));
  latest_ = session;
}

// The connection's TLS: OpenSSL directly over the socket through a BIO of apigw's own (recv and send with
// MSG_DONTWAIT, MSG_NOSIGNAL), so that a read or write is one SSL call that never waits, as on a plain socket, and
// the waiting is the worker loop's readiness (docs/decisions.md).
struct TlsStream {
  TlsStream(asio::ip::tcp::socket& tcp, SSL_CTX* context, std::shared_ptr<void> context_owner,
            std::shared_ptr<TlsSessionCache> session_cache, bool server_side);
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  std::shared_ptr<void> owner;  // the context, which outlives the SSL object
  std::shared_ptr<TlsSessionCache> sessions;  // where the callback puts new sessions, while the stream lives
  asio::ip::tcp::socket& socket;
  SSL* ssl = nullptr;
  bool server = false;
  bool established = false;  // the handshake finished
  bool drained = false;      // the last recv returned less than asked, or nothing
  int socket_error = 0;      // errno of the last recv or send that failed other than EAGAIN; 0 for a clean end
  // OpenSSL asks a write that could not finish to be called again with the same bytes: their length, else 0.
  std::size_t write_retry = 0;
};

namespace {

// The BIO: the stream's socket, without blocking and without SIGPIPE.
int bio_read(BIO* bio, char* data, int size) {
  auto* stream = static_cast<TlsStream*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  stream->socket_error = 0;
  for (;;) {
    const ssize_t n = ::recv(stream->socket.native_handle(), data, static_cast<std::size_t>(size), MSG_DONTWAIT);
    if (n > 0) {
      stream->drained = n < size;
      return static_cast<int>(n);
    }
    if (n == 0) return 0;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      stream->drained = true;
      BIO_set_retry_read(bio);
    } else {
      stream->socket_error = errno;
    }
    return -1;
  }
}

int bio_write(BIO* bio, const char* data, int size) {
  auto* stream = static_cast<TlsStream*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  stream->socket_error = 0;
  for (;;) {
    const ssize_t n =
        ::send(stream->socket.native_handle(), data, static_cast<std::size_t>(size), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return static_cast<int>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      BIO_set_retry_write(bio);
    } else {
      stream->socket_error = errno;
    }
    return -1;
  }
}

long bio_ctrl(BIO*, int command, long, void*) {
  return command == BIO_CTRL_FLUSH ? 1 : 0;  // writes are never buffered here
}

int bio_create(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

BIO_METHOD* socket_method() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* made = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "apigw socket");
    BIO_meth_set_read(made, bio_read);
    BIO_meth_set_write(made, bio_write);
    BIO_meth_set_ctrl(made, bio_ctrl);
    BIO_meth_set_create(made, bio_create);
    return made;
  }();
  return method;
}

// What an SSL call that returned failure means, once it is not a retry: eof for a close_notify or a peer that
// closed without one (HTTP/1.1 frames its messages, and a body that ends with the connection is read as such by
// every HTTPS client), the socket's error, or OpenSSL's.
error_code ssl_error(const TlsStream& tls, int code) {
  if (code == SSL_ERROR_ZERO_RETURN) return asio::error::eof;
  if (code == SSL_ERROR_SYSCALL) {
    const unsigned long queued = ERR_get_error();
    ERR_clear_error();
    if (queued != 0) return {static_cast<int>(queued), asio::error::get_ssl_category()};
    if (tls.socket_error != 0) return {tls.socket_error, boost::system::system_category()};
    return asio::error::eof;
  }
  const unsigned long queued = ERR_get_error();
  ERR_clear_error();
  if (queued == 0) return ssl::error::unexpected_result;
  return {static_cast<int>(queued), asio::error::get_ssl_category()};
}

enum class Want { kNothing, kRead, kWrite };

// The outcome of an SSL call that returned `result`: what to wait for, or the error.
Want outcome(const TlsStream& tls, int result, error_code& error) {
  const int code = SSL_get_error(tls.ssl, result);
  if (code == SSL_ERROR_WANT_READ) return Want::kRead;
  if (code == SSL_ERROR_WANT_WRITE) return Want::kWrite;
  error = ssl_error(tls, code);
  return Want::kNothing;
}

asio::awaitable<error_code> wait_for(asio::ip::tcp::socket& socket, Want want) {
  auto [error] = co_await socket.async_wait(
      want == Want::kRead ? asio::socket_base::wait_read : asio::socket_base::wait_write, kNoThrow);
  co_return error;
}

// Records read or written by a TLS call at most: small pieces of a write are gathered up to this into one record.
constexpr std::size_t kRecordBytes = 16 * 1024;

}  // namespace

TlsStream::TlsStream(asio::ip::tcp::socket& tcp, SSL_CTX* context, std::shared_ptr<void> context_owner,
                     std::shared_ptr<TlsSessionCache> session_cache, bool server_side)
    : owner(std::move(context_owner)), sessions(std::move(session_cache)), socket(tcp), server(server_side) {
  ssl = SSL_new(context);
  if (ssl == nullptr) throw std::bad_alloc();
  BIO* bio = BIO_new(socket_method());
  if (bio == nullptr) {
    SSL_free(ssl);
    throw std::bad_alloc();
  }
  BIO_set_data(bio, this);
  SSL_set_bio(ssl, bio, bio);
  if (server) {
    SSL_set_accept_state(ssl);
  } else {
    SSL_set_connect_state(ssl);
  }
}

// A client connection is closed without a close_notify (the upstream needs none: HTTP/1.1 frames its messages).
// Marked as shut down, OpenSSL does not take its session for a bad one: otherwise freeing it would make the
// session it holds, the latest ticket the endpoint gave, unresumable. A server connection says close_notify once,
// if the socket takes it now, as NGINX does.
TlsStream::~TlsStream() {
  if (server && established && socket.is_open() && (SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN) == 0) {
    ERR_clear_error();
    SSL_shutdown(ssl);
    ERR_clear_error();
  }
  SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  SSL_free(ssl);
}

void TlsStreamDelete::operator()(TlsStream* stream) const { delete stream; }

std::string tls_server_name(std::string_view sni, std::string_view host) {
  if (!sni.empty()) return std::string(sni);
  if (http::parse_ip(host).size != 0) return {};
  return std::string(host);
}

namespace {
std::string handshake_failure(SSL* ssl, bool verifying, const error_code& error) {
  const long verified = SSL_get_verify_result(ssl);
  if (verifying && verified != X509_V_OK) {
    return std::string("certificate verify failed: ") + X509_verify_cert_error_string(verified);
  }
  if (error == asio::error::operation_aborted) return "handshake cancelled";
  if (error == asio::error::eof) return "the peer closed the connection during the handshake";
  return openssl_reason(error);
}
}  // namespace

asio::awaitable<error_code> tls_handshake(Connection& connection, std::shared_ptr<TlsClientContext> context,
                                          TlsPeer peer, std::shared_ptr<TlsSessionCache> sessions,
                                          std::string& failure) {
  SSL_CTX* native = context->impl().context.native_handle();
  const config::TlsClientConfig& config = context->config();
  connection.tls.reset(new TlsStream(connection.socket, native, context, std::move(sessions), false));
  TlsStream& tls = *connection.tls;
  SSL* ssl = tls.ssl;
  // Whom to verify: a handshake that cannot say so does not run, rather than check the chain alone.
  bool named = true;
  if (!peer.server_name.empty()) {
    const std::string name(peer.server_name);
    named = SSL_set_tlsext_host_name(ssl, name.c_str()) == 1 &&
            (!config.verify || SSL_set1_host(ssl, name.c_str()) == 1);
  } else if (config.verify) {
    const std::string address(peer.address);
    named = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), address.c_str()) == 1;
  }
  if (!named) {
    ERR_clear_error();
    failure = "cannot verify the peer as '" + std::string(peer.server_name.empty() ? peer.address : peer.server_name) +
              "'";
    co_return asio::error::invalid_argument;
  }
  if (tls.sessions) {
    SSL_set_ex_data(ssl, session_cache_index(), tls.sessions.get());
    if (auto* session = tls.sessions->latest()) SSL_set_session(ssl, reinterpret_cast<SSL_SESSION*>(session));
  }
  error_code error;
  for (;;) {
    ERR_clear_error();
    const int result = SSL_do_handshake(ssl);
    if (result == 1) break;
    const Want want = outcome(tls, result, error);
    if (want == Want::kNothing) break;
    // Waits cancellable by the caller's timer (as the rest of a connect is).
    error = co_await wait_for(connection.socket, want);
    if (error) break;
  }
  if (!error) {
    tls.established = true;
    if (tls.sessions && SSL_session_reused(ssl)) ++tls.sessions->resumed;
    co_return error;
  }
  failure = handshake_failure(ssl, config.verify, error);
  co_return error;
}

void tls_accept_begin(Connection& connection, std::shared_ptr<TlsServerContext> context) {
  SSL_CTX* native = context->impl().context.native_handle();
  connection.tls.reset(new TlsStream(connection.socket, native, std::move(context), nullptr, true));
}

TlsStep tls_accept_now(Connection& connection, std::string& failure) {
  TlsStream& tls = *connection.tls;
  if (tls.established) return TlsStep::kDone;
  ERR_clear_error();
  const int result = SSL_do_handshake(tls.ssl);
  if (result == 1) {
    tls.established = true;
    return TlsStep::kDone;
  }
  error_code error;
  const Want want = outcome(tls, result, error);
  if (want == Want::kRead) return TlsStep::kWantRead;
  if (want == Want::kWrite) return TlsStep::kWantWrite;
  if (error == asio::error::eof || error == asio::error::connection_reset) return TlsStep::kClosed;
  if (error.category() == asio::error::get_ssl_category()) {
    const int reason = ERR_GET_REASON(static_cast<unsigned long>(error.value()));
    if (reason == SSL_R_HTTP_REQUEST || reason == SSL_R_HTTPS_PROXY_REQUEST) return TlsStep::kPlainHttp;
  }
  failure = handshake_failure(tls.ssl, SSL_get_verify_mode(tls.ssl) != SSL_VERIFY_NONE, error);
  return TlsStep::kFailed;
}

bool tls_established(const Connection& connection) { return connection.tls && connection.tls->established; }

bool tls_resumed(const Connection& connection) {
  return connection.tls && SSL_session_reused(connection.tls->ssl) == 1;
}

std::string tls_peer_subject(const Connection& connection) {
  if (!connection.tls) return {};
  X509* peer = SSL_get0_peer_certificate(connection.tls->ssl);
  if (peer == nullptr) return {};
  char text[256];
  X509_NAME_oneline(X509_get_subject_name(peer), text, sizeof text);
  return text;
}

namespace detail {

std::size_t tls_read_now(Connection& connection, asio::mutable_buffer buffer, error_code& error) {
  TlsStream& tls = *connection.tls;
  std::size_t n = 0;
  ERR_clear_error();
  const int result = SSL_read_ex(tls.ssl, buffer.data(), buffer.size(), &n);
  if (result == 1) {
    // Bytes OpenSSL holds already (read ahead) come with no new edge.
    connection.drained = tls.drained && SSL_has_pending(tls.ssl) == 0;
    return n;
  }
  connection.drained = true;
  outcome(tls, result, error);
  return 0;
}

asio::awaitable<std::tuple<error_code, std::size_t>> tls_read_some(Connection& connection,
                                                                   asio::mutable_buffer buffer) {
  TlsStream& tls = *connection.tls;
  bool waited = !connection.drained || SSL_has_pending(tls.ssl) == 1;
  for (;;) {
    if (waited) {
      std::size_t n = 0;
      ERR_clear_error();
      const int result = SSL_read_ex(tls.ssl, buffer.data(), buffer.size(), &n);
      if (result == 1) {
        connection.drained = tls.drained && SSL_has_pending(tls.ssl) == 0;
        co_return std::tuple{error_code(), n};
      }
      error_code error;
      const Want want = outcome(tls, result, error);
      if (want == Want::kNothing) co_return std::tuple{error, std::size_t{0}};
      if (want == Want::kWrite) {
        error = co_await wait_for(connection.socket, want);
        if (error) co_return std::tuple{error, std::size_t{0}};
        continue;
      }
    }
    waited = true;
    auto [wait_error] = co_await async_wait_readable(connection.socket, kNoThrow);
    if (wait_error) co_return std::tuple{wait_error, std::size_t{0}};
  }
}

std::size_t tls_write_now(Connection& connection, std::span<const asio::const_buffer> buffers, std::size_t written,
                          error_code& error, bool& wants_read) {
  TlsStream& tls = *connection.tls;
  thread_local char gathered[kRecordBytes];
  std::size_t index = 0;
  std::size_t offset = written;
  std::size_t done = 0;
  for (;;) {
    while (index < buffers.size() && offset >= buffers[index].size()) offset -= buffers[index++].size();
    if (index == buffers.size()) return done;
    const auto* first = static_cast<const char*>(buffers[index].data()) + offset;
    const std::size_t first_size = buffers[index].size() - offset;
    const std::size_t wanted = tls.write_retry != 0 ? tls.write_retry : kRecordBytes;
    const char* data = first;
    std::size_t size = std::min(first_size, wanted);
    // Small pieces (a head, then a body) go out as one record, and one send.
    if (first_size < wanted && index + 1 < buffers.size()) {
      size = 0;
      std::size_t at = index;
      std::size_t skip = offset;
      while (at < buffers.size() && size < wanted) {
        const std::size_t take = std::min(buffers[at].size() - skip, wanted - size);
        if (take > 0) std::memcpy(gathered + size, static_cast<const char*>(buffers[at].data()) + skip, take);
        size += take;
        skip = 0;
        ++at;
      }
      data = gathered;
    }
    std::size_t n = 0;
    ERR_clear_error();
    const int result = SSL_write_ex(tls.ssl, data, size, &n);
    if (result == 1) {
      tls.write_retry = 0;
      done += n;
      offset += n;
      continue;
    }
    const Want want = outcome(tls, result, error);
    if (want != Want::kNothing) tls.write_retry = size;
    wants_read = want == Want::kRead;
    return done;
  }
}

void tls_close_notify(Connection& connection) {
  TlsStream& tls = *connection.tls;
  if (!tls.established || (SSL_get_shutdown(tls.ssl) & SSL_SENT_SHUTDOWN) != 0) return;
  ERR_clear_error();
  SSL_shutdown(tls.ssl);
  ERR_clear_error();
}

asio::awaitable<std::tuple<error_code, std::size_t>> tls_write(Connection& connection,
                                                               std::span<const asio::const_buffer> buffers,
                                                               std::size_t written) {
  const std::size_t total = asio::buffer_size(buffers);
  for (;;) {
    error_code error;
    bool wants_read = false;
    written += tls_write_now(connection, buffers, written, error, wants_read);
    if (error || written == total) co_return std::tuple{error, written};
    error = co_await wait_for(connection.socket, wants_read ? Want::kRead : Want::kWrite);
    if (error) co_return std::tuple{error, written};
  }
}

}  // namespace detail
}  // namespace apigw::net
