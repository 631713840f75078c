#!/usr/bin/env bash
# What copying every request to a second upstream costs: apigw with a 100 % migration shadow against apigw proxying
# plainly, and NGINX's mirror against NGINX proxying plainly, on this machine, in one run.
#
#   bash bench/shadow.sh                 # 10 s per target after a 2 s warm-up
#   bash bench/shadow.sh --quick         # 3 s runs (1 s warm-up): a smoke run
#   bash bench/shadow.sh --rounds 3      # every target 3 times, interleaved; each reported by its median run
#
# Two NGINX upstreams answer every request with the same 600-byte JSON body: the primary side and the shadow side.
# In front of them, each with one worker: apigw plain (the catch-all route to the primary side), apigw shadow (the
# same route with `shadow: { upstream: shadow, percent: 100 }`: every request is also copied, asynchronously, to the
# shadow side), NGINX plain (proxy_pass), NGINX mirror (the same with `mirror` to the shadow side) and HAProxy plain
# (it has no built-in mirroring). wrk (1 thread, CONNECTIONS connections, --latency) drives each in turn, as fast as
# it answers; then the apigw and NGINX targets again, paced (the same offered load for each, a light one and a
# heavier one, see below). Around
# every measured run the script reads both upstreams' stub_status and apigw's /metrics: the report says how many
# requests each side received and what apigw counted as copied, answered, failed and dropped.
#
# Targets: apigw shadow req/s >= 0.6x apigw plain's, and its p99 at most 1.2x apigw plain's at the same offered load
# (each pace); printed PASS or FAIL. The p99 ratio of the runs as fast as the server answers is reported only: with
# wrk's connections always busy, latency there is about CONNECTIONS / req/s, so it restates the req/s ratio.
# Temporary files, process handling and exit status as in proxy.sh (bench/lib.sh): one mktemp -d directory, every
# process started here and stopped by its PID; 0 once the report is printed (PASS or FAIL alike), non-zero when
# something could not be started or measured (including a shadow copy that never reaches the shadow side).

set -u -o pipefail

BENCH_NAME=shadow.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$SCRIPT_DIR/lib.sh"

STATUS_PATH=/nginx-status    # stub_status location of both upstreams (requests and connections they counted)
SHADOW_HEADER=X-Apigw-Shadow # apigw marks its copies with it (its default); NGINX's mirror is given the same
SETTLE=0.25                  # seconds for the last copies of a run to land before the counters are read
COPY_WAIT=5                  # seconds for a startup check's copy to reach the shadow side
PACE=${PACE:-20,5}           # ms each connection waits on average between an answer and its next request, per pace

usage() {
  cat <<EOF
usage: bash bench/shadow.sh [--quick] [--duration S] [--warmup S] [--connections N] [--apigw PATH]
                            [--rounds N] [--pace MS] [--keep]
EOF
  usage_flags "  --pace MS[,MS]   in the paced runs each connection waits MS ms on average (a random 0..2*MS) between
                   an answer and its next request, one set of paced runs per MS (env PACE, default 20,5);
                   0: no paced runs"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --pace) PACE=${2:?--pace needs a value}; shift ;;
    --pace=*) PACE=${1#*=} ;;
    *) bench_flag "$@" || unknown_flag "$1"; shift $((BENCH_SHIFT - 1)) ;;
  esac
  shift
done
check_positive DURATION WARMUP CONNECTIONS ROUNDS
[[ $PACE =~ ^[0-9]+(,[0-9]+)*$ ]] ||
  { echo "$BENCH_NAME: --pace must be whole numbers of ms, separated by commas (got '$PACE')" >&2; exit 2; }
IFS=, read -r -a PACES <<<"$PACE"
[ "$PACE" = 0 ] && PACES=()
for p in ${PACES[@]+"${PACES[@]}"}; do
  [ "$p" -gt 0 ] || { echo "$BENCH_NAME: a pace must be at least 1 ms (got '$PACE')" >&2; exit 2; }
done

# ------------------------------------------------------------------------------------------------ checks
require_tools nginx haproxy wrk timeout pgrep setsid
raise_nofile 4096 "; raise it (e.g. run as root, or set the hard nofile limit)"
make_tmp_and_copy_apigw

# ------------------------------------------------------------------------------------------------ configs
free_ports 9
P_UP=${PORTS[0]} P_UP2=${PORTS[1]} P_NGINX=${PORTS[2]} P_HAPROXY=${PORTS[3]} P_MIRROR=${PORTS[4]}
# targets: key -> client port (and, apigw's, admin port); an apigw key names its directory under $TMP
declare -A PORT_OF=(
  [plain]=${PORTS[5]} [shadow]=${PORTS[6]} [nginx]=$P_NGINX [mirror]=$P_MIRROR [haproxy]=$P_HAPROXY
)
declare -A ADMIN_OF=([plain]=${PORTS[7]} [shadow]=${PORTS[8]})
declare -A LABEL_OF=(
  [plain]="apigw plain"
  [shadow]="apigw shadow 100%"
  [nginx]="NGINX plain"
  [mirror]="NGINX mirror"
  [haproxy]="HAProxy plain"
)
TARGETS=(plain shadow nginx mirror haproxy)   # the order of every round: each shadowing target after its plain one
PACED=(plain shadow nginx mirror)             # then these again, at each pace: the same offered load for each

make_body
# The peers of proxy.sh (upstream, NGINX plain, HAProxy); then both upstreams as proxy.sh's, each with a stub_status
# location for counting what it received.
write_peer_configs
STATUS_LOCATION="    location = $STATUS_PATH { stub_status; }"
write_upstream_config_at "$TMP/upstream" "$P_UP" "$STATUS_LOCATION"
write_upstream_config_at "$TMP/upstream-shadow" "$P_UP2" "$STATUS_LOCATION"

# NGINX mirror: NGINX plain, plus a background subrequest per request to the shadow side (with the request body, and
# an upstream block with keepalive 64 as for the primary side), whose answer NGINX discards.
write_nginx_proxy_config "$TMP/mirror" "$P_MIRROR" "  upstream shadow {
    server 127.0.0.1:$P_UP2;
    keepalive 64;
    keepalive_requests 100000;
  }" "      mirror /mirror;
      mirror_request_body on;" "    location = /mirror {
      internal;
      proxy_pass http://shadow\$request_uri;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_set_header $SHADOW_HEADER 1;
    }"

# apigw: both configs have the shadow side as upstream "shadow" (like "backend", max_connections 256 per worker) and
# differ only in the route's shadow and the migration section it needs. Requests without X-Device-Id draw their
# affinity bucket at random; at 100 % every request is copied anyway.
with_shadow_upstream() {  # filter: apigw_config's output with the upstream "shadow" added
  awk -v port="$P_UP2" '{ print } $0 == "upstreams:" {
    print "  shadow:"; print "    endpoints: [127.0.0.1:" port "]"; print "    max_connections: 256" }'
}
for v in plain shadow; do
  mkdir -p "$TMP/$v"
  {
    apigw_config "${PORT_OF[$v]}" 1 off "127.0.0.1:${ADMIN_OF[$v]}"
    if [ "$v" = shadow ]; then
      cat <<EOF
    shadow: { upstream: shadow, percent: 100 }
migration:
  affinity: [header:X-Device-Id]
  shadow: { max_in_flight: 10000, timeout: 5s }
EOF
    fi
  } | with_shadow_upstream >"$TMP/$v/apigw.yaml"
done
validate_configs plain shadow
validate_nginx upstream-shadow mirror

# ------------------------------------------------------------------------------------------------ start
shadow_count() {  # requests the shadow-side NGINX has counted (each read counts itself too)
  timeout 15 "$PY" "$HELPER" stub-status "$P_UP2" "$STATUS_PATH" || die "cannot read the shadow side's stub_status"
}
# check_copies KEY: one GET /bench through the target; its copy must reach the shadow side within COPY_WAIT s.
check_copies() {
  local key=$1 c0 c i why
  c0=$(shadow_count) || exit 1
  why=$(timeout 15 "$PY" "$HELPER" check-get "${PORT_OF[$key]}" /bench "$BODY_BYTES") ||
    die "${LABEL_OF[$key]} does not answer as expected: $why"
  for ((i = 1; i <= COPY_WAIT * 10; i++)); do
    c=$(shadow_count) || exit 1
    # c counts c0's read, the copy, and the i reads since c0
    [ $((c - c0 - i)) -ge 1 ] && { log "${LABEL_OF[$key]}: its copy of a request reached the shadow side"; return 0; }
    sleep 0.1
  done
  show_log "$TMP/$key"/*.log "$TMP"/upstream-shadow/*.log
  die "${LABEL_OF[$key]}: a request's copy did not reach the shadow side within ${COPY_WAIT}s"
}

start_upstream
start_nginx_at upstream-shadow "shadow-side upstream NGINX" "$TMP/upstream-shadow" "$P_UP2"
PID_UP2=$LAST_PID
declare -A PID_OF
for v in plain shadow; do
  start_apigw "apigw-$v" "$v" "${PORT_OF[$v]}" "${LABEL_OF[$v]}"
  PID_OF[$v]=$LAST_PID
done
start_nginx_proxy
PID_OF[nginx]=$PID_NGINX
start_nginx_at nginx-mirror "${LABEL_OF[mirror]}" "$TMP/mirror" "$P_MIRROR"
PID_OF[mirror]=$LAST_PID
start_haproxy
PID_OF[haproxy]=$PID_HAPROXY
check_copies shadow
check_copies mirror

# ------------------------------------------------------------------------------------------------ throughput
measure_idle
SIDE="$TMP/upstream-cpu.tsv"
: >"$SIDE"
mkdir -p "$TMP/metrics"

# counters KEY ROUND WHEN: both upstreams' stub_status and, for apigw, its /metrics, into $TMP/metrics.
counters() {
  local f="$1-r$2-$3.txt" target=${1%%-paced-*}
  timeout 15 "$PY" "$HELPER" stub-status "$P_UP" "$STATUS_PATH" "$TMP/metrics/up-$f" >/dev/null ||
    die "cannot read the primary side's stub_status"
  timeout 15 "$PY" "$HELPER" stub-status "$P_UP2" "$STATUS_PATH" "$TMP/metrics/sh-$f" >/dev/null ||
    die "cannot read the shadow side's stub_status"
  if [ -n "${ADMIN_OF[$target]:-}" ]; then
    timeout 15 "$PY" "$HELPER" metrics "${ADMIN_OF[$target]}" "$TMP/metrics/$f" ||
      die "could not read the metrics of ${LABEL_OF[$target]}"
  fi
}
# Called by run_target around each measured run: the counters (once the previous run's last copies have landed)
# and the CPU both upstreams used meanwhile.
bench_before_run() {
  sleep "$SETTLE"
  counters "$1" "$2" before
  UP_C0=$(cpu_ticks "$PID_UP")
  UP2_C0=$(cpu_ticks "$PID_UP2")
  UP_T0=$(now_ns)
}
bench_after_run() {
  local c1 c2 t1
  c1=$(cpu_ticks "$PID_UP")
  c2=$(cpu_ticks "$PID_UP2")
  t1=$(now_ns)
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$(cpu_pct $((c1 - UP_C0)) $((t1 - UP_T0)))" \
    "$(cpu_pct $((c2 - UP2_C0)) $((t1 - UP_T0)))" >>"$SIDE"
  sleep "$SETTLE"
  counters "$1" "$2" after
}

# The paced runs: wrk sends the next request on a connection a random 0..2*PACE ms (PACE on average) after the
# answer to the previous one, so every target is offered about CONNECTIONS / (PACE + its latency) requests per second
# instead of as many as it can answer. The wait is random so that the connections do not move in lockstep: with a
# fixed one they all send at the same moments, and the latency measured is how long a burst of CONNECTIONS requests
# takes to drain. Their results go under KEY-paced-MS.
for p in ${PACES[@]+"${PACES[@]}"}; do
  printf 'function delay()\n  return math.random(0, %d)\nend\n' "$((2 * p))" >"$TMP/paced-$p.lua"
done

for ((round = 1; round <= ROUNDS; round++)); do
  for key in "${TARGETS[@]}"; do
    run_target "$key" "${LABEL_OF[$key]}" "${PORT_OF[$key]}" "${PID_OF[$key]}" "$round"
  done
  for p in ${PACES[@]+"${PACES[@]}"}; do
    for key in "${PACED[@]}"; do
      run_target "$key-paced-$p" "${LABEL_OF[$key]}, paced $p ms" "${PORT_OF[$key]}" "${PID_OF[$key]}" "$round" \
        -s "$TMP/paced-$p.lua"
    done
  done
done
alive "$PID_UP" || { show_log "$TMP"/upstream/*.log; die "the primary-side upstream died during the runs"; }
alive "$PID_UP2" || { show_log "$TMP"/upstream-shadow/*.log; die "the shadow-side upstream died during the runs"; }

# ------------------------------------------------------------------------------------------------ report
paces_text() {
  [ ${#PACES[@]} = 0 ] && { echo "no paced runs"; return; }
  local p sep="paced runs: each connection waits a random 0-2P ms (P on average) between an answer and its next request,"
  for p in "${PACES[@]}"; do
    sep+=" P = $p ms: at most $((CONNECTIONS * 1000 / p)) req/s offered to every target;"
  done
  echo "${sep%;}"
}
HEADER="apigw shadow benchmark: wrk 1 thread, $CONNECTIONS connections, ${DURATION}s per run after a ${WARMUP}s \
warm-up; ${BODY_BYTES}-byte JSON from two NGINX upstreams (primary side, shadow side; 1 worker each); $(nproc) CPU \
cores shared by wrk, both upstreams and the proxy
one worker each: apigw workers: 1, NGINX worker_processes 1, HAProxy nbthread 1; apigw shadow: route shadow { upstream: shadow, percent: 100 }, migration.shadow { max_in_flight: 10000, timeout: 5s }; \
NGINX mirror: mirror /mirror, mirror_request_body on, keepalive 64 to each side; HAProxy: no mirroring
$(paces_text)
apigw binary: $APIGW_DESC; $(peer_versions)
cpu % = CPU time of the target's processes / wall time (100 = one core); up cpu % and shadow up % = the primary-side \
and shadow-side upstream NGINX's, same run
machine ${IDLE_BUSY}% busy (all cores) in the second before the first run; load average at the end: \
$(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" "$HELPER" shadow-report "$RESULTS" "$SIDE" "$TMP/metrics" "$HEADER" || die "could not print the report"

print_server_logs "$TMP"/upstream/error.log "$TMP"/upstream/stdout.log "$TMP"/upstream-shadow/error.log \
  "$TMP"/upstream-shadow/stdout.log "$TMP"/nginx/error.log "$TMP"/nginx/stdout.log "$TMP"/mirror/error.log \
  "$TMP"/mirror/stdout.log "$TMP"/haproxy/haproxy.log "$TMP"/plain/apigw.log "$TMP"/shadow/apigw.log
exit 0
