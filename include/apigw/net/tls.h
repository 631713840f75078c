// TLS on a data-plane connection, as a client (upstreams; Redis, Memcached and the audit sink build on the same) and
// on the listener: OpenSSL over the connection's socket, so that net's reads and writes (socket_io.h) go through it
// once a handshake began, waiting on the worker loop's readiness as plain reads and writes do. The contexts are
// OpenSSL's, built from a config::TlsClientConfig (trust anchors, the configured ones or the system's; a client
// certificate for mutual TLS; the minimum version; ALPN http/1.1; verification of the chain and of the peer's name
// or address) or a config::TlsServerConfig (the certificate chain and key, the minimum version, the CA client
// certificates must come from). Client sessions are resumed per peer (TlsSessionCache); a listener's by tickets.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include "apigw/config/tls_config.h"
#include "apigw/net/socket_io.h"

namespace apigw::net {

// One client configuration made usable. Contexts are shared by every connection (and worker) with an equal
// configuration: OpenSSL's contexts are safe to use from several threads, and reading the trust anchors is
// costly (the system's bundle holds over a hundred certificates).
class TlsClientContext {
 public:
  // The live context for `config`, or a new one; null with `error` set when OpenSSL refuses a part of it.
  static std::shared_ptr<TlsClientContext> get(const config::TlsClientConfig& config, std::string& error);
  // get() for a configuration already built when it was loaded (app::load_snapshot keeps those contexts until
  // the workers hold them): finds it. Throws std::runtime_error if OpenSSL refuses it after all, rather than let a
  // connection go without the TLS its config asks for.
  static std::shared_ptr<TlsClientContext> require(const config::TlsClientConfig& config);

  ~TlsClientContext();
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;

  const config::TlsClientConfig& config() const { return config_; }
  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  explicit TlsClientContext(const config::TlsClientConfig& config);
  config::TlsClientConfig config_;
  std::unique_ptr<Impl> impl_;
};

// One listener configuration made usable (`server.tls`, `admin.tls`), shared as client contexts are: every worker
// uses the one context, so a session ticket from one is good at another.
class TlsServerContext {
 public:
  static std::shared_ptr<TlsServerContext> get(const config::TlsServerConfig& config, std::string& error);
  static std::shared_ptr<TlsServerContext> require(const config::TlsServerConfig& config);

  ~TlsServerContext();
  TlsServerContext(const TlsServerContext&) = delete;
  TlsServerContext& operator=(const TlsServerContext&) = delete;

  const config::TlsServerConfig& config() const { return config_; }
  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  explicit TlsServerContext(const config::TlsServerConfig& config);
  config::TlsServerConfig config_;
  std::unique_ptr<Impl> impl_;
};

// The latest resumable session one peer gave: offered at the next handshake with it, replaced by each new
// ticket. One per endpoint and pool; used on the pool's thread only.
class TlsSessionCache {
 public:
  TlsSessionCache() = default;
  ~TlsSessionCache();
  TlsSessionCache(const TlsSessionCache&) = delete;
  TlsSessionCache& operator=(const TlsSessionCache&) = delete;

  struct Session;
  void keep(Session* session);
  Session* latest() const { return latest_; }
  std::uint64_t resumed = 0;  // handshakes that resumed the offered session

 private:
  Session* latest_ = nullptr;
};

// The server name a handshake sends and verifies: `sni` when configured, else `host` when it is a DNS name (an IP
// literal gets none: its address is verified instead).
std::string tls_server_name(std::string_view sni, std::string_view host);

// Whom a handshake is with: the name to send (SNI) and verify, or the address to verify when there is no name.
struct TlsPeer {
  std::string_view server_name;  // a DNS name; empty: no SNI, and `address` is verified instead
  std::string_view address;      // the endpoint's IP literal
};

// Runs the client handshake on `connection`'s connected socket. On failure the error is returned and `failure`
// says why in words (the certificate check that failed, or the alert or OpenSSL reason); the caller closes the
// connection. Cancelling the socket ends it with operation_aborted.
boost::asio::awaitable<boost::system::error_code> tls_handshake(Connection& connection,
                                                                std::shared_ptr<TlsClientContext> context,
                                                                TlsPeer peer,
                                                                std::shared_ptr<TlsSessionCache> sessions,
                                                                std::string& failure);

// A listener's side of a connection just accepted: tls_accept_now then drives the handshake, one step per
// readiness, and every read and write goes through TLS from then on.
void tls_accept_begin(Connection& connection, std::shared_ptr<TlsServerContext> context);

enum class TlsStep { kDone, kWantRead, kWantWrite, kFailed, kPlainHttp, kClosed };
// Runs the server handshake as far as the socket allows now: done, what to wait for, or failed with `failure`
// saying why (the certificate check that failed, the alert or OpenSSL's reason); kPlainHttp when the client spoke
// plain HTTP instead (it may be answered in plain HTTP, on the socket itself); kClosed when the client closed the
// connection without a word (a port probe, a client that gave up).
TlsStep tls_accept_now(Connection& connection, std::string& failure);

// Whether the connection's handshake resumed a session.
bool tls_resumed(const Connection& connection);

}  // namespace apigw::net
