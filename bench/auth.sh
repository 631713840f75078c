#!/usr/bin/env bash
# What bearer-token auth against Redis costs apigw, against its own plain proxying and against NGINX and HAProxy,
# on this machine, in one run.
#
#   bash bench/auth.sh                  # 10 s per target after a 2 s warm-up
#   bash bench/auth.sh --quick          # 3 s runs (1 s warm-up): a smoke run
#   bash bench/auth.sh --rounds 3       # every target 3 times, interleaved; each reported by its median run
#
# One NGINX upstream answers every request with a fixed 600-byte JSON body; one redis-server holds 1,000 session
# keys (session:tok-0000 .. session:tok-0999, each a user id). In front of the upstream, each with one worker:
# NGINX and HAProxy (plain proxies, as in proxy.sh) and four apigw processes (workers: 1): plain proxy (route
# auth: none), auth + proxy with the local token cache, auth + proxy with the cache off (max_entries: 0), and the
# cached one again under unknown tokens only (every answer a 401 from apigw). wrk (1 thread, CONNECTIONS
# connections, a Lua script) sends "Authorization: Bearer tok-NNNN" on every request, the token changing from one
# request to the next over the 1,000; the invalid-token run sends 1,000 unknown tokens the same way.
# Redis lookups and local cache hits per variant come from apigw's /metrics. See bench/README.md.
#
# Temporary files, process handling and exit status as in proxy.sh (bench/lib.sh): one mktemp -d directory,
# every process stopped by its PID; 0 once the report is printed, PASS or FAIL alike.

set -u -o pipefail

BENCH_NAME=auth.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$SCRIPT_DIR/lib.sh"

TOKENS=1000          # distinct valid tokens wrk rotates over
CACHE_TTL=5s         # auth.cache.ttl; bench_helper.py's AUTH_TTL_S must match
CHECK_TOKEN=check-startup    # a valid token outside the rotation, for the startup checks only
UNKNOWN_CHECK_TOKEN=unknown-startup

usage() {
  cat <<EOF
usage: bash bench/auth.sh [--quick] [--duration S] [--warmup S] [--connections N] [--apigw PATH]
                          [--rounds N] [--keep]
EOF
  usage_flags ""
}

while [ $# -gt 0 ]; do
  bench_flag "$@" || unknown_flag "$1"
  shift "$BENCH_SHIFT"
done
check_positive DURATION WARMUP CONNECTIONS ROUNDS

# ------------------------------------------------------------------------------------------------ checks
INSTALL_HINT="nginx-light haproxy wrk redis-server"
require_tools nginx haproxy wrk redis-server redis-cli timeout pgrep setsid
raise_nofile 4096 "; raise it (e.g. run as root, or set the hard nofile limit)"
make_tmp_and_copy_apigw

# ------------------------------------------------------------------------------------------------ configs
free_ports 12
P_UP=${PORTS[0]} P_NGINX=${PORTS[1]} P_HAPROXY=${PORTS[2]} P_REDIS=${PORTS[3]}
# apigw variants: key -> client port and admin port; the key names the variant's directory under $TMP
declare -A PORT_OF=([plain]=${PORTS[4]} [auth]=${PORTS[5]} [nocache]=${PORTS[6]} [invalid]=${PORTS[7]})
declare -A ADMIN_OF=([plain]=${PORTS[8]} [auth]=${PORTS[9]} [nocache]=${PORTS[10]} [invalid]=${PORTS[11]})
declare -A LABEL_OF=(
  [plain]="apigw plain proxy (auth: none)"
  [auth]="apigw auth + proxy (cache)"
  [nocache]="apigw auth + proxy (cache off)"
  [invalid]="apigw invalid token (401)"
)
VARIANTS=(plain auth nocache invalid)

make_body
write_peer_configs

auth_section() {  # $1 cache.max_entries
  cat <<EOF
auth:
  redis: { nodes: [127.0.0.1:$P_REDIS], timeout: 50ms, connections: 2 }
  token_from: [header:Authorization]
  key: "session:{token}"
  cache: { ttl: $CACHE_TTL, negative_ttl: 1s, max_entries: $1 }
EOF
}

# The four configs differ only in the route's auth and the cache size.
for v in "${VARIANTS[@]}"; do
  mkdir -p "$TMP/$v"
  route_auth=required entries=100000
  [ "$v" = plain ] && route_auth=none
  [ "$v" = nocache ] && entries=0
  {
    apigw_config "${PORT_OF[$v]}" 1 off "127.0.0.1:${ADMIN_OF[$v]}" "$route_auth"
    auth_section "$entries"
  } >"$TMP/$v/apigw.yaml"
done
validate_configs "${VARIANTS[@]}"

# wrk's request scripts: requests rotate over the TOKENS valid (or unknown) tokens.
rotating_wrk_script "$TOKENS" wrk.path 'string.format("Bearer tok-%04d", i)' >"$TMP/tokens-valid.lua"
rotating_wrk_script "$TOKENS" wrk.path 'string.format("Bearer bad-%04d", i)' >"$TMP/tokens-unknown.lua"

# ------------------------------------------------------------------------------------------------ start
mkdir -p "$TMP/redis" "$TMP/metrics"
start_redis "$TMP/redis" "$P_REDIS"
seed=("session:$CHECK_TOKEN" user-startup)
for ((i = 0; i < TOKENS; i++)); do
  printf -v t '%04d' "$i"
  seed+=("session:tok-$t" "user-$t")
done
[ "$(rcli mset "${seed[@]}" 2>&1)" = OK ] || die "could not seed Redis"
[ "$(rcli dbsize)" = $((TOKENS + 1)) ] || die "Redis holds $(rcli dbsize) keys after seeding, not $((TOKENS + 1))"
log "Redis is up on 127.0.0.1:$P_REDIS (pid $PID_REDIS), seeded with $TOKENS tokens"
REDIS_LOG_START=$(wc -l <"$TMP/redis/redis.log")   # the report shows only what Redis logs after its startup

start_upstream
start_nginx_proxy
start_haproxy

declare -A PID_OF
for v in "${VARIANTS[@]}"; do
  UP_CHECK=()
  [ "$v" = plain ] || UP_CHECK=(--header "Authorization: Bearer $CHECK_TOKEN")
  start_apigw "apigw-$v" "$v" "${PORT_OF[$v]}" "${LABEL_OF[$v]}"
  PID_OF[$v]=$LAST_PID
  [ "$v" = plain ] && continue
  why=$(timeout 15 "$PY" "$HELPER" check-get "${PORT_OF[$v]}" /bench - --status 401 --contains '"unauthorized"' \
    --header "Authorization: Bearer $UNKNOWN_CHECK_TOKEN") ||
    { show_log "$TMP/$v/apigw.log"; die "${LABEL_OF[$v]} does not refuse an unknown token: $why"; }
done
UP_CHECK=()
log "every auth variant answers a valid token with 200 and the ${BODY_BYTES}-byte body, an unknown one with 401"

# ------------------------------------------------------------------------------------------------ throughput
measure_idle
SIDE="$TMP/redis-cpu.tsv"
: >"$SIDE"
EXPECT_NON2XX=invalid

scrape() {  # KEY FILE: apigw's /metrics of variant KEY into $TMP/metrics/FILE
  "$PY" "$HELPER" metrics "${ADMIN_OF[$1]}" "$TMP/metrics/$2" || die "could not read the metrics of ${LABEL_OF[$1]}"
}
# Called by run_target around each measured run: the variant's metrics, and the CPU Redis used meanwhile.
bench_before_run() {
  [ -n "${ADMIN_OF[$1]:-}" ] && scrape "$1" "$1-r$2-before.txt"
  side_cpu_start "$PID_REDIS"
}
bench_after_run() {
  side_cpu_record "$1" "$2" "$PID_REDIS"
  [ -n "${ADMIN_OF[$1]:-}" ] && scrape "$1" "$1-r$2-after.txt"
  return 0
}

scrape auth auth-start.txt   # the first warm-up's lookups count the distinct tokens wrk sends (see the report)
for ((round = 1; round <= ROUNDS; round++)); do
  for v in "${VARIANTS[@]}"; do
    script="$TMP/tokens-valid.lua"
    [ "$v" = invalid ] && script="$TMP/tokens-unknown.lua"
    run_target "$v" "${LABEL_OF[$v]}" "${PORT_OF[$v]}" "${PID_OF[$v]}" "$round" -s "$script"
  done
  run_target nginx "NGINX proxy (1 worker)" "$P_NGINX" "$PID_NGINX" "$round" -s "$TMP/tokens-valid.lua"
  run_target haproxy "HAProxy (nbthread 1)" "$P_HAPROXY" "$PID_HAPROXY" "$round" -s "$TMP/tokens-valid.lua"
done
alive "$PID_REDIS" || { show_log "$TMP/redis/redis.log"; die "Redis (pid $PID_REDIS) died during the runs"; }

# ------------------------------------------------------------------------------------------------ report
HEADER="apigw auth benchmark: wrk 1 thread, $CONNECTIONS connections, ${DURATION}s per run after a ${WARMUP}s \
warm-up; ${BODY_BYTES}-byte JSON from one NGINX upstream; $(nproc) CPU cores shared by wrk, upstream, Redis and proxy
every request carries \"Authorization: Bearer tok-NNNN\", rotating over $TOKENS valid tokens (the invalid-token \
run: $TOKENS unknown ones); apigw: workers: 1, Redis connections: 2, timeout 50ms, cache ttl $CACHE_TTL, \
negative_ttl 1s
apigw binary: $APIGW_DESC; $(peer_versions); redis $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')
cpu % = CPU time of the target's processes / wall time (100 = one core); redis cpu % = redis-server's, same run
machine ${IDLE_BUSY}% busy (all cores) in the second before the first run; load average at the end: \
$(cut -d' ' -f1-3 /proc/loadavg)"
WARMUP=$WARMUP "$PY" "$HELPER" auth-report "$RESULTS" "$SIDE" "$TMP/metrics" "$HEADER" ||
  die "could not print the report"

tail -n +$((REDIS_LOG_START + 1)) "$TMP/redis/redis.log" >"$TMP/redis/after-startup.log"
print_server_logs "$TMP"/upstream/error.log "$TMP"/upstream/stdout.log "$TMP"/nginx/error.log \
  "$TMP"/nginx/stdout.log "$TMP"/haproxy/haproxy.log "$TMP"/redis/after-startup.log \
  "$TMP"/plain/apigw.log "$TMP"/auth/apigw.log "$TMP"/nocache/apigw.log "$TMP"/invalid/apigw.log
exit 0
