#!/usr/bin/env bash
# What W3C Trace Context and span export cost apigw, against the same route without tracing, beside NGINX and
# HAProxy proxying the same upstream, on this machine, in one run.
#
#   bash bench/tracing.sh                 # 10 s per target after a 2 s warm-up
#   bash bench/tracing.sh --quick         # 3 s runs (1 s warm-up): a smoke run
#   bash bench/tracing.sh --rounds 3      # every target 3 times, interleaved; each reported by its median run
#
# One NGINX upstream answers every request with a fixed 600-byte JSON body; a second NGINX stands in for the
# OpenTelemetry collector (POST /v1/traces answered 200, the body read and dropped). wrk (1 thread, CONNECTIONS
# connections) sends requests without a traceparent, so apigw starts a trace for each. In front of the upstream,
# each with one worker:
#   - apigw plain: no tracing section;
#   - apigw propagate: `tracing: { sample: 1% }` without a collector: every request gets a trace id and a
#     traceparent to the upstream, nothing is exported;
#   - apigw 1%: `sample: 1%` with the collector: about one request in a hundred exports two spans;
#   - apigw 100%: `sample: 100%` with the collector: every request exports two spans;
#   - NGINX proxy and HAProxy, without tracing (neither Debian package exports OpenTelemetry spans).
# apigw's /metrics are read around every measured run: the report gives the spans exported, dropped and failed.
#
# Target: apigw 1% >= 0.95x apigw plain's req/s (tracing at 1 % sampling costs at most 5 %); 100 % is reported.
# Temporary files, process handling and exit status as in proxy.sh (bench/lib.sh).

set -u -o pipefail

BENCH_NAME=tracing.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$SCRIPT_DIR/lib.sh"

usage() {
  cat <<USAGE
usage: bash bench/tracing.sh [--quick] [--duration S] [--warmup S] [--connections N] [--apigw PATH] [--rounds N]
                             [--keep]
USAGE
  usage_flags
}

while [ $# -gt 0 ]; do
  bench_flag "$@" || unknown_flag "$1"
  shift "$BENCH_SHIFT"
done
check_positive DURATION WARMUP CONNECTIONS ROUNDS

# ------------------------------------------------------------------------------------------------ checks
INSTALL_HINT="nginx-light haproxy wrk"
require_tools nginx haproxy wrk timeout pgrep setsid
raise_nofile 4096 "; raise it (e.g. run as root, or set the hard nofile limit)"
make_tmp_and_copy_apigw

# ------------------------------------------------------------------------------------------------ configs
free_ports 12
P_UP=${PORTS[0]} P_NGINX=${PORTS[1]} P_HAPROXY=${PORTS[2]} P_COLLECTOR=${PORTS[3]}
declare -A PORT_OF=([plain]=${PORTS[4]} [propagate]=${PORTS[5]} [one]=${PORTS[6]} [all]=${PORTS[7]})
declare -A ADMIN_OF=([plain]=${PORTS[8]} [propagate]=${PORTS[9]} [one]=${PORTS[10]} [all]=${PORTS[11]})
declare -A LABEL_OF=(
  [plain]="apigw plain (no tracing)"
  [propagate]="apigw propagate only"
  [one]="apigw tracing 1%"
  [all]="apigw tracing 100%"
)
VARIANTS=(plain propagate one all)

make_body
write_peer_configs
write_upstream_config_at "$TMP/collector" "$P_COLLECTOR" "    client_max_body_size 64m;"

for v in "${VARIANTS[@]}"; do
  mkdir -p "$TMP/$v"
  {
    apigw_config "${PORT_OF[$v]}" 1 off "127.0.0.1:${ADMIN_OF[$v]}"
    case "$v" in
      propagate) echo "tracing: { sample: 1% }" ;;
      one) echo "tracing: { sample: 1%, otlp: \"http://127.0.0.1:$P_COLLECTOR\" }" ;;
      all) echo "tracing: { sample: 100%, otlp: \"http://127.0.0.1:$P_COLLECTOR\", queue: 100000 }" ;;
    esac
  } >"$TMP/$v/apigw.yaml"
done
validate_configs "${VARIANTS[@]}"
validate_nginx collector

# ------------------------------------------------------------------------------------------------ start
start_upstream
start_nginx_proxy
start_haproxy
start_nginx_at collector "the collector NGINX" "$TMP/collector" "$P_COLLECTOR"
PID_COLLECTOR=$LAST_PID

declare -A PID_OF
for v in "${VARIANTS[@]}"; do
  start_apigw "apigw-$v" "$v" "${PORT_OF[$v]}" "${LABEL_OF[$v]}"
  PID_OF[$v]=$LAST_PID
done

# ------------------------------------------------------------------------------------------------ throughput
measure_idle
SIDE="$TMP/collector-cpu.tsv"
: >"$SIDE"
mkdir -p "$TMP/metrics"

bench_before_run() {
  side_cpu_start "$PID_COLLECTOR"
  [ -n "${ADMIN_OF[$1]:-}" ] || return 0
  "$PY" "$HELPER" metrics "${ADMIN_OF[$1]}" "$TMP/metrics/$1-r$2-before.txt" ||
    die "could not read the metrics of ${LABEL_OF[$1]}"
}
bench_after_run() {
  side_cpu_record "$1" "$2" "$PID_COLLECTOR"
  [ -n "${ADMIN_OF[$1]:-}" ] || return 0
  sleep 1.5  # spans of the run still lingering in a batch are exported within a second
  "$PY" "$HELPER" metrics "${ADMIN_OF[$1]}" "$TMP/metrics/$1-r$2-after.txt" ||
    die "could not read the metrics of ${LABEL_OF[$1]}"
}

# Each round starts one target further along, so that no variant always runs first (on this machine, where a target
# runs in the sequence moves its req/s as much as the variants differ).
TARGETS=("${VARIANTS[@]}" nginx haproxy)
for ((round = 1; round <= ROUNDS; round++)); do
  for ((i = 0; i < ${#TARGETS[@]}; i++)); do
    t=${TARGETS[$(((i + round - 1) % ${#TARGETS[@]}))]}
    case "$t" in
      nginx) run_target nginx "NGINX proxy" "$P_NGINX" "$PID_NGINX" "$round" ;;
      haproxy) run_target haproxy "HAProxy" "$P_HAPROXY" "$PID_HAPROXY" "$round" ;;
      *) run_target "$t" "${LABEL_OF[$t]}" "${PORT_OF[$t]}" "${PID_OF[$t]}" "$round" ;;
    esac
  done
done

# ------------------------------------------------------------------------------------------------ report
HEADER="apigw tracing benchmark: wrk 1 thread, $CONNECTIONS connections, ${DURATION}s per run after a \
${WARMUP}s warm-up; ${BODY_BYTES}-byte JSON from one NGINX upstream; $(nproc) CPU cores shared by wrk, upstream, \
collector and proxy
requests carry no traceparent: apigw starts a trace for each; spans go to an NGINX standing in for the \
OTLP/HTTP collector; apigw workers: 1
apigw binary: $APIGW_DESC; $(peer_versions)
cpu % = CPU time of the target's processes / wall time (100 = one core); collector cpu % = the collector NGINX's
machine ${IDLE_BUSY}% busy (all cores) in the second before the first run; load average at the end: \
$(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" "$HELPER" tracing-report "$RESULTS" "$SIDE" "$TMP/metrics" "$HEADER" || die "could not print the report"

print_server_logs "$TMP"/upstream/error.log "$TMP"/collector/error.log "$TMP"/nginx/error.log \
  "$TMP"/haproxy/haproxy.log "$TMP"/plain/apigw.log "$TMP"/propagate/apigw.log "$TMP"/one/apigw.log \
  "$TMP"/all/apigw.log
exit 0
