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
# with workers: 2, then apigw's memory with RSS_CONNS idle keep-alive client connections. See bench/README.md.
#
# Everything lives in one mktemp -d directory, removed at exit; every process is started here and stopped by
# its PID on exit or Ctrl-C. Exit status: 0 once the report is printed (PASS or FAIL alike), non-zero when
# something could not be started or measured.

set -u -o pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
HELPER="$SCRIPT_DIR/bench_helper.py"
PY=/usr/bin/python3

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-64}
ROUNDS=${ROUNDS:-1}
APIGW=${APIGW:-$REPO_ROOT/build/apigw}
RSS_CONNS=${RSS_CONNS:-10000}
KEEP=${KEEP:-0}
BODY_BYTES=600
STARTUP_TIMEOUT=10   # seconds for a server to accept connections
BINARY_WAIT=${BINARY_WAIT:-180}  # seconds to wait for the apigw binary if it is missing or being rebuilt
WANT_NOFILE=65536

usage() {
  cat <<EOF
usage: bash bench/proxy.sh [--quick] [--duration S] [--warmup S] [--connections N] [--apigw PATH]
                           [--rounds N] [--rss-conns N] [--keep]
  --quick          3 s runs after a 1 s warm-up (a smoke run)
  --duration S     seconds per measured wrk run (env DURATION, default 10)
  --warmup S       seconds of the discarded warm-up run before each (env WARMUP, default 2)
  --connections N  wrk connections (env CONNECTIONS, default 64); wrk always uses 1 thread
  --rounds N       measure every target N times, interleaved, and report each target's median run
                   (env ROUNDS, default 1)
  --apigw PATH     the apigw binary (env APIGW, default build/apigw under the repo root)
  --rss-conns N    idle keep-alive connections for the memory figure (env RSS_CONNS, default 10000)
  --keep           keep the temporary directory (configs, logs, raw wrk output) and print its path (env KEEP=1)
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --quick) DURATION=3; WARMUP=1 ;;
    --duration) DURATION=${2:?--duration needs a value}; shift ;;
    --duration=*) DURATION=${1#*=} ;;
    --warmup) WARMUP=${2:?--warmup needs a value}; shift ;;
    --warmup=*) WARMUP=${1#*=} ;;
    --connections) CONNECTIONS=${2:?--connections needs a value}; shift ;;
    --connections=*) CONNECTIONS=${1#*=} ;;
    --apigw) APIGW=${2:?--apigw needs a value}; shift ;;
    --apigw=*) APIGW=${1#*=} ;;
    --rounds) ROUNDS=${2:?--rounds needs a value}; shift ;;
    --rounds=*) ROUNDS=${1#*=} ;;
    --rss-conns) RSS_CONNS=${2:?--rss-conns needs a value}; shift ;;
    --rss-conns=*) RSS_CONNS=${1#*=} ;;
    --keep) KEEP=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "proxy.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

for v in DURATION WARMUP CONNECTIONS ROUNDS RSS_CONNS; do
  if ! [[ ${!v} =~ ^[0-9]+$ ]] || [ "${!v}" -lt 1 ]; then
    echo "proxy.sh: $v must be a positive whole number (got '${!v}')" >&2
    exit 2
  fi
done

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  printf 'proxy.sh: ERROR: %s\n' "$*" >&2
  exit 1
}

# ------------------------------------------------------------------------------------------------ processes
PIDS=()     # every process this script started, in start order
NAMES=()
TMP=""

alive() { kill -0 "$1" 2>/dev/null; }

# Stop one process we started: SIGTERM, up to 20 s (apigw drains, drain_timeout is 2 s here), then SIGKILL.
# Its direct children (NGINX workers) are collected first, by parent PID, and stopped too if still there.
stop_pid() {
  local pid=$1 name=${2:-process} kids i
  alive "$pid" || { wait "$pid" 2>/dev/null; return 0; }
  kids=$(pgrep -P "$pid" 2>/dev/null | tr '\n' ' ')
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < 200; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    log "$name (pid $pid) did not stop on SIGTERM within 20 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  for i in $kids; do
    if alive "$i"; then
      sleep 0.5
      alive "$i" && kill -KILL "$i" 2>/dev/null
    fi
  done
  return 0
}

# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    stop_pid "${PIDS[$i]}" "${NAMES[$i]}"
  done
  if [ -n "$TMP" ] && [ -d "$TMP" ]; then
    if [ "$KEEP" = 1 ]; then
      log "kept $TMP"
    else
      rm -rf -- "$TMP"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# start NAME LOGFILE CMD...: start CMD in the background, remember its PID in $LAST_PID. setsid puts it in its
# own session, so a Ctrl-C in the terminal reaches only this script (and wrk), and the servers are stopped in
# order by cleanup() rather than all at once by the terminal's SIGINT. (setsid execs in place here: a background
# child of a non-interactive shell is not a process-group leader, so $! is the server's own PID.)
start() {
  local name=$1 logfile=$2
  shift 2
  setsid "$@" >"$logfile" 2>&1 </dev/null &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
  NAMES+=("$name")
}

stop_named() {  # stop and forget the process with this PID
  local pid=$1 i
  for i in "${!PIDS[@]}"; do
    if [ "${PIDS[$i]}" = "$pid" ]; then
      stop_pid "$pid" "${NAMES[$i]}"
      unset 'PIDS[i]' 'NAMES[i]'
      PIDS=("${PIDS[@]}")
      NAMES=("${NAMES[@]}")
      return
    fi
  done
}

show_log() {
  local f
  for f in "$@"; do
    [ -s "$f" ] || continue
    echo "---- $f (last 30 lines) ----" >&2
    tail -n 30 "$f" >&2
  done
}

# wait_up NAME PID PORT LOG...: wait until PORT accepts and answers GET /bench with 200 and the 600-byte body.
wait_up() {
  local name=$1 pid=$2 port=$3 i why
  shift 3
  for ((i = 0; i < STARTUP_TIMEOUT * 10; i++)); do
    if ! alive "$pid"; then
      show_log "$@"
      die "$name (pid $pid) exited during startup; its log is above"
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      if why=$(timeout 15 "$PY" "$HELPER" check-get "$port" /bench "$BODY_BYTES"); then
        log "$name is up on 127.0.0.1:$port (pid $pid)"
        return 0
      fi
      show_log "$@"
      die "$name on 127.0.0.1:$port does not answer as expected: $why"
    fi
    sleep 0.1
  done
  show_log "$@"
  die "$name (pid $pid) is not accepting connections on 127.0.0.1:$port after ${STARTUP_TIMEOUT}s; its log is above"
}

# ------------------------------------------------------------------------------------------------ checks
for tool in nginx haproxy wrk timeout pgrep setsid; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is not installed (Debian: apt-get install nginx-light haproxy wrk)"
done
[ -x "$PY" ] || die "$PY is missing"
[ -f "$HELPER" ] || die "$HELPER is missing"

# Raise the descriptor limit before anything starts: apigw (and the memory helper) need RSS_CONNS + margin.
NEED_NOFILE=$((RSS_CONNS + 1024))
if ! ulimit -n "$WANT_NOFILE" 2>/dev/null; then
  HARD=$(ulimit -Hn)
  if [ "$HARD" = unlimited ] || [ "$HARD" -ge "$NEED_NOFILE" ]; then
    ulimit -n "$HARD" 2>/dev/null || die "cannot raise the open-file limit (ulimit -n) to $HARD"
    log "ulimit -n $WANT_NOFILE not permitted (hard limit $HARD); using $HARD"
  fi
fi
NOFILE=$(ulimit -n)
if [ "$NOFILE" != unlimited ] && [ "$NOFILE" -lt "$NEED_NOFILE" ]; then
  die "the open-file limit is $NOFILE (hard $(ulimit -Hn)) and cannot be raised to the $NEED_NOFILE needed for \
$RSS_CONNS connections; raise it (e.g. run as root, or set the hard nofile limit) or use --rss-conns"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/apigw-bench.XXXXXX") || die "mktemp -d failed"

# The apigw binary may be being rebuilt by someone else: wait for it, then copy it so a rebuild during the run
# cannot change or remove what is measured.
case "$APIGW" in /*) ;; *) APIGW="$PWD/$APIGW" ;; esac
wait_start=$SECONDS
while :; do
  if [ -x "$APIGW" ] && [ -s "$APIGW" ]; then
    s1=$(stat -c %s.%Y "$APIGW" 2>/dev/null)
    sleep 1
    s2=$(stat -c %s.%Y "$APIGW" 2>/dev/null)
    if [ -n "$s1" ] && [ "$s1" = "$s2" ] && cp "$APIGW" "$TMP/apigw" 2>/dev/null; then
      break
    fi
  fi
  if [ $((SECONDS - wait_start)) -ge "$BINARY_WAIT" ]; then
    die "no usable apigw binary at $APIGW after ${BINARY_WAIT}s (set APIGW or --apigw)"
  fi
  [ $((SECONDS - wait_start)) -lt 3 ] && log "waiting for $APIGW (missing or being rebuilt)"
  sleep 2
done
APIGW_BIN="$TMP/apigw"
cd "$TMP" || die "cannot enter $TMP"   # nothing this script runs may leave files in the caller's directory
APIGW_DESC="$APIGW ($(stat -c '%y' "$APIGW" | cut -d. -f1))"

# ------------------------------------------------------------------------------------------------ configs
mapfile -t PORTS < <("$PY" "$HELPER" free-ports 7)
[ "${#PORTS[@]}" = 7 ] || die "could not find free ports"
P_UP=${PORTS[0]} P_APIGW1=${PORTS[1]} P_NGINX=${PORTS[2]} P_HAPROXY=${PORTS[3]} P_APIGW2=${PORTS[4]} P_RSS=${PORTS[5]}
P_APIGWLOG=${PORTS[6]}

BODY=$("$PY" -c '
import sys
n = int(sys.argv[1])
head = "{\"service\":\"bench-upstream\",\"status\":\"ok\",\"items\":[1,2,3,4,5],\"padding\":\""
tail = "\"}"
print(head + "x" * (n - len(head) - len(tail)) + tail, end="")
' "$BODY_BYTES")
[ "${#BODY}" = "$BODY_BYTES" ] || die "internal: body is ${#BODY} bytes, not $BODY_BYTES"

# Common NGINX main/http settings; $1 = its prefix directory.
nginx_head() {
  local d=$1
  cat <<EOF
worker_processes 1;
worker_rlimit_nofile $NOFILE;
daemon off;
master_process on;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000;
  keepalive_timeout 75s;
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
EOF
}

mkdir -p "$TMP/upstream/tmp" "$TMP/nginx/tmp" "$TMP/haproxy" "$TMP/apigw1" "$TMP/apigw2" "$TMP/apigw-rss" "$TMP/apigw-log"

{
  nginx_head "$TMP/upstream"
  cat <<EOF
  server {
    listen 127.0.0.1:$P_UP backlog=4096;
    location / {
      default_type application/json;
      return 200 '$BODY';
    }
  }
}
EOF
} >"$TMP/upstream/nginx.conf"

{
  nginx_head "$TMP/nginx"
  cat <<EOF
  upstream backend {
    server 127.0.0.1:$P_UP;
    keepalive 64;
    keepalive_requests 100000;
  }
  server {
    listen 127.0.0.1:$P_NGINX backlog=4096;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
} >"$TMP/nginx/nginx.conf"

cat >"$TMP/haproxy/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 4096

defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout http-request 10s
  timeout http-keep-alive 75s

frontend bench
  bind 127.0.0.1:$P_HAPROXY
  default_backend upstream

backend upstream
  server up1 127.0.0.1:$P_UP
EOF

apigw_config() {  # $1 port, $2 workers, $3 access log (off or a file)
  cat <<EOF
server:
  listen: 127.0.0.1:$1
  workers: $2
  drain_timeout: 2s
log: { access: ${3:-off}, level: warn }
admin: { listen: off }
upstreams:
  backend:
    endpoints: [127.0.0.1:$P_UP]
    max_connections: 256
routes:
  - name: bench
    match: { path: /*rest }
    upstream: backend
EOF
}
apigw_config "$P_APIGW1" 1 >"$TMP/apigw1/apigw.yaml"
apigw_config "$P_APIGW2" 2 >"$TMP/apigw2/apigw.yaml"
apigw_config "$P_RSS" 1 >"$TMP/apigw-rss/apigw.yaml"
apigw_config "$P_APIGWLOG" 1 "$TMP/apigw-log/access.log" >"$TMP/apigw-log/apigw.yaml"

# Validate every config before starting anything, so a mistake is reported clearly.
for d in upstream nginx; do
  timeout 20 nginx -t -q -p "$TMP/$d" -c "$TMP/$d/nginx.conf" -e "$TMP/$d/error.log" >"$TMP/$d/test.log" 2>&1 ||
    { show_log "$TMP/$d/test.log" "$TMP/$d/error.log"; die "nginx rejects $TMP/$d/nginx.conf"; }
done
timeout 20 haproxy -c -q -f "$TMP/haproxy/haproxy.cfg" >"$TMP/haproxy/test.log" 2>&1 ||
  { show_log "$TMP/haproxy/test.log"; die "haproxy rejects its configuration"; }
for d in apigw1 apigw2 apigw-rss apigw-log; do
  timeout 20 "$APIGW_BIN" -t -c "$TMP/$d/apigw.yaml" >"$TMP/$d/test.log" 2>&1 ||
    { show_log "$TMP/$d/test.log"; die "apigw rejects $TMP/$d/apigw.yaml"; }
done

# ------------------------------------------------------------------------------------------------ start
start upstream-nginx "$TMP/upstream/stdout.log" \
  nginx -p "$TMP/upstream" -c "$TMP/upstream/nginx.conf" -e "$TMP/upstream/error.log"
PID_UP=$LAST_PID
wait_up "upstream NGINX" "$PID_UP" "$P_UP" "$TMP/upstream/stdout.log" "$TMP/upstream/error.log"

start apigw-w1 "$TMP/apigw1/apigw.log" "$APIGW_BIN" -c "$TMP/apigw1/apigw.yaml"
PID_APIGW1=$LAST_PID
wait_up "apigw (workers: 1)" "$PID_APIGW1" "$P_APIGW1" "$TMP/apigw1/apigw.log"

start nginx-proxy "$TMP/nginx/stdout.log" nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log"
PID_NGINX=$LAST_PID
wait_up "NGINX proxy" "$PID_NGINX" "$P_NGINX" "$TMP/nginx/stdout.log" "$TMP/nginx/error.log"

start haproxy "$TMP/haproxy/haproxy.log" haproxy -db -f "$TMP/haproxy/haproxy.cfg"
PID_HAPROXY=$LAST_PID
wait_up "HAProxy" "$PID_HAPROXY" "$P_HAPROXY" "$TMP/haproxy/haproxy.log"

start apigw-w2 "$TMP/apigw2/apigw.log" "$APIGW_BIN" -c "$TMP/apigw2/apigw.yaml"
PID_APIGW2=$LAST_PID
wait_up "apigw (workers: 2)" "$PID_APIGW2" "$P_APIGW2" "$TMP/apigw2/apigw.log"

start apigw-log "$TMP/apigw-log/apigw.log" "$APIGW_BIN" -c "$TMP/apigw-log/apigw.yaml"
PID_APIGWLOG=$LAST_PID
wait_up "apigw (workers: 1, access log)" "$PID_APIGWLOG" "$P_APIGWLOG" "$TMP/apigw-log/apigw.log"

# ------------------------------------------------------------------------------------------------ throughput
# How busy is the machine before we load it? Other work on these 2 cores skews every figure below.
cpu_busy_pct() {
  local a b
  a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
  sleep 1
  b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ");
    d = y[2] - x[2]; printf "%.0f", (d > 0 ? 100 * (y[1] - x[1]) / d : 0) }'
}
IDLE_BUSY=$(cpu_busy_pct)
if [ "$IDLE_BUSY" -gt 10 ]; then
  log "WARNING: the machine was ${IDLE_BUSY}% busy before the benchmark started (other work is running);"
  log "         the figures will be noisy and unfair to whichever target ran during that work"
fi

CLK_TCK=$(getconf CLK_TCK)
RESULTS="$TMP/results.tsv"
: >"$RESULTS"

# CPU ticks (user + system, all threads) of the given processes and their direct children.
cpu_ticks() {
  local total=0 p t
  for p in "$@" $(for q in "$@"; do pgrep -P "$q" 2>/dev/null; done); do
    t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}')
    total=$((total + ${t:-0}))
  done
  echo "$total"
}

now_ns() { date +%s%N; }

# run_target KEY LABEL PORT PID ROUND: warm-up run (discarded), then the measured run; appends a row to $RESULTS.
run_target() {
  local key=$1 label=$2 port=$3 pid=$4 round=$5 url out c0 c1 t0 t1 parsed cpu
  url="http://127.0.0.1:$port/bench"
  local key_r=$key note=""
  if [ "$ROUNDS" -gt 1 ]; then key_r="$key-r$round"; note=" (round $round of $ROUNDS)"; fi
  log "$label: ${WARMUP}s warm-up$note"
  timeout --foreground -k 5 $((WARMUP + 30)) \
    wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" --latency "$url" >"$TMP/wrk-$key_r-warmup.txt" 2>&1 ||
    { cat "$TMP/wrk-$key_r-warmup.txt" >&2; die "wrk warm-up against $label failed"; }
  alive "$pid" || { show_log "$TMP"/"$key"*/*.log; die "$label (pid $pid) died during the warm-up"; }

  log "$label: ${DURATION}s measured run$note"
  out="$TMP/wrk-$key_r.txt"
  c0=$(cpu_ticks "$pid")
  t0=$(now_ns)
  timeout --foreground -k 5 $((DURATION + 30)) \
    wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$url" >"$out" 2>&1 ||
    { cat "$out" >&2; die "wrk against $label failed"; }
  t1=$(now_ns)
  c1=$(cpu_ticks "$pid")
  alive "$pid" || die "$label (pid $pid) died during the run"
  parsed=$("$PY" "$HELPER" parse-wrk "$out") || { cat "$out" >&2; die "could not parse wrk's output for $label"; }
  cpu=$(awk -v d="$((c1 - c0))" -v hz="$CLK_TCK" -v ns="$((t1 - t0))" 'BEGIN { printf "%.0f", 100 * d / hz / (ns / 1e9) }')
  printf '%s\t%s\t%s\t%s\t%s\n' "$key" "$round" "$label" "$parsed" "$cpu" >>"$RESULTS"
  # Show wrk's own error lines as they happen.
  grep -E 'Non-2xx|Socket errors' "$out" | sed "s/^/[bench]   $label: /" >&2
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
start apigw-rss "$TMP/apigw-rss/apigw.log" "$APIGW_BIN" -c "$TMP/apigw-rss/apigw.yaml"
PID_RSS=$LAST_PID
wait_up "apigw (workers: 1, memory)" "$PID_RSS" "$P_RSS" "$TMP/apigw-rss/apigw.log"
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
HEADER="apigw proxy benchmark: wrk 1 thread, $CONNECTIONS connections, ${DURATION}s per run after a ${WARMUP}s warm-up; \
${BODY_BYTES}-byte JSON from one NGINX upstream; $(nproc) CPU cores shared by wrk, upstream and proxy
apigw binary: $APIGW_DESC; nginx $(nginx -v 2>&1 | sed 's|.*nginx/||'); haproxy $(haproxy -v | awk 'NR == 1 { print $3 }'); \
cpu % = CPU time of the target's processes / wall time (100 = one core)
machine ${IDLE_BUSY}% busy (all cores) in the second before the first run; load average at the end: \
$(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" "$HELPER" report "$RESULTS" "$RSS_FILE" "$HEADER" || die "could not print the report"

# Anything the servers logged (apigw at warn and above, NGINX at warn, HAProxy's stderr).
logged=0
for f in "$TMP"/upstream/error.log "$TMP"/upstream/stdout.log "$TMP"/nginx/error.log "$TMP"/nginx/stdout.log \
  "$TMP"/haproxy/haproxy.log "$TMP"/apigw1/apigw.log "$TMP"/apigw2/apigw.log "$TMP"/apigw-rss/apigw.log \
  "$TMP"/apigw-log/apigw.log; do
  if [ -s "$f" ]; then
    [ "$logged" = 0 ] && { echo; echo "server logs (last 10 lines each):"; }
    logged=1
    echo "  ${f#"$TMP"/}:"
    tail -n 10 "$f" | sed 's/^/    /'
  fi
done
exit 0
