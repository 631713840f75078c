#!/usr/bin/env bash
# Compare apigw with NGINX and HAProxy as HTTP/1.1 reverse proxies on this machine, in one run.
#
#   bash bench/proxy.sh                 # 10 s per target after a 2 s warm-up
#   bash bench/proxy.sh --quick         # 3 s runs (1 s warm-up): a smoke run
#   DURATION=30 CONNECTIONS=128 bash bench/proxy.sh
#   bash bench/proxy.sh --rounds 3 --baseline /tmp/apigw-prev/build/apigw   # against an earlier apigw binary
#
# One NGINX upstream answers every request with a fixed 600-byte JSON body. In front of it, each with one worker
# thread: apigw (workers: 1), NGINX (proxy_pass, upstream keepalive) and HAProxy (nbthread 1). wrk (1 thread,
# CONNECTIONS connections, --latency) drives each in turn, and the upstream directly as a reference. Then apigw
# with workers: 2, then apigw's memory with RSS_CONNS idle keep-alive client connections. For every run it also
# reports where the CPU went per request (the target's user and system time, the whole machine's).
#
# With --baseline PATH (env BASELINE), a second apigw binary (typically built from the previous commit) runs as
# "apigw baseline (workers: 1)" with apigw (workers: 1)'s config on its own port, measured right after apigw
# (workers: 1) in every round, and its memory is measured the same way after apigw's. The report then compares
# the two run by run: req/s, p99 and own CPU per request, with a "no worse" verdict within a noise allowance.
# See bench/README.md.
#
# Everything lives in one mktemp -d directory, removed at exit; every process is started here and stopped by
# its PID on exit or Ctrl-C. Exit status: 0 once the report is printed (PASS or FAIL alike), non-zero when
# something could not be started or measured.

set -u -o pipefail

BENCH_NAME=proxy.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RSS_CONNS=${RSS_CONNS:-10000}
BASELINE=${BASELINE:-}
# shellcheck source=bench/lib.sh
. "$SCRIPT_DIR/lib.sh"

usage() {
  cat <<EOF
usage: bash bench/proxy.sh [--quick] [--duration S] [--warmup S] [--connections N] [--apigw PATH]
                           [--baseline PATH] [--rounds N] [--rss-conns N] [--keep]
EOF
  usage_flags "  --baseline PATH  an earlier apigw binary, measured beside apigw (workers: 1) in every round and
                   in the memory test, and compared with it in the report (env BASELINE, default none)
  --rss-conns N    idle keep-alive connections for the memory figure (env RSS_CONNS, default 10000)"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --rss-conns) RSS_CONNS=${2:?--rss-conns needs a value}; shift ;;
    --rss-conns=*) RSS_CONNS=${1#*=} ;;
    --baseline) BASELINE=${2:?--baseline needs a value}; shift ;;
    --baseline=*) BASELINE=${1#*=} ;;
    *) bench_flag "$@" || unknown_flag "$1"; shift $((BENCH_SHIFT - 1)) ;;
  esac
  shift
done
check_positive DURATION WARMUP CONNECTIONS ROUNDS RSS_CONNS
case "$BASELINE" in '' | /*) ;; *) BASELINE="$PWD/$BASELINE" ;; esac  # before make_tmp_and_copy_apigw leaves $PWD

# ------------------------------------------------------------------------------------------------ checks
require_tools nginx haproxy wrk timeout pgrep setsid

# Raise the descriptor limit before anything starts: apigw (and the memory helper) need RSS_CONNS + margin.
NEED_NOFILE=$((RSS_CONNS + 1024))
raise_nofile "$NEED_NOFILE" " for $RSS_CONNS connections; raise it (e.g. run as root, or set the hard nofile limit) \
or use --rss-conns"

make_tmp_and_copy_apigw
if [ -n "$BASELINE" ]; then
  # The baseline is copied like the main binary, so a rebuild of either during the run changes nothing.
  copy_binary "$BASELINE" "$TMP/apigw-baseline" "set BASELINE or --baseline"
  BASELINE_BIN="$TMP/apigw-baseline"
  BASELINE_DESC="$BASELINE ($(stat -c '%y' "$BASELINE" | cut -d. -f1))"
  if cmp -s "$APIGW_BIN" "$BASELINE_BIN"; then
    BASELINE_DESC="$BASELINE_DESC, byte-identical to the apigw binary: the comparison measures only the noise"
    log "note: the baseline $BASELINE is byte-identical to $APIGW"
  fi
fi

# ------------------------------------------------------------------------------------------------ configs
if [ -n "$BASELINE" ]; then free_ports 9; else free_ports 7; fi
P_UP=${PORTS[0]} P_APIGW1=${PORTS[1]} P_NGINX=${PORTS[2]} P_HAPROXY=${PORTS[3]} P_APIGW2=${PORTS[4]} P_RSS=${PORTS[5]}
P_APIGWLOG=${PORTS[6]} P_BASE=${PORTS[7]:-} P_BASE_RSS=${PORTS[8]:-}

make_body
write_peer_configs
mkdir -p "$TMP/apigw1" "$TMP/apigw2" "$TMP/apigw-rss" "$TMP/apigw-log"
apigw_config "$P_APIGW1" 1 >"$TMP/apigw1/apigw.yaml"
apigw_config "$P_APIGW2" 2 >"$TMP/apigw2/apigw.yaml"
apigw_config "$P_RSS" 1 >"$TMP/apigw-rss/apigw.yaml"
apigw_config "$P_APIGWLOG" 1 "$TMP/apigw-log/access.log" >"$TMP/apigw-log/apigw.yaml"
validate_configs apigw1 apigw2 apigw-rss apigw-log
if [ -n "$BASELINE" ]; then
  # The baseline runs apigw (workers: 1)'s config, on its own ports; an older binary may not know all of it.
  mkdir -p "$TMP/baseline" "$TMP/baseline-rss"
  apigw_config "$P_BASE" 1 >"$TMP/baseline/apigw.yaml"
  apigw_config "$P_BASE_RSS" 1 >"$TMP/baseline-rss/apigw.yaml"
  for d in baseline baseline-rss; do
    timeout 20 "$BASELINE_BIN" -t -c "$TMP/$d/apigw.yaml" >"$TMP/$d/test.log" 2>&1 || {
      show_log "$TMP/$d/test.log"
      echo "---- the config it was given (apigw (workers: 1)'s, on another port) ----" >&2
      cat "$TMP/$d/apigw.yaml" >&2
      die "the baseline binary $BASELINE rejects the config apigw (workers: 1) runs with (its -t output and \
the config are above), so it cannot be measured beside apigw; use a baseline that accepts this config"
    }
  done
fi

# ------------------------------------------------------------------------------------------------ start
start_upstream
start_apigw apigw-w1 apigw1 "$P_APIGW1" "apigw (workers: 1)"
PID_APIGW1=$LAST_PID
if [ -n "$BASELINE" ]; then
  start_apigw apigw-baseline baseline "$P_BASE" "apigw baseline (workers: 1)" "$BASELINE_BIN"
  PID_BASE=$LAST_PID
fi
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
[ -z "$BASELINE" ] || TARGET_PID[baseline]=$PID_BASE
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
  # Right after apigw, so that the two alternate under the same state of the machine.
  [ -z "$BASELINE" ] || run_target baseline "apigw baseline (workers: 1)" "$P_BASE" "$PID_BASE" "$round"
  run_target nginx "NGINX proxy (1 worker)" "$P_NGINX" "$PID_NGINX" "$round"
  run_target haproxy "HAProxy (nbthread 1)" "$P_HAPROXY" "$PID_HAPROXY" "$round"
  run_target apigw2 "apigw (workers: 2)" "$P_APIGW2" "$PID_APIGW2" "$round"
  run_target apigwlog "apigw (workers: 1, access log)" "$P_APIGWLOG" "$PID_APIGWLOG" "$round"
done
ACCESS_LINES=$(wc -l <"$TMP/apigw-log/access.log" 2>/dev/null || echo 0)

# The proxies are no longer needed; the upstream stays for the memory test.
stop_named "$PID_APIGW1"
[ -z "$BASELINE" ] || stop_named "$PID_BASE"
stop_named "$PID_APIGW2"
stop_named "$PID_APIGWLOG"
stop_named "$PID_NGINX"
stop_named "$PID_HAPROXY"

# ------------------------------------------------------------------------------------------------ memory
vm_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null; }

# measure_memory NAME DIR PORT LABEL WHO BINARY OUT: start apigw (BINARY) with $TMP/DIR/apigw.yaml, read its VmRSS,
# hold RSS_CONNS idle keep-alive connections to it (bench_helper.py hold, its figures into OUT), read VmRSS again 2 s
# after closing them, stop it. WHO names it in messages.
measure_memory() {
  local name=$1 dir=$2 port=$3 label=$4 who=$5 bin=$6 out=$7 pid base after
  start_apigw "$name" "$dir" "$port" "$label" "$bin"
  pid=$LAST_PID
  sleep 0.5
  [ "$(awk '/^Max open files/ { print $4 }' "/proc/$pid/limits")" -ge "$NEED_NOFILE" ] 2>/dev/null ||
    die "$who's open-file limit ($(awk '/^Max open files/ { print $4 }' "/proc/$pid/limits")) is below $NEED_NOFILE"
  base=$(vm_kb "$pid" VmRSS)
  [ -n "$base" ] || die "cannot read /proc/$pid/status"
  log "$who memory: VmRSS ${base} kB at start; opening $RSS_CONNS keep-alive connections"
  timeout --foreground -k 5 240 "$PY" "$HELPER" hold --port "$port" --pid "$pid" --count "$RSS_CONNS" \
    --window 128 --hold 2 --timeout 180 --out "$out" ||
    { show_log "$TMP/$dir/apigw.log"; die "the idle-connection helper failed"; }
  alive "$pid" || { show_log "$TMP/$dir/apigw.log"; die "$who died while holding $RSS_CONNS connections"; }
  sleep 2
  after=$(vm_kb "$pid" VmRSS)
  {
    printf 'count\t%s\n' "$RSS_CONNS"
    printf 'base_rss_kb\t%s\n' "$base"
    printf 'after_close_rss_kb\t%s\n' "${after:--1}"
  } >>"$out"
  stop_named "$pid"
}

RSS_FILE="$TMP/rss.tsv"
measure_memory apigw-rss apigw-rss "$P_RSS" "apigw (workers: 1, memory)" apigw "$APIGW_BIN" "$RSS_FILE"
printf 'access_lines\t%s\n' "$ACCESS_LINES" >>"$RSS_FILE"
# The baseline's, after apigw's has ended: the same RSS_CONNS connections, the same helper.
BASE_RSS_FILE=""
if [ -n "$BASELINE" ]; then
  BASE_RSS_FILE="$TMP/rss-baseline.tsv"
  measure_memory apigw-baseline-rss baseline-rss "$P_BASE_RSS" "apigw baseline (workers: 1, memory)" \
    "apigw baseline" "$BASELINE_BIN" "$BASE_RSS_FILE"
fi

# ------------------------------------------------------------------------------------------------ report
HEADER="apigw proxy benchmark: wrk 1 thread, $CONNECTIONS connections, ${DURATION}s per run after a \
${WARMUP}s warm-up; ${BODY_BYTES}-byte JSON from one NGINX upstream; $(nproc) CPU cores shared by wrk, upstream \
and proxy
apigw binary: $APIGW_DESC;${BASELINE:+ baseline binary: $BASELINE_DESC;} $(peer_versions); \
cpu % = CPU time of the target's processes / wall time (100 = one core)
machine ${IDLE_BUSY}% busy (all cores) in the second before the first run; load average at the end: \
$(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" "$HELPER" report "$RESULTS" "$RSS_FILE" "$HEADER" "$CPU_SPLIT" "$CLK_TCK" \
  ${BASELINE:+"$BASELINE" "$BASE_RSS_FILE"} || die "could not print the report"

print_server_logs "$TMP"/upstream/error.log "$TMP"/upstream/stdout.log "$TMP"/nginx/error.log \
  "$TMP"/nginx/stdout.log "$TMP"/haproxy/haproxy.log "$TMP"/apigw1/apigw.log "$TMP"/apigw2/apigw.log \
  "$TMP"/apigw-rss/apigw.log "$TMP"/apigw-log/apigw.log \
  ${BASELINE:+"$TMP"/baseline/apigw.log "$TMP"/baseline-rss/apigw.log}
exit 0
