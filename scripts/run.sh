#!/usr/bin/env bash
# Sets everything up, builds apigw, starts the local stack (a demo upstream on 127.0.0.1:9001, Redis on
# 127.0.0.1:6390 with demo sessions, Memcached on 127.0.0.1:11311 and :11313 (the cache) and :11312 (its
# double-write copy)) and apigw with config/apigw.example.yaml in the foreground. Ctrl-C stops everything it
# started.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/build.sh

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

/usr/bin/python3 scripts/demo_upstream.py 9001 demo >/dev/null 2>&1 &
pids+=($!)
redis-server --port 6390 --bind 127.0.0.1 --save '' --appendonly no --daemonize no --loglevel warning &
pids+=($!)
for _ in $(seq 50); do
  redis-cli -p 6390 ping >/dev/null 2>&1 && break
  sleep 0.1
done
redis-cli -p 6390 set session:demo-token-alice alice >/dev/null
redis-cli -p 6390 set session:demo-token-bob 1002 >/dev/null
memcached_user=()
if [ "$(id -u)" = 0 ]; then memcached_user=(-u root); fi  # memcached refuses to run as root without -u
for port in 11311 11312 11313; do
  memcached -l 127.0.0.1 -p "$port" -U 0 -m 64 "${memcached_user[@]}" &
  pids+=($!)
done
for _ in $(seq 50); do
  curl -s -o /dev/null http://127.0.0.1:9001/ && break
  sleep 0.1
done

config=${APIGW_CONFIG:-config/apigw.example.yaml}
build/apigw -t -c "$config"
build/apigw -c "$config" &
pids+=($!)

for _ in $(seq 50); do
  curl -s -o /dev/null http://127.0.0.1:8080/health && break
  sleep 0.1
done

cat <<'TRY'

apigw is listening on http://127.0.0.1:8080 in front of a demo upstream on 127.0.0.1:9001. Try:

  curl -i http://127.0.0.1:8080/users/42                 # routed by /users/:id, see X-Apigw-Route
  curl -i http://127.0.0.1:8080/v1/users/42              # strip_prefix: the upstream sees /users/42
  curl -i -X POST http://127.0.0.1:8080/orders/7 -d '{"qty":1}'
  curl -i http://127.0.0.1:8080/nowhere                  # 404 as JSON with the request id
  curl -i -X DELETE http://127.0.0.1:8080/users/42       # 405 with Allow
  curl -i -H 'X-Request-Id: trace-123' http://127.0.0.1:8080/health
  curl -i http://127.0.0.1:8080/account/orders           # auth: required, no token: 401
  curl -i -H 'Authorization: Bearer demo-token-alice' http://127.0.0.1:8080/account/orders  # X-User-Id: alice
  curl -i 'http://127.0.0.1:8080/users/42?access_token=demo-token-bob'   # auth: optional, token in the query
  curl -i http://127.0.0.1:8080/catalog/books            # X-Cache: MISS, then HIT with Age on the next call
  curl -i -H 'Accept-Language: fr' http://127.0.0.1:8080/catalog/books   # vary: an entry of its own
  curl -i -H 'Authorization: Bearer demo-token-bob' http://127.0.0.1:8080/account/orders  # scope: user

The admin listener (loopback only) on http://127.0.0.1:9901:

  curl -s http://127.0.0.1:9901/readyz                   # ready, and the config generation served
  curl -s http://127.0.0.1:9901/routes                   # the route table in match order
  curl -s http://127.0.0.1:9901/upstreams                # endpoints and their health
  curl -s http://127.0.0.1:9901/metrics | grep apigw_requests_total
  # the cache API, for the monolith (token: cache.api.token)
  curl -i -X PUT -H 'Authorization: Bearer demo-cache-api-token' -H 'X-Cache-TTL: 60' \
       --data 'hello' http://127.0.0.1:9901/_cache/legacy:greeting
  curl -i -H 'Authorization: Bearer demo-cache-api-token' http://127.0.0.1:9901/_cache/legacy:greeting
  curl -i -X POST -H 'Authorization: Bearer demo-cache-api-token' \
       -d '{"route": "catalog", "path": "/catalog/books", "host": "127.0.0.1:8080"}' \
       http://127.0.0.1:9901/_cache/purge

Ctrl-C stops apigw and the local stack.
TRY
echo "Edit $config and reload it with no request lost:  kill -HUP ${pids[-1]}"
echo
wait "${pids[-1]}"
