// Reading a `tls` block and checking the files it names (see tls_section.h).
#include "tls_section.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <array>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "apigw/core/text_file.h"
#include "apigw/http/client_address.h"
#include "value_parsers.h"
#include "yaml_document.h"

namespace apigw::config {
namespace {

constexpr std::array<std::string_view, 6> kClientKeys{"sni", "verify", "ca", "cert", "key", "min_version"};
constexpr std::array<std::string_view, 4> kServerTlsKeys{"cert", "key", "min_version", "client_ca"};

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* certificate) const { X509_free(certificate); }
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;

std::unique_ptr<BIO, BioFree> memory_bio(const std::string& text) {
  return std::unique_ptr<BIO, BioFree>(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// Every certificate in a PEM text, in order (a chain: the leaf first).
std::vector<X509Ptr> certificates_in(const std::string& pem) {
  std::vector<X509Ptr> certificates;
  const auto bio = memory_bio(pem);
  while (X509* certificate = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    certificates.emplace_back(certificate);
  }
  ERR_clear_error();  // the end of the text reads as an error
  return certificates;
}

// The first private key in a PEM text; an encrypted key is refused (no passphrase is ever asked for).
KeyPtr key_in(const std::string& pem) {
  const auto bio = memory_bio(pem);
  const auto no_passphrase = [](char*, int, int, void*) { return 0; };
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  ERR_clear_error();
  return key;
}

std::int64_t unix_time(const ASN1_TIME* time) {
  std::tm parts{};
  if (ASN1_TIME_to_tm(time, &parts) != 1) return 0;
  return static_cast<std::int64_t>(timegm(&parts));
}

std::string utc_text(std::int64_t seconds) {
  const std::time_t time = static_cast<std::time_t>(seconds);
  std::tm parts{};
  gmtime_r(&time, &parts);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &parts);
  return text;
}

// The text of the file `field` names; a relative path is taken from the directory of the config file naming it.
std::optional<PemFile> read_pem_file(YamlReader& reader, const Field& field) {
  const auto path = reader.text(field);
  if (!path) return std::nullopt;
  std::filesystem::path full(*path);
  if (full.is_relative()) full = std::filesystem::path(reader.file()).parent_path() / full;
  PemFile file;
  file.path = full.lexically_normal().string();
  std::string why;
  if (!core::read_text_file(full, file.pem, why)) {
    reader.error(field.position, field.label + ": cannot read " + file.path + ": " + why);
    return std::nullopt;
  }
  return file;
}

// Trust anchors: at least one certificate.
std::optional<PemFile> read_ca(YamlReader& reader, const Field& field) {
  auto file = read_pem_file(reader, field);
  if (file && certificates_in(file->pem).empty()) {
    reader.error(field.position, field.label + ": " + file->path + " holds no PEM certificate");
    return std::nullopt;
  }
  return file;
}

// A certificate chain in force now; sets `not_after` to its leaf's expiry.
std::optional<PemFile> read_certificate(YamlReader& reader, const Field& field, std::int64_t& not_after) {
  auto file = read_pem_file(reader, field);
  if (!file) return std::nullopt;
  const std::vector<X509Ptr> chain = certificates_in(file->pem);
  if (chain.empty()) {
    reader.error(field.position, field.label + ": " + file->path + " holds no PEM certificate");
    return std::nullopt;
  }
  X509* leaf = chain.front().get();
  not_after = unix_time(X509_get0_notAfter(leaf));
  if (X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0) {
    reader.error(field.position, field.label + ": the certificate in " + file->path + " expired on " +
                                     utc_text(not_after));
    return std::nullopt;
  }
  if (X509_cmp_current_time(X509_get0_notBefore(leaf)) >= 0) {
    reader.error(field.position, field.label + ": the certificate in " + file->path + " is not valid before " +
                                     utc_text(unix_time(X509_get0_notBefore(leaf))));
    return std::nullopt;
  }
  return file;
}

std::optional<PemFile> read_key(YamlReader& reader, const Field& field) {
  auto file = read_pem_file(reader, field);
  if (file && !key_in(file->pem)) {
    reader.error(field.position,
                 field.label + ": " + file->path + " holds no unencrypted PEM private key");
    return std::nullopt;
  }
  return file;
}

// `cert` and `key` come together, and the key is the certificate's.
bool check_pair(YamlReader& reader, const Field& block, const std::optional<Field>& cert_field,
                const std::optional<Field>& key_field, const std::optional<PemFile>& cert,
                const std::optional<PemFile>& key) {
  if (cert_field.has_value() != key_field.has_value()) {
    const Field& given = cert_field ? *cert_field : *key_field;
    reader.error(given.key, block.label + ": cert and key go together (" + (cert_field ? "key" : "cert") +
                                " is missing)");
    return false;
  }
  if (!cert || !key) return !cert_field;
  const X509Ptr leaf = std::move(certificates_in(cert->pem).front());
  const KeyPtr private_key = key_in(key->pem);
  if (X509_check_private_key(leaf.get(), private_key.get()) != 1) {
    ERR_clear_error();
    reader.error(key_field->position,
                 key_field->label + ": the key in " + key->path + " does not match the certificate in " + cert->path);
    return false;
  }
  return true;
}

std::optional<TlsVersion> parse_tls_version(std::string_view text, std::string& why) {
  if (text == "1.2") return TlsVersion::k12;
  if (text == "1.3") return TlsVersion::k13;
  why = "'" + std::string(text) + "' is not a TLS version: \"1.2\" or \"1.3\"";
  return std::nullopt;
}

// A DNS name (RFC 6066 server names are never IP addresses).
std::optional<std::string> parse_server_name(std::string_view text, std::string& why) {
  if (http::parse_ip(text).size != 0) {
    why = "'" + std::string(text) + "' is an IP address; a server name is a DNS name (leave sni out for an address)";
    return std::nullopt;
  }
  bool ok = !text.empty() && text.size() <= 253 && text.front() != '.' && text.back() != '.';
  std::size_t label = 0;
  for (std::size_t i = 0; ok && i < text.size(); ++i) {
    const char c = text[i];
    if (c == '.') {
      ok = label > 0 && text[i - 1] != '-';
      label = 0;
      continue;
    }
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    ok = (alnum || (c == '-' && label > 0)) && ++label <= 63;
  }
  if (!ok || text.back() == '-') {
    why = "'" + std::string(text) + "' is not a DNS name";
    return std::nullopt;
  }
  return std::string(text);
}

}  // namespace

std::optional<TlsClientConfig> read_tls_client(YamlReader& reader, const Field& field) {
  if (!reader.expect_map(field)) return std::nullopt;
  TlsClientConfig tls;
  bool ok = true;
  std::optional<Field> cert_field;
  std::optional<Field> key_field;
  reader.for_each_field(field, kClientKeys, [&](std::string_view name, const Field& value) {
    if (name == "sni") {
      const auto sni = reader.value(value, parse_server_name);
      if (sni) tls.sni = *sni;
      ok = ok && sni;
    } else if (name == "min_version") {
      const auto version = reader.value(value, parse_tls_version);
      if (version) tls.min_version = *version;
      ok = ok && version;
    } else if (name == "verify") {
      const auto verify = reader.value(value, parse_bool);
      if (verify) tls.verify = *verify;
      ok = ok && verify;
      if (!tls.verify) {
        reader.warn(value.position, value.label + " is false: the peer's certificate and name are not checked");
      }
    } else if (name == "ca") {
      tls.ca = read_ca(reader, value);
      ok = ok && tls.ca;
    } else if (name == "cert") {
      cert_field = value;
      tls.cert = read_certificate(reader, value, tls.cert_not_after);
      ok = ok && tls.cert;
    } else {
      key_field = value;
      tls.key = read_key(reader, value);
      ok = ok && tls.key;
    }
  });
  ok = check_pair(reader, field, cert_field, key_field, tls.cert, tls.key) && ok;
  if (!ok) return std::nullopt;
  return tls;
}

std::optional<TlsServerConfig> read_tls_server(YamlReader& reader, const Field& field) {
  if (!reader.expect_map(field)) return std::nullopt;
  TlsServerConfig tls;
  bool ok = true;
  std::optional<Field> cert_field;
  std::optional<Field> key_field;
  std::optional<PemFile> cert;
  std::optional<PemFile> key;
  reader.for_each_field(field, kServerTlsKeys, [&](std::string_view name, const Field& value) {
    if (name == "min_version") {
      const auto version = reader.value(value, parse_tls_version);
      if (version) tls.min_version = *version;
      ok = ok && version;
    } else if (name == "client_ca") {
      tls.client_ca = read_ca(reader, value);
      ok = ok && tls.client_ca;
    } else if (name == "cert") {
      cert_field = value;
      cert = read_certificate(reader, value, tls.cert_not_after);
      ok = ok && cert;
    } else {
      key_field = value;
      key = read_key(reader, value);
      ok = ok && key;
    }
  });
  if (!cert_field && !key_field) {
    reader.error(field.key, field.label + ": cert and key are required");
    return std::nullopt;
  }
  ok = check_pair(reader, field, cert_field, key_field, cert, key) && ok;
  if (!ok) return std::nullopt;
  tls.cert = std::move(*cert);
  tls.key = std::move(*key);
  return tls;
}

}  // namespace apigw::config
