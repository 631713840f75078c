# shellcheck shell=bash disable=SC2034,SC2153  # sets variables for, and reads ports set by, the sourcing script
# Shared machinery of the benchmark scripts (bench/proxy.sh, bench/auth.sh, bench/cache.sh, bench/shadow.sh): sourced,
# not run.
#
# The sourcing script sets BENCH_NAME (its file name, for messages) and defines usage() before parsing its flags
# with bench_flag. Sourcing installs the cleanup trap: every process started with start() is stopped by its PID
# at exit, on error and on Ctrl-C, and the temporary directory is removed (kept with --keep).
#
# Provides: flag parsing (bench_flag, check_positive), log/die, process start/stop by PID (start, stop_named,
# wait_port, wait_up), tool checks, the open-file limit, the temporary directory and the copies of the apigw binaries,
# the upstream body and the NGINX/HAProxy/apigw configs, config validation, the machine's idle load, the wrk runs
# (run_target: warm-up, measured run, CPU accounting, one row per run in $RESULTS) and the server log dump.

BENCH_NAME=${BENCH_NAME:-bench}
SCRIPT_DIR=${SCRIPT_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
HELPER="$SCRIPT_DIR/bench_helper.py"
PY=/usr/bin/python3

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-64}
ROUNDS=${ROUNDS:-1}
APIGW=${APIGW:-$REPO_ROOT/build/apigw}
KEEP=${KEEP:-0}
BODY_BYTES=600
STARTUP_TIMEOUT=10   # seconds for a server to accept connections
BINARY_WAIT=${BINARY_WAIT:-180}  # seconds to wait for the apigw binary if it is missing or being rebuilt
WANT_NOFILE=65536

# ------------------------------------------------------------------------------------------------ flags
# bench_flag "$@": handle one of the flags every script takes. Returns 0 and sets BENCH_SHIFT (how many
# arguments it used) when it knew $1; returns 1 otherwise.
bench_flag() {
  BENCH_SHIFT=1
  case "$1" in
    --quick) DURATION=3; WARMUP=1 ;;
    --duration) DURATION=${2:?--duration needs a value}; BENCH_SHIFT=2 ;;
    --duration=*) DURATION=${1#*=} ;;
    --warmup) WARMUP=${2:?--warmup needs a value}; BENCH_SHIFT=2 ;;
    --warmup=*) WARMUP=${1#*=} ;;
    --connections) CONNECTIONS=${2:?--connections needs a value}; BENCH_SHIFT=2 ;;
    --connections=*) CONNECTIONS=${1#*=} ;;
    --apigw) APIGW=${2:?--apigw needs a value}; BENCH_SHIFT=2 ;;
    --apigw=*) APIGW=${1#*=} ;;
    --rounds) ROUNDS=${2:?--rounds needs a value}; BENCH_SHIFT=2 ;;
    --rounds=*) ROUNDS=${1#*=} ;;
    --keep) KEEP=1 ;;
    -h|--help) usage; exit 0 ;;
    *) return 1 ;;
  esac
  return 0
}

# usage_flags [LINES]: the help lines of the flags bench_flag handles; LINES (a script's own flags) go before --keep.
usage_flags() {
  cat <<EOF
  --quick          3 s runs after a 1 s warm-up (a smoke run)
  --duration S     seconds per measured wrk run (env DURATION, default 10)
  --warmup S       seconds of the discarded warm-up run before each (env WARMUP, default 2)
  --connections N  wrk connections (env CONNECTIONS, default 64); wrk always uses 1 thread
  --rounds N       measure every target N times, interleaved, and report each target's median run
                   (env ROUNDS, default 1)
  --apigw PATH     the apigw binary (env APIGW, default build/apigw under the repo root)
EOF
  [ -z "${1:-}" ] || printf '%s\n' "$1"
  cat <<EOF
  --keep           keep the temporary directory (configs, logs, raw wrk output) and print its path (env KEEP=1)
EOF
}

unknown_flag() {
  echo "$BENCH_NAME: unknown argument '$1'" >&2
  usage >&2
  exit 2
}

check_positive() {  # VAR...: each must hold a positive whole number
  local v
  for v in "$@"; do
    if ! [[ ${!v} =~ ^[0-9]+$ ]] || [ "${!v}" -lt 1 ]; then
      echo "$BENCH_NAME: $v must be a positive whole number (got '${!v}')" >&2
      exit 2
    fi
  done
}

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  printf '%s: ERROR: %s\n' "$BENCH_NAME" "$*" >&2
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

# wait_port NAME PID PORT LOG...: wait until PORT accepts a connection; stop with the logs if PID exits first.
wait_port() {
  local name=$1 pid=$2 port=$3 i
  shift 3
  for ((i = 0; i < STARTUP_TIMEOUT * 10; i++)); do
    if ! alive "$pid"; then
      show_log "$@"
      die "$name (pid $pid) exited during startup; its log is above"
    fi
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  show_log "$@"
  die "$name (pid $pid) is not accepting connections on 127.0.0.1:$port after ${STARTUP_TIMEOUT}s; its log is above"
}

# wait_up NAME PID PORT LOG...: wait until PORT accepts and answers GET /bench with 200 and the 600-byte body.
# With UP_CHECK=(ARG...) set, those arguments are added to the check (see bench_helper.py check-get).
wait_up() {
  local name=$1 pid=$2 port=$3 why
  shift 3
  wait_port "$name" "$pid" "$port" "$@"
  if why=$(timeout 15 "$PY" "$HELPER" check-get "$port" /bench "$BODY_BYTES" ${UP_CHECK[@]+"${UP_CHECK[@]}"}); then
    log "$name is up on 127.0.0.1:$port (pid $pid)"
    return 0
  fi
  show_log "$@"
  die "$name on 127.0.0.1:$port does not answer as expected: $why"
}

# ------------------------------------------------------------------------------------------------ setup
require_tools() {  # TOOL...: stop unless each is installed; the python helper is always needed
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 ||
      die "'$tool' is not installed (Debian: apt-get install ${INSTALL_HINT:-nginx-light haproxy wrk})"
  done
  [ -x "$PY" ] || die "$PY is missing"
  [ -f "$HELPER" ] || die "$HELPER is missing"
}

# raise_nofile NEED [WHAT]: raise the descriptor limit before anything starts (every server inherits it); stop
# when it cannot reach NEED. Sets NOFILE.
raise_nofile() {
  local need=$1 what=${2:-} hard
  if ! ulimit -n "$WANT_NOFILE" 2>/dev/null; then
    hard=$(ulimit -Hn)
    if [ "$hard" = unlimited ] || [ "$hard" -ge "$need" ]; then
      ulimit -n "$hard" 2>/dev/null || die "cannot raise the open-file limit (ulimit -n) to $hard"
      log "ulimit -n $WANT_NOFILE not permitted (hard limit $hard); using $hard"
    fi
  fi
  NOFILE=$(ulimit -n)
  if [ "$NOFILE" != unlimited ] && [ "$NOFILE" -lt "$need" ]; then
    die "the open-file limit is $NOFILE (hard $(ulimit -Hn)) and cannot be raised to the $need needed$what"
  fi
}

# make_tmp_and_copy_apigw: create $TMP, copy the apigw binary into it (copy_binary), enter it. Sets TMP, APIGW_BIN,
# APIGW_DESC.
make_tmp_and_copy_apigw() {
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/apigw-bench.XXXXXX") || die "mktemp -d failed"
  case "$APIGW" in /*) ;; *) APIGW="$PWD/$APIGW" ;; esac
  copy_binary "$APIGW" "$TMP/apigw" "set APIGW or --apigw"
  APIGW_BIN="$TMP/apigw"
  cd "$TMP" || die "cannot enter $TMP"   # nothing this script runs may leave files in the caller's directory
  APIGW_DESC="$APIGW ($(stat -c '%y' "$APIGW" | cut -d. -f1))"
}

# copy_binary SRC DEST [HINT]: copy the executable SRC (an absolute path) to DEST. SRC may be being rebuilt by
# someone else: wait up to BINARY_WAIT seconds for it to exist and stop changing, then copy it, so a rebuild during
# the run cannot change or remove what is measured. HINT ends the message when it never appears.
copy_binary() {
  local src=$1 dest=$2 hint=${3:-} wait_start s1 s2
  wait_start=$SECONDS
  while :; do
    if [ -x "$src" ] && [ -s "$src" ]; then
      s1=$(stat -c %s.%Y "$src" 2>/dev/null)
      sleep 1
      s2=$(stat -c %s.%Y "$src" 2>/dev/null)
      if [ -n "$s1" ] && [ "$s1" = "$s2" ] && cp "$src" "$dest" 2>/dev/null; then
        return 0
      fi
    fi
    if [ $((SECONDS - wait_start)) -ge "$BINARY_WAIT" ]; then
      die "no usable apigw binary at $src after ${BINARY_WAIT}s${hint:+ ($hint)}"
    fi
    [ $((SECONDS - wait_start)) -lt 3 ] && log "waiting for $src (missing or being rebuilt)"
    sleep 2
  done
}

free_ports() {  # N: N free loopback ports into the array PORTS
  mapfile -t PORTS < <("$PY" "$HELPER" free-ports "$1")
  [ "${#PORTS[@]}" = "$1" ] || die "could not find free ports"
}

# ------------------------------------------------------------------------------------------------ configs
make_body() {  # the upstream's fixed JSON body of BODY_BYTES bytes, into BODY
  BODY=$("$PY" -c '
import sys
n = int(sys.argv[1])
head = "{\"service\":\"bench-upstream\",\"status\":\"ok\",\"items\":[1,2,3,4,5],\"padding\":\""
tail = "\"}"
print(head + "x" * (n - len(head) - len(tail)) + tail, end="")
' "$BODY_BYTES")
  [ "${#BODY}" = "$BODY_BYTES" ] || die "internal: body is ${#BODY} bytes, not $BODY_BYTES"
}

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

# write_upstream_config: the upstream NGINX ($TMP/upstream, port $P_UP), answering every request with $BODY.
write_upstream_config() {
  write_upstream_config_at "$TMP/upstream" "$P_UP"
}

# write_upstream_config_at DIR PORT [SERVER_EXTRA]: an upstream NGINX like write_upstream_config's, with its prefix
# DIR and its config DIR/nginx.conf, on PORT; SERVER_EXTRA (lines, e.g. a status location) goes into its server block.
write_upstream_config_at() {
  local d=$1 port=$2
  mkdir -p "$d/tmp"
  {
    nginx_head "$d"
    cat <<EOF
  server {
    listen 127.0.0.1:$port backlog=4096;
EOF
    [ -z "${3:-}" ] || printf '%s\n' "$3"
    cat <<EOF
    location / {
      default_type application/json;
      return 200 '$BODY';
    }
  }
}
EOF
  } >"$d/nginx.conf"
}

# write_peer_configs: the upstream NGINX (write_upstream_config), the NGINX proxy ($TMP/nginx, port $P_NGINX) and
# HAProxy ($TMP/haproxy, port $P_HAPROXY), both in front of the upstream.
write_peer_configs() {
  write_upstream_config
  write_nginx_proxy_config "$TMP/nginx" "$P_NGINX"
  mkdir -p "$TMP/haproxy"
  haproxy_config "127.0.0.1:$P_HAPROXY" "up1 127.0.0.1:$P_UP" >"$TMP/haproxy/haproxy.cfg"
}

# haproxy_config BIND SERVER: the HAProxy of write_peer_configs (one thread, keep-alive both ways, http-reuse
# always), with that bind line (frontend) and server line (backend).
haproxy_config() {
  cat <<EOF
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
  bind $1
  default_backend upstream

backend upstream
  server $2
EOF
}

# write_nginx_proxy_config DIR PORT [HTTP_EXTRA [LOCATION_EXTRA [SERVER_EXTRA]]]: the NGINX proxy of
# write_peer_configs (upstream block "backend" to $P_UP with keepalive 64), with its prefix DIR and its config
# DIR/nginx.conf, on PORT. The extras are lines inserted verbatim: HTTP_EXTRA after the upstream block (more
# upstreams), LOCATION_EXTRA at the top of `location /`, SERVER_EXTRA after it (more locations).
write_nginx_proxy_config() {
  local d=$1 port=$2
  mkdir -p "$d/tmp"
  {
    nginx_head "$d"
    cat <<EOF
  upstream backend {
    server 127.0.0.1:$P_UP;
    keepalive 64;
    keepalive_requests 100000;
  }
EOF
    [ -z "${3:-}" ] || printf '%s\n' "$3"
    cat <<EOF
  server {
    listen 127.0.0.1:$port backlog=4096;
    location / {
EOF
    [ -z "${4:-}" ] || printf '%s\n' "$4"
    cat <<EOF
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
EOF
    [ -z "${5:-}" ] || printf '%s\n' "$5"
    cat <<EOF
  }
}
EOF
  } >"$d/nginx.conf"
}

# apigw_config PORT WORKERS [ACCESS [ADMIN [ROUTE_AUTH]]]: an apigw config in front of the upstream, one catch-all
# route. ACCESS: off or a file; ADMIN: the admin listener (default off); ROUTE_AUTH: the route's auth setting
# (none given: the key is left out). A script may append more top-level sections (auth:) to the output.
apigw_config() {
  cat <<EOF
server:
  listen: 127.0.0.1:$1
  workers: $2
  drain_timeout: 2s
log: { access: ${3:-off}, level: warn }
admin: { listen: ${4:-off} }
upstreams:
  backend:
    endpoints: [127.0.0.1:$P_UP]
    max_connections: 256
routes:
  - name: bench
    match: { path: /*rest }
    upstream: backend
EOF
  [ -z "${5:-}" ] || echo "    auth: $5"
}

# validate_configs APIGW_DIR...: check the peers' configs and every $TMP/DIR/apigw.yaml before starting anything,
# so a mistake is reported clearly.
validate_configs() {
  validate_nginx upstream nginx
  timeout 20 haproxy -c -q -f "$TMP/haproxy/haproxy.cfg" >"$TMP/haproxy/test.log" 2>&1 ||
    { show_log "$TMP/haproxy/test.log"; die "haproxy rejects its configuration"; }
  validate_apigw "$@"
}

validate_nginx() {  # DIR...: nginx -t on each $TMP/DIR/nginx.conf
  local d
  for d in "$@"; do
    timeout 20 nginx -t -q -p "$TMP/$d" -c "$TMP/$d/nginx.conf" -e "$TMP/$d/error.log" >"$TMP/$d/test.log" 2>&1 ||
      { show_log "$TMP/$d/test.log" "$TMP/$d/error.log"; die "nginx rejects $TMP/$d/nginx.conf"; }
  done
}

validate_apigw() {  # DIR...: apigw -t on each $TMP/DIR/apigw.yaml
  local d
  for d in "$@"; do
    timeout 20 "$APIGW_BIN" -t -c "$TMP/$d/apigw.yaml" >"$TMP/$d/test.log" 2>&1 ||
      { show_log "$TMP/$d/test.log"; die "apigw rejects $TMP/$d/apigw.yaml"; }
  done
}

# ------------------------------------------------------------------------------------------------ start
start_upstream() {  # sets PID_UP
  start_nginx_at upstream-nginx "upstream NGINX" "$TMP/upstream" "$P_UP"
  PID_UP=$LAST_PID
}

# start_nginx_at NAME LABEL DIR PORT: start the NGINX whose prefix and config are DIR and DIR/nginx.conf and wait until
# it answers on PORT (wait_up); sets LAST_PID.
start_nginx_at() {
  local name=$1 label=$2 d=$3 port=$4 pid
  start "$name" "$d/stdout.log" nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log"
  pid=$LAST_PID
  wait_up "$label" "$pid" "$port" "$d/stdout.log" "$d/error.log"
  LAST_PID=$pid
}

start_nginx_proxy() {  # sets PID_NGINX
  start nginx-proxy "$TMP/nginx/stdout.log" nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log"
  PID_NGINX=$LAST_PID
  wait_up "NGINX proxy" "$PID_NGINX" "$P_NGINX" "$TMP/nginx/stdout.log" "$TMP/nginx/error.log"
}

start_haproxy() {  # sets PID_HAPROXY
  start haproxy "$TMP/haproxy/haproxy.log" haproxy -db -f "$TMP/haproxy/haproxy.cfg"
  PID_HAPROXY=$LAST_PID
  wait_up "HAProxy" "$PID_HAPROXY" "$P_HAPROXY" "$TMP/haproxy/haproxy.log"
}

# start_apigw NAME DIR PORT LABEL [BINARY]: start apigw (BINARY, default $APIGW_BIN) with $TMP/DIR/apigw.yaml and wait
# for it; sets LAST_PID
start_apigw() {
  local name=$1 dir=$2 port=$3 label=$4 bin=${5:-$APIGW_BIN} pid
  start "$name" "$TMP/$dir/apigw.log" "$bin" -c "$TMP/$dir/apigw.yaml"
  pid=$LAST_PID
  wait_up "$label" "$pid" "$port" "$TMP/$dir/apigw.log"
  LAST_PID=$pid
}

# ------------------------------------------------------------------------------------------------ throughput
# machine_ticks: "busy total" clock ticks of all cores since boot (busy: user, nice, system, irq, softirq, steal).
machine_ticks() {
  awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat
}

# How busy is the machine before we load it? Other work on these 2 cores skews every figure below.
cpu_busy_pct() {
  local a b
  a=$(machine_ticks)
  sleep 1
  b=$(machine_ticks)
  awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ");
    d = y[2] - x[2]; printf "%.0f", (d > 0 ? 100 * (y[1] - x[1]) / d : 0) }'
}

# measure_idle: sets IDLE_BUSY, warns when the machine is busy; prepares $RESULTS and CLK_TCK for run_target.
measure_idle() {
  IDLE_BUSY=$(cpu_busy_pct)
  if [ "$IDLE_BUSY" -gt 10 ]; then
    log "WARNING: the machine was ${IDLE_BUSY}% busy before the benchmark started (other work is running);"
    log "         the figures will be noisy and unfair to whichever target ran during that work"
  fi
  CLK_TCK=$(getconf CLK_TCK)
  RESULTS="$TMP/results.tsv"
  : >"$RESULTS"
}

# split_ticks PID...: "user system" clock ticks of the given processes and their direct children.
split_ticks() {
  local user=0 sys=0 p u s
  for p in "$@" $(for q in "$@"; do pgrep -P "$q" 2>/dev/null; done); do
    read -r u s < <(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12, $13}')
    user=$((user + ${u:-0}))
    sys=$((sys + ${s:-0}))
  done
  echo "$user $sys"
}

# CPU ticks (user + system, all threads) of the given processes and their direct children.
cpu_ticks() {
  local user sys
  read -r user sys < <(split_ticks "$@")
  echo $((user + sys))
}

now_ns() { date +%s%N; }

cpu_pct() {  # TICKS NANOSECONDS: CPU use over that wall time, 100 = one core
  awk -v d="$1" -v hz="$CLK_TCK" -v ns="$2" 'BEGIN { printf "%.0f", (ns > 0 ? 100 * d / hz / (ns / 1e9) : 0) }'
}

# run_target KEY LABEL PORT PID ROUND [WRK_ARG...]: warm-up run (discarded), then the measured run; appends a row
# to $RESULTS. WRK_ARGs (e.g. -s script.lua) go to both wrk runs. If the script defines bench_before_run and
# bench_after_run, they are called with KEY and ROUND right before and right after the measured run. A KEY listed
# in EXPECT_NON2XX (space-separated) answers non-2xx on purpose: only its socket errors are shown as they happen.
run_target() {
  local key=$1 label=$2 port=$3 pid=$4 round=$5 url out c0 c1 t0 t1 parsed cpu shown
  shift 5
  url="http://127.0.0.1:$port/bench"
  local key_r=$key note=""
  if [ "$ROUNDS" -gt 1 ]; then key_r="$key-r$round"; note=" (round $round of $ROUNDS)"; fi
  log "$label: ${WARMUP}s warm-up$note"
  timeout --foreground -k 5 $((WARMUP + 30)) \
    wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" --latency "$@" "$url" >"$TMP/wrk-$key_r-warmup.txt" 2>&1 ||
    { cat "$TMP/wrk-$key_r-warmup.txt" >&2; die "wrk warm-up against $label failed"; }
  alive "$pid" || { show_log "$TMP"/"$key"*/*.log; die "$label (pid $pid) died during the warm-up"; }

  log "$label: ${DURATION}s measured run$note"
  out="$TMP/wrk-$key_r.txt"
  if declare -F bench_before_run >/dev/null; then bench_before_run "$key" "$round"; fi
  c0=$(cpu_ticks "$pid")
  t0=$(now_ns)
  timeout --foreground -k 5 $((DURATION + 30)) \
    wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" "$url" >"$out" 2>&1 ||
    { cat "$out" >&2; die "wrk against $label failed"; }
  t1=$(now_ns)
  c1=$(cpu_ticks "$pid")
  if declare -F bench_after_run >/dev/null; then bench_after_run "$key" "$round"; fi
  alive "$pid" || die "$label (pid $pid) died during the run"
  parsed=$("$PY" "$HELPER" parse-wrk "$out") || { cat "$out" >&2; die "could not parse wrk's output for $label"; }
  cpu=$(cpu_pct "$((c1 - c0))" "$((t1 - t0))")
  printf '%s\t%s\t%s\t%s\t%s\n' "$key" "$round" "$label" "$parsed" "$cpu" >>"$RESULTS"
  # Show wrk's own error lines as they happen.
  shown='Non-2xx|Socket errors'
  case " ${EXPECT_NON2XX:-} " in *" $key "*) shown='Socket errors' ;; esac
  grep -E "$shown" "$out" | sed "s/^/[bench]   $label: /" >&2
}

# ------------------------------------------------------------------------------------------------ report
peer_versions() {  # "nginx X; haproxy Y" for the report's header
  printf 'nginx %s; haproxy %s' "$(nginx -v 2>&1 | sed 's|.*nginx/||')" "$(haproxy -v | awk 'NR == 1 { print $3 }')"
}

# print_server_logs FILE...: anything the servers logged (apigw at warn and above, NGINX at warn, HAProxy's stderr).
print_server_logs() {
  local f logged=0
  for f in "$@"; do
    if [ -s "$f" ]; then
      [ "$logged" = 0 ] && { echo; echo "server logs (last 10 lines each):"; }
      logged=1
      echo "  ${f#"$TMP"/}:"
      tail -n 10 "$f" | sed 's/^/    /'
    fi
  done
  return 0
}

# start_redis DIR PORT: a redis-server on 127.0.0.1:PORT (no persistence, its log in DIR/redis.log), waited for
# until it answers PING; sets PID_REDIS and defines rcli (redis-cli to it).
start_redis() {
  local dir=$1 port=$2
  start redis "$dir/redis.log" redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
    --dir "$dir" --logfile '' --loglevel warning --daemonize no
  PID_REDIS=$LAST_PID
  wait_port "Redis" "$PID_REDIS" "$port" "$dir/redis.log"
  eval "rcli() { timeout 20 redis-cli -h 127.0.0.1 -p $port \"\$@\"; }"
  for ((i = 0; i < 50; i++)); do
    [ "$(rcli ping 2>/dev/null)" = PONG ] && break
    sleep 0.1
  done
  [ "$(rcli ping 2>&1)" = PONG ] || { show_log "$dir/redis.log"; die "Redis on port $port does not answer PING"; }
}

# rotating_wrk_script COUNT PATH_EXPR AUTHORIZATION_EXPR: a wrk script whose requests rotate over COUNT variants,
# the i-th (i from 0) a GET of the Lua expression PATH_EXPR with Authorization: AUTHORIZATION_EXPR (both may use
# i). Each wrk thread has its own Lua state and counter; the counter moves on at every request, so consecutive
# requests (spread by wrk over its connections) differ and every connection sees many of them. The requests are
# built once in init(), so request() costs the same for every target.
rotating_wrk_script() {
  cat <<EOF
local count, requests, nxt = $1, {}, 0
local threads = 0

function setup(thread)
  thread:set("thread_index", threads)
  threads = threads + 1
end

function init(args)
  for i = 0, count - 1 do
    requests[i] = wrk.format("GET", $2, { ["Authorization"] = $3 })
  end
  nxt = (thread_index * 397) % count  -- threads (if more than one) start at different variants
end

function request()
  local r = requests[nxt]
  nxt = (nxt + 1) % count
  return r
end
EOF
}

# side_cpu_start PID, then side_cpu_record KEY ROUND PID: the CPU a side server (Redis, memcached) used during one
# measured run, appended to $SIDE as "KEY<TAB>ROUND<TAB>cpu %".
side_cpu_start() {
  SIDE_C0=$(cpu_ticks "$1")
  SIDE_T0=$(now_ns)
}
side_cpu_record() {
  local c1 t1
  c1=$(cpu_ticks "$3")
  t1=$(now_ns)
  printf '%s\t%s\t%s\n' "$1" "$2" "$(cpu_pct $((c1 - SIDE_C0)) $((t1 - SIDE_T0)))" >>"$SIDE"
}

