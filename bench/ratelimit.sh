#!/usr/bin/env bash
# What a fleet-wide rate limit that is not hit costs apigw, against the same route without one, and what local
# limits cost NGINX (limit_req) and HAProxy (a stick table), on this machine, in one run.
#
#   bash bench/ratelimit.sh                 # 10 s per target after a 2 s warm-up
#   bash bench/ratelimit.sh --quick         # 3 s runs (1 s warm-up): a smoke run
#   bash bench/ratelimit.sh --rounds 3      # every target 3 times, interleaved; each reported by its median run
#
# One NGINX upstream answers every request with a fixed 600-byte JSON body; one redis-server holds the buckets.
# wrk (1 thread, CONNECTIONS connections, a Lua script) sends "Authorization: Bearer tok-NNNN" on every request,
# rotating over KEYS values (1,000 by default). In front of the upstream, each with one worker:
#   - apigw plain: the catch-all route without a limit;
#   - apigw route limit: the same route with rate_limit [{key: route, rate: 1000000/s}]: one bucket for the whole
#     route, far above what this machine can send;
#   - apigw per-key limit: rate_limit [{key: "header:Authorization", rate: 1000/s}]: one bucket per token (KEYS
#     of them), each far above the few hundred requests a second one token gets here. Each key's tokens come from
#     Redis in batches of at most 50 (50 ms at its rate), so this variant asks Redis far more often than the
#     route limit: it is the realistic per-user case;
#   - NGINX proxy, and NGINX with `limit_req zone=perkey` (limit_req_zone $http_authorization, 1000r/s, burst 1000
#     nodelay): NGINX counts in its own shared memory, for this one server only;
#   - HAProxy, and HAProxy tracking Authorization in a stick table (http_req_rate(1s), deny above 1000): also
#     local to the one process.
# Redis's `INFO commandstats` (EVALSHA and EVAL calls) and apigw's /metrics are read around every measured run: the
# report gives Redis commands per 1,000 requests, and the share of requests each limit allowed (none may be refused).
#
# Target: each apigw limit variant >= 0.95x apigw plain's req/s (a limit that is not hit costs at most 5 %);
# the peers' limited/plain ratios and CPU per request are printed beside it.
# Temporary files, process handling and exit status as in proxy.sh (bench/lib.sh).

set -u -o pipefail

BENCH_NAME=ratelimit.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$SCRIPT_DIR/lib.sh"

KEYS=${KEYS:-1000}       # distinct Authorization values wrk rotates over
PER_KEY_RATE=1000        # requests a second per key, for apigw and both peers
ROUTE_RATE=1000000       # the route limit's requests a second

usage() {
  cat <<EOF
usage: bash bench/ratelimit.sh [--quick] [--duration S] [--warmup S] [--connections N] [--apigw PATH]
                               [--rounds N] [--keys N] [--keep]
EOF
  usage_flags "  --keys N         Authorization values the requests rotate over (env KEYS, default 1000)"
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

# ------------------------------------------------------------------------------------------------ checks
INSTALL_HINT="nginx-light haproxy wrk redis-server"
require_tools nginx haproxy wrk redis-server redis-cli timeout pgrep setsid
raise_nofile 4096 "; raise it (e.g. run as root, or set the hard nofile limit)"
make_tmp_and_copy_apigw

# ------------------------------------------------------------------------------------------------ configs
free_ports 12
P_UP=${PORTS[0]} P_NGINX=${PORTS[1]} P_HAPROXY=${PORTS[2]} P_REDIS=${PORTS[3]}
P_NGINX_LIMIT=${PORTS[4]} P_HAPROXY_LIMIT=${PORTS[5]}
declare -A PORT_OF=([plain]=${PORTS[6]} [route]=${PORTS[7]} [perkey]=${PORTS[8]})
declare -A ADMIN_OF=([plain]=${PORTS[9]} [route]=${PORTS[10]} [perkey]=${PORTS[11]})
declare -A LABEL_OF=(
  [plain]="apigw plain (no limit)"
  [route]="apigw route limit"
  [perkey]="apigw per-key limit"
)
VARIANTS=(plain route perkey)

make_body
write_peer_configs
write_nginx_proxy_config "$TMP/nginx-limit" "$P_NGINX_LIMIT" \
  "  limit_req_zone \$http_authorization zone=perkey:16m rate=${PER_KEY_RATE}r/s;" \
  "      limit_req zone=perkey burst=$PER_KEY_RATE nodelay;
      limit_req_status 429;"
mkdir -p "$TMP/haproxy-limit"
haproxy_config "127.0.0.1:$P_HAPROXY_LIMIT" "up1 127.0.0.1:$P_UP" |
  sed "s|^  default_backend upstream|  stick-table type string len 64 size 100k expire 10s store http_req_rate(1s)\\
  http-request track-sc0 req.hdr(Authorization)\\
  http-request deny deny_status 429 if { sc_http_req_rate(0) gt $PER_KEY_RATE }\\
  default_backend upstream|" >"$TMP/haproxy-limit/haproxy.cfg"
grep -q track-sc0 "$TMP/haproxy-limit/haproxy.cfg" || die "could not write HAProxy's stick-table config"

for v in "${VARIANTS[@]}"; do
  mkdir -p "$TMP/$v"
  {
    apigw_config "${PORT_OF[$v]}" 1 off "127.0.0.1:${ADMIN_OF[$v]}"
    case "$v" in
      route) echo "    rate_limit: [{ key: route, rate: $ROUTE_RATE/s }]" ;;
      perkey) echo "    rate_limit: [{ key: \"header:Authorization\", rate: $PER_KEY_RATE/s }]" ;;
    esac
    cat <<EOF
rate_limits:
  redis: { nodes: [127.0.0.1:$P_REDIS], timeout: 50ms, connections: 2 }
  on_error: allow
EOF
  } >"$TMP/$v/apigw.yaml"
done
validate_configs "${VARIANTS[@]}"
validate_nginx nginx-limit
timeout 20 haproxy -c -q -f "$TMP/haproxy-limit/haproxy.cfg" >"$TMP/haproxy-limit/test.log" 2>&1 ||
  { show_log "$TMP/haproxy-limit/test.log"; die "haproxy rejects its stick-table configuration"; }

rotating_wrk_script "$KEYS" wrk.path 'string.format("Bearer tok-%04d", i)' >"$TMP/keys.lua"

# ------------------------------------------------------------------------------------------------ start
mkdir -p "$TMP/redis" "$TMP/metrics"
start_redis "$TMP/redis" "$P_REDIS"
log "Redis is up on 127.0.0.1:$P_REDIS (pid $PID_REDIS)"
REDIS_LOG_START=$(wc -l <"$TMP/redis/redis.log")

start_upstream
start_nginx_proxy
start_haproxy
start_nginx_at nginx-limit "NGINX limit_req" "$TMP/nginx-limit" "$P_NGINX_LIMIT"
PID_NGINX_LIMIT=$LAST_PID
start haproxy-limit "$TMP/haproxy-limit/haproxy.log" haproxy -db -f "$TMP/haproxy-limit/haproxy.cfg"
PID_HAPROXY_LIMIT=$LAST_PID
wait_up "HAProxy stick table" "$PID_HAPROXY_LIMIT" "$P_HAPROXY_LIMIT" "$TMP/haproxy-limit/haproxy.log"

declare -A PID_OF
for v in "${VARIANTS[@]}"; do
  start_apigw "apigw-$v" "$v" "${PORT_OF[$v]}" "${LABEL_OF[$v]}"
  PID_OF[$v]=$LAST_PID
  [ "$v" = plain ] && continue
  policy="\"route\";q=$ROUTE_RATE;w=1"
  [ "$v" = perkey ] && policy="\"header:authorization\";q=$PER_KEY_RATE;w=1"
  why=$(timeout 15 "$PY" "$HELPER" check-get "${PORT_OF[$v]}" /bench - --contains '"ok"' \
    --header "Authorization: Bearer check" --want-header "RateLimit-Policy: $policy") ||
    { show_log "$TMP/$v/apigw.log"; die "${LABEL_OF[$v]} does not answer with its RateLimit-Policy: $why"; }
done
log "every limited variant answers with its RateLimit-Policy"

# ------------------------------------------------------------------------------------------------ throughput
measure_idle
SIDE="$TMP/redis-cpu.tsv"
: >"$SIDE"

scrape() {  # KEY FILE: apigw's /metrics of variant KEY into $TMP/metrics/FILE
  "$PY" "$HELPER" metrics "${ADMIN_OF[$1]}" "$TMP/metrics/$2" || die "could not read the metrics of ${LABEL_OF[$1]}"
}
redis_calls() {  # FILE: Redis's script calls so far (EVALSHA + EVAL), as a metrics line
  rcli info commandstats | tr -d '\r' |
    awk -F'[:=,]' '/^cmdstat_(evalsha|eval):/ { n += $3 } END { printf "redis_script_calls %d\n", n }' >>"$1"
}
bench_before_run() {
  local f="$TMP/metrics/$1-r$2-before.txt"
  : >"$f"
  [ -n "${ADMIN_OF[$1]:-}" ] && scrape "$1" "$1-r$2-before.txt"
  redis_calls "$f"
  side_cpu_start "$PID_REDIS"
}
bench_after_run() {
  local f="$TMP/metrics/$1-r$2-after.txt"
  side_cpu_record "$1" "$2" "$PID_REDIS"
  : >"$f"
  [ -n "${ADMIN_OF[$1]:-}" ] && scrape "$1" "$1-r$2-after.txt"
  redis_calls "$f"
  return 0
}

for ((round = 1; round <= ROUNDS; round++)); do
  for v in "${VARIANTS[@]}"; do
    run_target "$v" "${LABEL_OF[$v]}" "${PORT_OF[$v]}" "${PID_OF[$v]}" "$round" -s "$TMP/keys.lua"
  done
  run_target nginx "NGINX proxy" "$P_NGINX" "$PID_NGINX" "$round" -s "$TMP/keys.lua"
  run_target nginx-limit "NGINX limit_req" "$P_NGINX_LIMIT" "$PID_NGINX_LIMIT" "$round" -s "$TMP/keys.lua"
  run_target haproxy "HAProxy" "$P_HAPROXY" "$PID_HAPROXY" "$round" -s "$TMP/keys.lua"
  run_target haproxy-limit "HAProxy stick table" "$P_HAPROXY_LIMIT" "$PID_HAPROXY_LIMIT" "$round" -s "$TMP/keys.lua"
done
alive "$PID_REDIS" || { show_log "$TMP/redis/redis.log"; die "Redis (pid $PID_REDIS) died during the runs"; }

# ------------------------------------------------------------------------------------------------ report
HEADER="apigw rate-limit benchmark: wrk 1 thread, $CONNECTIONS connections, ${DURATION}s per run after a \
${WARMUP}s warm-up; ${BODY_BYTES}-byte JSON from one NGINX upstream; $(nproc) CPU cores shared by wrk, upstream, \
Redis and proxy
every request carries \"Authorization: Bearer tok-NNNN\", rotating over $KEYS values; limits: apigw route \
$ROUTE_RATE/s (one bucket), apigw, NGINX and HAProxy per Authorization value $PER_KEY_RATE/s; apigw workers: 1, \
rate-limit Redis connections: 2, timeout 50ms
apigw binary: $APIGW_DESC; $(peer_versions); redis $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')
cpu % = CPU time of the target's processes / wall time (100 = one core); redis cpu % = redis-server's, same run
machine ${IDLE_BUSY}% busy (all cores) in the second before the first run; load average at the end: \
$(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" "$HELPER" ratelimit-report "$RESULTS" "$SIDE" "$TMP/metrics" "$HEADER" || die "could not print the report"

tail -n +$((REDIS_LOG_START + 1)) "$TMP/redis/redis.log" >"$TMP/redis/after-startup.log"
print_server_logs "$TMP"/upstream/error.log "$TMP"/nginx/error.log "$TMP"/nginx-limit/error.log \
  "$TMP"/haproxy/haproxy.log "$TMP"/haproxy-limit/haproxy.log "$TMP"/redis/after-startup.log \
  "$TMP"/plain/apigw.log "$TMP"/route/apigw.log "$TMP"/perkey/apigw.log
exit 0
