#!/usr/bin/env bash
# Compare apigw with NGINX and HAProxy as HTTP/1.1 reverse proxies on this machine, in one run.
#
#   bash bench/proxy.sh                 # 10 s per target after a 2 s warm-up
#   bash bench/proxy.sh --quick         # 3 s runs (1 s warm-up): a smoke run
#   DURATION=30 CONNECTIONS=128 bash bench/proxy.sh
#
# One NGINX upstream answers every request with a fixed 600-byte JSON body. In front of it, each with one worker
# thread: apigw (workers: 1), NGINX (proxy_pass, upstream keepalive) and HAProxy (nbthread 1). wrk (1 thread,
# CONNECTIONS connections, --latency) drives each in turn, and the upstream directly as a reference. Then apigw
# with workers: 2, then apigw's memory with RSS_CONNS idle keep-alive client connections. For every run it also
# reports where the CPU went per request (the target's user and system time, the whole machine's). See
# bench/README.md.
#
# Everything lives in one mktemp -d directory, removed at exit; every process is started here and stopped by
# its PID on exit or Ctrl-C. Exit status: 0 once the report is printed (PASS or FAIL alike), non-zero when
# something could not be started or measured.

set -u -o pipefail

BENCH_NAME=proxy.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RSS_CONNS=${RSS_CONNS:-10000}
# shellcheck source=bench/lib.sh
. "$SCRIPT_DIR/lib.sh"

usage() {
  cat <<EOF
usage: bash bench/proxy.sh [--quick] [--duration S] [--warmup S] [--connections N] [--apigw PATH]
                           [--rounds N] [--rss-conns N] [--keep]
EOF
  usage_flags "  --rss-conns N    idle keep-alive connections for the memory figure (env RSS_CONNS, default 10000)"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --rss-conns) RSS_CONNS=${2:?--rss-conns needs a value}; shift ;;
    --rss-conns=*) RSS_CONNS=${1#*=} ;;
    *) bench_flag "$@" || unknown_flag "$1"; shift $((BENCH_SHIFT - 1)) ;;
  esac
  shift
done
check_positive DURATION WARMUP CONNECTIONS ROUNDS RSS_CONNS

# ------------------------------------------------------------------------------------------------ checks
require_tools nginx haproxy wrk timeout pgrep setsid

# Raise the descriptor limit before anything starts: apigw (and the memory helper) need RSS_CONNS + margin.
NEED_NOFILE=$((RSS_CONNS + 1024))
raise_nofile "$NEED_NOFILE" " for $RSS_CONNS connections; raise it (e.g. run as root, or set the hard nofile limit) \
or use --rss-conns"

make_tmp_and_copy_apigw

# ------------------------------------------------------------------------------------------------ configs
free_ports 7
P_UP=${PORTS[0]} P_APIGW1=${PORTS[1]} P_NGINX=${PORTS[2]} P_HAPROXY=${PORTS[3]} P_APIGW2=${PORTS[4]} P_RSS=${PORTS[5]}
P_APIGWLOG=${PORTS[6]}

make_body
write_peer_configs
mkdir -p "$TMP/apigw1" "$TMP/apigw2" "$TMP/apigw-rss" "$TMP/apigw-log"
apigw_config "$P_APIGW1" 1 >"$TMP/apigw1/apigw.yaml"
apigw_config "$P_APIGW2" 2 >"$TMP/apigw2/apigw.yaml"
apigw_config "$P_RSS" 1 >"$TMP/apigw-rss/apigw.yaml"
apigw_config "$P_APIGWLOG" 1 "$TMP/apigw-log/access.log" >"$TMP/apigw-log/apigw.yaml"
validate_configs apigw1 apigw2 apigw-rss apigw-log

# ------------------------------------------------------------------------------------------------ start
start_upstream
start_apigw apigw-w1 apigw1 "$P_APIGW1" "apigw (workers: 1)"
PID_APIGW1=$LAST_PID
start_nginx_proxy
start_haproxy
start_apigw apigw-w2 apigw2 "$P_APIGW2" "apigw (workers: 2)"
PID_APIGW2=$LAST_PID
start_apigw apigw-log apigw-log "$P_APIGWLOG" "apigw (workers: 1, access log)"
PID_APIGWLOG=$LAST_PID

# ------------------------------------------------------------------------------------------------ throughput
measure_idle

# Where the CPU goes, per measured run: the target's user and system ticks (its direct children included) and the
# whole machine's busy and total ticks, as "KEY<TAB>ROUND<TAB>user<TAB>system<TAB>busy<TAB>total" in $CPU_SPLIT.
CPU_SPLIT="$TMP/cpu_split.tsv"
declare -A TARGET_PID=([upstream]=$PID_UP [apigw1]=$PID_APIGW1 [nginx]=$PID_NGINX [haproxy]=$PID_HAPROXY
                       [apigw2]=$PID_APIGW2 [apigwlog]=$PID_APIGWLOG)
bench_before_run() {
  read -r SPLIT_U0 SPLIT_S0 < <(split_ticks "${TARGET_PID[$1]}")
  read -r MACHINE_B0 MACHINE_T0 < <(machine_ticks)
}
bench_after_run() {
  local user sys busy total
  read -r busy total < <(machine_ticks)
  read -r user sys < <(split_ticks "${TARGET_PID[$1]}")
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" $((user - SPLIT_U0)) $((sys - SPLIT_S0)) $((busy - MACHINE_B0)) \
    $((total - MACHINE_T0)) >>"$CPU_SPLIT"
}

for ((round = 1; round <= ROUNDS; round++)); do
  run_target upstream "upstream NGINX (direct)" "$P_UP" "$PID_UP" "$round"
  run_target apigw1 "apigw (workers: 1)" "$P_APIGW1" "$PID_APIGW1" "$round"
  run_target nginx "NGINX proxy (1 worker)" "$P_NGINX" "$PID_NGINX" "$round"
  run_target haproxy "HAProxy (nbthread 1)" "$P_HAPROXY" "$PID_HAPROXY" "$round"
  run_target apigw2 "apigw (workers: 2)" "$P_APIGW2" "$PID_APIGW2" "$round"
  run_target apigwlog "apigw (workers: 1, access log)" "$P_APIGWLOG" "$PID_APIGWLOG" "$round"
done
ACCESS_LINES=$(wc -l <"$TMP/apigw-log/access.log" 2>/dev/null || echo 0)

# The proxies are no longer needed; the upstream stays for the memory test.
stop_named "$PID_APIGW1"
stop_named "$PID_APIGW2"
stop_named "$PID_APIGWLOG"
stop_named "$PID_NGINX"
stop_named "$PID_HAPROXY"

# ------------------------------------------------------------------------------------------------ memory
vm_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null; }

RSS_FILE="$TMP/rss.tsv"
start_apigw apigw-rss apigw-rss "$P_RSS" "apigw (workers: 1, memory)"
PID_RSS=$LAST_PID
sleep 0.5
[ "$(awk '/^Max open files/ { print $4 }' "/proc/$PID_RSS/limits")" -ge "$NEED_NOFILE" ] 2>/dev/null ||
  die "apigw's open-file limit ($(awk '/^Max open files/ { print $4 }' "/proc/$PID_RSS/limits")) is below $NEED_NOFILE"
BASE_RSS=$(vm_kb "$PID_RSS" VmRSS)
[ -n "$BASE_RSS" ] || die "cannot read /proc/$PID_RSS/status"
log "apigw memory: VmRSS ${BASE_RSS} kB at start; opening $RSS_CONNS keep-alive connections"
timeout --foreground -k 5 240 "$PY" "$HELPER" hold --port "$P_RSS" --pid "$PID_RSS" --count "$RSS_CONNS" \
  --window 128 --hold 2 --timeout 180 --out "$RSS_FILE" ||
  { show_log "$TMP/apigw-rss/apigw.log"; die "the idle-connection helper failed"; }
alive "$PID_RSS" || { show_log "$TMP/apigw-rss/apigw.log"; die "apigw died while holding $RSS_CONNS connections"; }
sleep 2
AFTER_RSS=$(vm_kb "$PID_RSS" VmRSS)
{
  printf 'count\t%s\n' "$RSS_CONNS"
  printf 'base_rss_kb\t%s\n' "$BASE_RSS"
  printf 'after_close_rss_kb\t%s\n' "${AFTER_RSS:--1}"
  printf 'access_lines\t%s\n' "$ACCESS_LINES"
} >>"$RSS_FILE"
stop_named "$PID_RSS"

# ------------------------------------------------------------------------------------------------ report
HEADER="apigw proxy benchmark: wrk 1 thread, $CONNECTIONS connections, ${DURATION}s per run after a \
${WARMUP}s warm-up; ${BODY_BYTES}-byte JSON from one NGINX upstream; $(nproc) CPU cores shared by wrk, upstream \
and proxy
apigw binary: $APIGW_DESC; $(peer_versions); \
cpu % = CPU time of the target's processes / wall time (100 = one core)
machine ${IDLE_BUSY}% busy (all cores) in the second before the first run; load average at the end: \
$(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" "$HELPER" report "$RESULTS" "$RSS_FILE" "$HEADER" "$CPU_SPLIT" "$CLK_TCK" || die "could not print the report"

print_server_logs "$TMP"/upstream/error.log "$TMP"/upstream/stdout.log "$TMP"/nginx/error.log \
  "$TMP"/nginx/stdout.log "$TMP"/haproxy/haproxy.log "$TMP"/apigw1/apigw.log "$TMP"/apigw2/apigw.log \
  "$TMP"/apigw-rss/apigw.log "$TMP"/apigw-log/apigw.log
exit 0
