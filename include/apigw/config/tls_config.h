// The `tls` blocks of the configuration: apigw as a TLS client (to an upstream, Redis, Memcached, the audit sink)
// and on a listener. The files they name are read and checked when the config is loaded, at start and at every
// reload: the typed config holds their text, so what a reload checked is exactly what its connections use.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace apigw::config {

// A PEM file a `tls` block names: its path (for messages) and its text as read at load.
struct PemFile {
  std::string path;
  std::string pem;
  bool operator==(const PemFile&) const = default;
};

enum class TlsVersion { k12, k13 };

// A client `tls` block: how apigw opens TLS to a server.
struct TlsClientConfig {
  std::string sni;  // the server name sent and verified; empty: the endpoint's host name (none for an IP literal)
  bool verify = true;            // verify the peer's chain and name
  std::optional<PemFile> ca;     // trust anchors; nullopt: the system's
  std::optional<PemFile> cert;   // a client certificate (mutual TLS), always with `key`
  std::optional<PemFile> key;
  TlsVersion min_version = TlsVersion::k12;
  std::int64_t cert_not_after = 0;  // the client certificate's expiry, Unix seconds; 0 without one
  bool operator==(const TlsClientConfig&) const = default;
};

// A listener's `tls` block (`server.tls`, `admin.tls`).
struct TlsServerConfig {
  PemFile cert;  // the certificate chain, leaf first
  PemFile key;
  TlsVersion min_version = TlsVersion::k12;
  std::optional<PemFile> client_ca;  // when set, clients must present a certificate it issued
  std::int64_t cert_not_after = 0;
  bool operator==(const TlsServerConfig&) const = default;
};

}  // namespace apigw::config
