#!/usr/bin/env bash
# apigw's response-cache hits against NGINX's memcached_pass, from the same Memcached, on this machine, in one run
# (issue 5, section Benchmark).
#
#   bash bench/cache.sh                 # 10 s per target after a 2 s warm-up
#   bash bench/cache.sh --quick         # 3 s runs (1 s warm-up): a smoke run
#   bash bench/cache.sh --rounds 3      # every target 3 times, interleaved; each reported by its median run
#   bash bench/cache.sh --keys 1000     # requests rotate over 1,000 cached paths (see below)
#
# One memcached (1 thread) on a free loopback port. The same 1,024-byte JSON body is stored in it twice: for NGINX
# under "nginx:/bench" with a plain `set`, and for apigw by apigw itself (its binary record, key
# apigw:v2:<route>:<digest>, and its resource key apigw:r2:...) through a warm-up request. Each with one worker:
#   - NGINX memcached_pass: `set $memcached_key "nginx:$uri"`, an upstream block with keepalive to memcached;
#   - apigw cache hit: a route with cache: { ttl: 300s, share_authorized: true } in front of the demo upstream,
#     cache.primary = that memcached (share_authorized: the requests carry Authorization, and the upstream's answer
#     says neither public nor s-maxage, so without it RFC 9111 keeps apigw from sharing it);
#   - apigw auth + cache hit: the same route with auth: required (bearer token checked against a redis-server
#     started here, with apigw's local token cache), every request carrying a valid token;
#   - apigw tagged cache hit: the cache hit's route with two tags, one from the path ("page:{rest}") and one
#     literal ("catalog"): each hit also reads both tags' versions, in the same Memcached round trip;
# and for reference apigw proxying the same route without a cache, and the demo upstream itself (NGINX `return 200`
# with the body). Every request to every target carries the same "Authorization: Bearer ..." header. wrk (1 thread,
# CONNECTIONS connections, --latency) drives each in turn. apigw's /metrics and memcached's `stats` are read around
# every measured run: the report says how many answers were cache hits and how many gets memcached served.
#
# With one key (the default) every request asks for the same entry, so apigw's request coalescing lets concurrent
# hits share one Memcached lookup, while NGINX asks Memcached once per request. --keys N (2..10000) makes wrk rotate
# over N paths /bench/0000.., each stored for NGINX and filled in apigw by the warm-up runs, so that concurrent
# requests rarely want the same entry and both servers make about one Memcached round trip per request.
#
# Targets: apigw cache hit >= 1.0x NGINX memcached_pass's req/s; auth + cache hit >= 0.9x; tagged cache hit
# >= 0.9x apigw cache hit (tags cost at most 10 %); printed PASS or MISS.
# Temporary files, process handling and exit status as in proxy.sh (bench/lib.sh): one mktemp -d directory, every
# process started here and stopped by its PID; 0 once the report is printed (PASS or MISS alike), non-zero when
# something could not be started or measured (including an apigw that never answers X-Cache: HIT).

set -u -o pipefail

BENCH_NAME=cache.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$SCRIPT_DIR/lib.sh"

BODY_BYTES=1024              # the cached body (lib.sh's upstream answers with it, NGINX reads it from memcached)
CACHE_TTL=300s               # the route's cache.ttl
NGINX_KEY=nginx:/bench       # NGINX's memcached key for GET /bench: "nginx:$uri"
TOKEN=tok-bench              # the one session token; Redis holds session:tok-bench
HIT_WAIT=5                   # seconds for apigw's first fill to be stored and served back as a hit
KEYS=${KEYS:-1}              # distinct cached paths the requests rotate over

usage() {
  cat <<EOF
usage: bash bench/cache.sh [--quick] [--duration S] [--warmup S] [--connections N] [--apigw PATH]
                           [--rounds N] [--keys N] [--keep]
EOF
  usage_flags "  --keys N         requests rotate over N cached paths (env KEYS, default 1: every request GET /bench),
                   at most 10000"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --keys) KEYS=${2:?--keys needs a value}; shift ;;
    --keys=*) KEYS=${1#*=} ;;
    *) bench_flag "$@" || unknown_flag "$1"; shift $((BENCH_SHIFT - 1)) ;;
  esac
  shift
done
check_positive DURATION WARMUP CONNECTIONS ROUNDS KEYS
[ "$KEYS" -le 10000 ] || { echo "$BENCH_NAME: --keys is at most 10000 (got $KEYS)" >&2; exit 2; }

# ------------------------------------------------------------------------------------------------ checks
INSTALL_HINT="nginx-light wrk memcached redis-server"
require_tools nginx wrk memcached redis-server redis-cli timeout pgrep setsid
if nginx -V 2>&1 | grep -q -- '--without-http_memcached_module'; then
  die "this nginx is built without the memcached module (nginx -V says --without-http_memcached_module)"
fi
raise_nofile 4096 "; raise it (e.g. run as root, or set the hard nofile limit)"
make_tmp_and_copy_apigw

# ------------------------------------------------------------------------------------------------ configs
free_ports 12
P_UP=${PORTS[0]} P_NGINX=${PORTS[1]} P_MC=${PORTS[2]} P_REDIS=${PORTS[3]}
# apigw variants: key -> client port and admin port; the key names the variant's directory under $TMP
declare -A PORT_OF=([cache]=${PORTS[4]} [authcache]=${PORTS[5]} [proxy]=${PORTS[6]} [tagged]=${PORTS[10]})
declare -A ADMIN_OF=([cache]=${PORTS[7]} [authcache]=${PORTS[8]} [proxy]=${PORTS[9]} [tagged]=${PORTS[11]})
declare -A LABEL_OF=(
  [nginx]="NGINX memcached_pass"
  [cache]="apigw cache hit"
  [authcache]="apigw auth + cache hit"
  [tagged]="apigw tagged cache hit"
  [proxy]="apigw proxy (no cache)"
  [upstream]="NGINX return (no Memcached)"
)
VARIANTS=(cache authcache tagged proxy)
AUTH_HEADER="Authorization: Bearer $TOKEN"

make_body
printf '%s' "$BODY" >"$TMP/body.json"
write_upstream_config

# NGINX serving GET /bench from memcached: one worker, keep-alive connections to memcached (the memcached module
# gives a connection back to the upstream keepalive pool after each complete answer).
mkdir -p "$TMP/nginx/tmp"
{
  nginx_head "$TMP/nginx"
  cat <<EOF
  upstream memcached {
    server 127.0.0.1:$P_MC;
    keepalive 64;
    keepalive_requests 100000;
  }
  server {
    listen 127.0.0.1:$P_NGINX backlog=4096;
    location / {
      set \$memcached_key "nginx:\$uri";
      memcached_pass memcached;
      default_type application/json;
    }
  }
}
EOF
} >"$TMP/nginx/nginx.conf"

cache_section() {  # [KEY_PREFIX]: the tagged variant has entries of its own (records that carry its tags)
  cat <<EOF
cache:
  primary: { servers: [127.0.0.1:$P_MC], timeout: 50ms, connections: 2 }
  key_prefix: "${1:-apigw:}"
  max_item_bytes: 1MiB
EOF
}
auth_section() {  # as in auth.sh, with the local token cache on
  cat <<EOF
auth:
  redis: { nodes: [127.0.0.1:$P_REDIS], timeout: 50ms, connections: 2 }
  token_from: [header:Authorization]
  key: "session:{token}"
  cache: { ttl: 5s, negative_ttl: 1s, max_entries: 100000 }
EOF
}
# The configs differ only in the route's auth and cache keys and the sections those need.
for v in "${VARIANTS[@]}"; do
  mkdir -p "$TMP/$v"
  {
    case $v in
      cache)
        apigw_config "${PORT_OF[$v]}" 1 off "127.0.0.1:${ADMIN_OF[$v]}"
        echo "    cache: { ttl: $CACHE_TTL, share_authorized: true }"
        cache_section ;;
      tagged)
        apigw_config "${PORT_OF[$v]}" 1 off "127.0.0.1:${ADMIN_OF[$v]}"
        echo "    cache: { ttl: $CACHE_TTL, share_authorized: true, tags: [\"page:{rest}\", catalog] }"
        cache_section "tagged:" ;;
      authcache)
        apigw_config "${PORT_OF[$v]}" 1 off "127.0.0.1:${ADMIN_OF[$v]}" required
        echo "    cache: { ttl: $CACHE_TTL, share_authorized: true }"
        cache_section
        auth_section ;;
      proxy)
        apigw_config "${PORT_OF[$v]}" 1 off "127.0.0.1:${ADMIN_OF[$v]}" ;;
    esac
  } >"$TMP/$v/apigw.yaml"
done
validate_nginx upstream nginx
validate_apigw "${VARIANTS[@]}"

# ------------------------------------------------------------------------------------------------ start
# memcached: one worker thread, 128 MiB, TCP on loopback only, no UDP. It refuses to run as root without -u.
mkdir -p "$TMP/memcached" "$TMP/redis" "$TMP/metrics"
MC_ARGS=(-l 127.0.0.1 -p "$P_MC" -U 0 -t 1 -m 128 -c 1024)
[ "$(id -u)" = 0 ] && MC_ARGS+=(-u root)
start memcached "$TMP/memcached/memcached.log" memcached "${MC_ARGS[@]}"
PID_MC=$LAST_PID
wait_port "memcached" "$PID_MC" "$P_MC" "$TMP/memcached/memcached.log"
mc() { timeout 20 "$PY" "$HELPER" mc "$P_MC" "$@"; }
NGINX_KEYS=("$NGINX_KEY")
for ((i = 0; i < KEYS && KEYS > 1; i++)); do
  printf -v k '%s/%04d' "$NGINX_KEY" "$i"
  NGINX_KEYS+=("$k")
done
mc set "$TMP/body.json" "${NGINX_KEYS[@]}" ||
  { show_log "$TMP/memcached/memcached.log"; die "could not store NGINX's body in memcached"; }
for k in "$NGINX_KEY" "${NGINX_KEYS[-1]}"; do
  [ "$(mc get "$k")" = "$BODY_BYTES" ] || die "memcached does not give back the $BODY_BYTES bytes stored under $k"
done
if [ "$KEYS" = 1 ]; then
  log "memcached is up on 127.0.0.1:$P_MC (pid $PID_MC), $BODY_BYTES bytes stored under $NGINX_KEY"
else
  log "memcached is up on 127.0.0.1:$P_MC (pid $PID_MC), $BODY_BYTES bytes stored under $NGINX_KEY and" \
    "${NGINX_KEYS[1]} .. ${NGINX_KEYS[-1]}"
fi

start_redis "$TMP/redis" "$P_REDIS"
[ "$(rcli set "session:$TOKEN" user-bench 2>&1)" = OK ] || die "could not seed Redis"
log "Redis is up on 127.0.0.1:$P_REDIS (pid $PID_REDIS), holding session:$TOKEN"
REDIS_LOG_START=$(wc -l <"$TMP/redis/redis.log")   # the report shows only what Redis logs after its startup

UP_CHECK=(--header "$AUTH_HEADER")   # every startup check sends the header every measured request carries
start_upstream
start nginx-memcached "$TMP/nginx/stdout.log" nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log"
PID_NGINX=$LAST_PID
wait_up "NGINX memcached_pass" "$PID_NGINX" "$P_NGINX" "$TMP/nginx/stdout.log" "$TMP/nginx/error.log"

# wait_hit VARIANT: apigw stores its first answer (a MISS, proxied) in the background; ask again until the answer
# is a hit with the whole body.
wait_hit() {
  local v=$1 i why
  for ((i = 0; i < HIT_WAIT * 10; i++)); do
    why=$(timeout 15 "$PY" "$HELPER" check-get "${PORT_OF[$v]}" /bench "$BODY_BYTES" --header "$AUTH_HEADER" \
      --want-header "X-Cache: HIT") && return 0
    sleep 0.1
  done
  show_log "$TMP/$v/apigw.log" "$TMP/memcached/memcached.log"
  die "${LABEL_OF[$v]} does not answer from its cache ${HIT_WAIT}s after its first request: $why"
}

declare -A PID_OF
for v in "${VARIANTS[@]}"; do
  start_apigw "apigw-$v" "$v" "${PORT_OF[$v]}" "${LABEL_OF[$v]}"
  PID_OF[$v]=$LAST_PID
  case $v in
    cache | tagged) wait_hit "$v" ;;
    authcache)
      wait_hit "$v"
      why=$(timeout 15 "$PY" "$HELPER" check-get "${PORT_OF[$v]}" /bench - --status 401 --contains '"unauthorized"') ||
        { show_log "$TMP/$v/apigw.log"; die "${LABEL_OF[$v]} does not refuse a request without a token: $why"; } ;;
  esac
done
UP_CHECK=()
log "the cached apigw variants answer GET /bench with X-Cache: HIT and the ${BODY_BYTES}-byte body; \
auth + cache refuses a request without a token with 401"
apigw_entries() {  # WHEN: log how many entries apigw has written to memcached (the keys, when at most two)
  local keys n
  keys=$(mc keys apigw:) || return 0
  n=$(printf '%s' "$keys" | grep -c .)
  if [ "$n" -le 2 ]; then
    log "apigw's entries in memcached $1: $n ($(printf '%s' "$keys" | tr '\n' ' ' | sed 's/ $//'))"
  else
    log "apigw's entries in memcached $1: $n"
  fi
}
apigw_entries "after the startup checks"

# One GET /bench to each target: status, head and body sizes, X-Cache (for the report).
PROBES="$TMP/probes.tsv"
: >"$PROBES"
probe() {  # KEY PORT
  local out
  out=$(timeout 15 "$PY" "$HELPER" probe "$2" /bench --header "$AUTH_HEADER") || die "could not probe ${LABEL_OF[$1]}"
  printf '%s\t%s\n' "${LABEL_OF[$1]}" "$out" >>"$PROBES"
}
probe nginx "$P_NGINX"
for v in "${VARIANTS[@]}"; do probe "$v" "${PORT_OF[$v]}"; done
probe upstream "$P_UP"

# ------------------------------------------------------------------------------------------------ throughput
# wrk's arguments, the same for every target: one path with the header, or a script rotating over the KEYS paths
# (built once in init(), so request() costs the same for every target; as in auth.sh).
if [ "$KEYS" = 1 ]; then
  WRK_ARGS=(-H "$AUTH_HEADER")
else
  rotating_wrk_script "$KEYS" 'string.format("/bench/%04d", i)' "\"Bearer $TOKEN\"" >"$TMP/paths.lua"
  WRK_ARGS=(-s "$TMP/paths.lua")
fi

measure_idle
SIDE="$TMP/memcached-cpu.tsv"
: >"$SIDE"

scrape() {  # KEY FILE: apigw's /metrics of variant KEY into $TMP/metrics/FILE
  "$PY" "$HELPER" metrics "${ADMIN_OF[$1]}" "$TMP/metrics/$2" || die "could not read the metrics of ${LABEL_OF[$1]}"
}
# Called by run_target around each measured run: the variant's metrics, memcached's stats, and the CPU memcached
# used meanwhile.
bench_before_run() {
  [ -n "${ADMIN_OF[$1]:-}" ] && scrape "$1" "$1-r$2-before.txt"
  mc stats "$TMP/metrics/mc-$1-r$2-before.txt" || die "could not read memcached's stats"
  side_cpu_start "$PID_MC"
}
bench_after_run() {
  side_cpu_record "$1" "$2" "$PID_MC"
  mc stats "$TMP/metrics/mc-$1-r$2-after.txt" || die "could not read memcached's stats"
  [ -n "${ADMIN_OF[$1]:-}" ] && scrape "$1" "$1-r$2-after.txt"
  return 0
}

for ((round = 1; round <= ROUNDS; round++)); do
  run_target nginx "${LABEL_OF[nginx]}" "$P_NGINX" "$PID_NGINX" "$round" "${WRK_ARGS[@]}"
  for v in "${VARIANTS[@]}"; do
    run_target "$v" "${LABEL_OF[$v]}" "${PORT_OF[$v]}" "${PID_OF[$v]}" "$round" "${WRK_ARGS[@]}"
  done
  run_target upstream "${LABEL_OF[upstream]}" "$P_UP" "$PID_UP" "$round" "${WRK_ARGS[@]}"
done
alive "$PID_MC" || { show_log "$TMP/memcached/memcached.log"; die "memcached (pid $PID_MC) died during the runs"; }
apigw_entries "after the runs"
alive "$PID_REDIS" || { show_log "$TMP/redis/redis.log"; die "Redis (pid $PID_REDIS) died during the runs"; }

# ------------------------------------------------------------------------------------------------ report
HEADER="apigw response-cache benchmark: wrk 1 thread, $CONNECTIONS connections, ${DURATION}s per run after a \
${WARMUP}s warm-up; one ${BODY_BYTES}-byte JSON body, from one memcached (1 thread); $(nproc) CPU cores shared by \
wrk, memcached, Redis, the demo upstream and the server measured
every request: $([ "$KEYS" = 1 ] && echo "GET /bench" || echo "GET /bench/NNNN rotating over $KEYS paths") \
with \"$AUTH_HEADER\"; NGINX: worker_processes 1, memcached_pass with upstream keepalive \
64; apigw: workers: 1, cache.primary connections: 2, timeout 50ms, route cache ttl $CACHE_TTL; auth + cache: \
route auth: required, Redis connections: 2, token cache ttl 5s
apigw binary: $APIGW_DESC; nginx $(nginx -v 2>&1 | sed 's|.*nginx/||'); \
memcached $(memcached -V 2>/dev/null | awk '{ print $2 }'); redis $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')
cpu % = CPU time of the target's processes / wall time (100 = one core); mc cpu % = memcached's, same run; \
mc gets/req = memcached's cmd_get over the run / wrk's requests
machine ${IDLE_BUSY}% busy (all cores) in the second before the first run; load average at the end: \
$(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" "$HELPER" cache-report "$RESULTS" "$SIDE" "$TMP/metrics" "$PROBES" "$HEADER" || die "could not print the report"

tail -n +$((REDIS_LOG_START + 1)) "$TMP/redis/redis.log" >"$TMP/redis/after-startup.log"
print_server_logs "$TMP"/memcached/memcached.log "$TMP"/redis/after-startup.log "$TMP"/upstream/error.log \
  "$TMP"/upstream/stdout.log "$TMP"/nginx/error.log "$TMP"/nginx/stdout.log \
  "$TMP"/cache/apigw.log "$TMP"/authcache/apigw.log "$TMP"/tagged/apigw.log "$TMP"/proxy/apigw.log
exit 0
