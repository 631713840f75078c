// Reading a `tls` block (tls_config.h): its keys, and the files it names, read and checked at load with OpenSSL's
// PEM readers (a certificate that parses and has not expired, a key that matches it, trust anchors that parse).
// Private to src/config.
#pragma once

#include <optional>

#include "apigw/config/tls_config.h"
#include "yaml_reader.h"

namespace apigw::config {

// A client block (`upstreams.NAME.tls`, `auth.redis.tls`, ...). Nullopt when any part of it was refused; every
// refusal is reported at its key. `verify: false` is accepted with a warning.
std::optional<TlsClientConfig> read_tls_client(YamlReader& reader, const Field& field);

// A listener's block (`server.tls`, `admin.tls`): `cert` and `key` are required.
std::optional<TlsServerConfig> read_tls_server(YamlReader& reader, const Field& field);

}  // namespace apigw::config
