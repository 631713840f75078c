// The config's `redis` blocks as Client options (see client_options.h).
#include "apigw/redis/client_options.h"

#include "apigw/net/tls.h"

namespace apigw::redis {

ClientOptions client_options(const config::RedisConfig& redis, const std::vector<config::ResolvedEndpoint>& nodes) {
  ClientOptions options;
  for (const config::ResolvedEndpoint& node : nodes) options.nodes.push_back({node.address, node.port});
  options.cluster = redis.cluster;
  options.username = redis.username;
  options.password = redis.password;
  options.db = redis.db;
  options.timeout = redis.timeout;
  options.connections = redis.connections;
  if (redis.tls) {
    options.tls = net::TlsClientContext::require(*redis.tls);
    options.sni = redis.tls->sni;
  }
  return options;
}

}  // namespace apigw::redis
