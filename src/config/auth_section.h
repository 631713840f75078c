// Reading the `auth` section: the Redis that holds sessions, where tokens come from, the key and user id shape,
// the local cache and the fault policy. Private to src/config.
#pragma once

#include "apigw/config/config.h"
#include "yaml_reader.h"

namespace apigw::config {

void read_auth(YamlReader& reader, const Field& field, AuthConfig& auth);

// A `redis` block (auth.redis, control.redis): nodes, cluster, username, password, db, timeout, connections, tls.
void read_redis(YamlReader& reader, const Field& field, RedisConfig& redis);

}  // namespace apigw::config
