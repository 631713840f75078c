#!/usr/bin/env bash
# Compare apigw with NGINX and HAProxy as reverse proxies to an HTTPS upstream on this machine, in one run; then, if
# this apigw has a TLS client listener (server.tls), the three as TLS terminators in front of a plain upstream.
#
#   bash bench/https.sh                 # 10 s per target after a 2 s warm-up
#   bash bench/https.sh --quick         # 3 s runs (1 s warm-up): a smoke run
#   bash bench/https.sh --rounds 3      # every target 3 times, interleaved; each reported by its median run
#
# Certificates are made at start with the openssl CLI in the temporary directory: a CA, a server certificate for
# upstream.bench.test (SAN DNS:upstream.bench.test, IP:127.0.0.1) and one for gateway.bench.test (the listeners'),
# both signed by the CA (ECDSA P-256).
#
# The HTTPS upstream: one NGINX (worker_processes 1, listen ssl, session cache and tickets on) answers every request
# with proxy.sh's fixed 600-byte JSON body. In front of it, each with one worker and a plain HTTP listener: apigw
# (workers: 1, upstreams.backend.tls { ca, sni }), NGINX (proxy_pass https:// to an upstream block with keepalive 64,
# proxy_ssl_verify on, proxy_ssl_session_reuse on) and HAProxy (nbthread 1, server ... ssl verify required ca-file
# sni, http-reuse always). wrk (1 thread, CONNECTIONS connections, --latency) drives each in turn, and the upstream
# directly over HTTPS as a reference. The upstream logs the first request of every connection it accepts with
# $ssl_session_reused: the report gives the upstream-side TLS handshakes (full and resumed) per request of each run,
# which keep-alive should hold near 0, and each target's own CPU per request.
#
# Targets: apigw's own CPU per request <= HAProxy's and its req/s >= 1.0x HAProxy's; printed PASS or FAIL.
#
# The TLS listener: apigw with server.tls { cert, key } in front of proxy.sh's plain upstream, against NGINX (listen
# ssl, proxy_pass http:// with keepalive 64) and HAProxy (bind ssl crt), wrk driving https://127.0.0.1:PORT/bench
# with keep-alive. When `apigw -t` rejects server.tls, this part is skipped and the report says why.
#
# Temporary files, process handling and exit status as in proxy.sh (bench/lib.sh): one mktemp -d directory, every
# process started here and stopped by its PID; 0 once the report is printed (PASS or FAIL alike), non-zero when
# something could not be started or measured.

set -u -o pipefail

BENCH_NAME=https.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$SCRIPT_DIR/lib.sh"

UP_NAME=upstream.bench.test   # the HTTPS upstream's certificate name, and the SNI every proxy sends to it
GW_NAME=gateway.bench.test    # the TLS listeners' certificate name

usage() {
  cat <<EOF
usage: bash bench/https.sh [--quick] [--duration S] [--warmup S] [--connections N] [--apigw PATH]
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
INSTALL_HINT="nginx-light haproxy wrk openssl"
require_tools nginx haproxy wrk openssl timeout pgrep setsid
raise_nofile 4096 "; raise it (e.g. run as root, or set the hard nofile limit)"
make_tmp_and_copy_apigw

# ------------------------------------------------------------------------------------------------ certificates
CERTS="$TMP/certs"
CA="$CERTS/ca.pem"
mkdir -p "$CERTS"

# leaf_cert NAME: an ECDSA P-256 key $CERTS/NAME.key and a certificate $CERTS/NAME.pem for the DNS name NAME and the
# address 127.0.0.1, signed by the CA, valid for two days.
leaf_cert() {
  local name=$1
  printf '%s\n' "basicConstraints = critical, CA:FALSE" "keyUsage = critical, digitalSignature" \
    "extendedKeyUsage = serverAuth" "subjectAltName = DNS:$name, IP:127.0.0.1" >"$CERTS/$name.ext"
  if ! openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$CERTS/$name.key" \
         -subj "/CN=$name" -out "$CERTS/$name.csr" >>"$CERTS/openssl.log" 2>&1 ||
     ! openssl x509 -req -in "$CERTS/$name.csr" -CA "$CA" -CAkey "$CERTS/ca.key" \
         -set_serial "0x$(openssl rand -hex 8)" -days 2 -sha256 -extfile "$CERTS/$name.ext" -out "$CERTS/$name.pem" \
         >>"$CERTS/openssl.log" 2>&1; then
    show_log "$CERTS/openssl.log"
    die "openssl could not make the certificate for $name"
  fi
}
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$CERTS/ca.key" \
  -subj "/CN=apigw bench CA" -days 2 -sha256 -addext "basicConstraints = critical, CA:TRUE" \
  -addext "keyUsage = critical, keyCertSign, cRLSign" -out "$CA" >>"$CERTS/openssl.log" 2>&1 ||
  { show_log "$CERTS/openssl.log"; die "openssl could not make the CA"; }
leaf_cert "$UP_NAME"
leaf_cert "$GW_NAME"
cat "$CERTS/$GW_NAME.pem" "$CERTS/$GW_NAME.key" >"$CERTS/$GW_NAME.haproxy.pem"  # HAProxy's crt: chain and key

# ------------------------------------------------------------------------------------------------ configs
free_ports 8
P_UPTLS=${PORTS[0]} P_APIGW=${PORTS[1]} P_NGINX=${PORTS[2]} P_HAPROXY=${PORTS[3]}
P_UP=${PORTS[4]} P_APIGWL=${PORTS[5]} P_NGINXL=${PORTS[6]} P_HAPROXYL=${PORTS[7]}

make_body
HANDSHAKES="$TMP/upstream-tls/connections.log"   # one line per connection the HTTPS upstream accepted and served

# The HTTPS upstream: proxy.sh's upstream behind `listen ssl`. It logs the first request of each connection (so one
# line per TLS handshake that carried a request) with whether the session was resumed, and nothing else.
mkdir -p "$TMP/upstream-tls/tmp"
{
  nginx_head "$TMP/upstream-tls"
  cat <<EOF
  log_format tlsconn '\$connection \$ssl_session_reused \$ssl_protocol \$ssl_cipher';
  map \$connection_requests \$first_on_connection { 1 1; default 0; }
  server {
    listen 127.0.0.1:$P_UPTLS ssl backlog=4096;
    ssl_certificate $CERTS/$UP_NAME.pem;
    ssl_certificate_key $CERTS/$UP_NAME.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:UPSSL:10m;
    ssl_session_tickets on;
    access_log $HANDSHAKES tlsconn if=\$first_on_connection;
    location / {
      default_type application/json;
      return 200 '$BODY';
    }
  }
}
EOF
} >"$TMP/upstream-tls/nginx.conf"

# NGINX in front of the HTTPS upstream: proxy.sh's NGINX proxy with proxy_pass https:// and upstream TLS settings.
mkdir -p "$TMP/nginx/tmp"
{
  nginx_head "$TMP/nginx"
  cat <<EOF
  upstream backend {
    server 127.0.0.1:$P_UPTLS;
    keepalive 64;
    keepalive_requests 100000;
  }
  server {
    listen 127.0.0.1:$P_NGINX backlog=4096;
    location / {
      proxy_pass https://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_ssl_protocols TLSv1.2 TLSv1.3;
      proxy_ssl_session_reuse on;
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate $CA;
      proxy_ssl_name $UP_NAME;
      proxy_ssl_server_name on;
    }
  }
}
EOF
} >"$TMP/nginx/nginx.conf"

mkdir -p "$TMP/haproxy"
haproxy_config "127.0.0.1:$P_HAPROXY" \
  "s1 127.0.0.1:$P_UPTLS ssl verify required ca-file $CA sni str($UP_NAME)" >"$TMP/haproxy/haproxy.cfg"

# apigw in front of the HTTPS upstream: proxy.sh's config with the upstream's endpoint on the TLS port and a tls block.
mkdir -p "$TMP/apigw1"
apigw_config "$P_APIGW" 1 | awk -v port="$P_UPTLS" -v ca="$CA" -v sni="$UP_NAME" '
  $1 == "endpoints:" {
    print "    endpoints: [127.0.0.1:" port "]"
    print "    tls: { ca: " ca ", sni: " sni " }"
    next
  }
  { print }' >"$TMP/apigw1/apigw.yaml"

# The TLS listener part: proxy.sh's plain upstream ($TMP/upstream, port $P_UP); apigw with server.tls, NGINX with
# listen ssl and HAProxy with bind ssl in front of it, all three proxying plain HTTP/1.1 with keep-alive.
write_upstream_config
mkdir -p "$TMP/apigw-listener"
apigw_config "$P_APIGWL" 1 | awk -v cert="$CERTS/$GW_NAME.pem" -v key="$CERTS/$GW_NAME.key" '
  { print } $0 == "server:" { print "  tls: { cert: " cert ", key: " key " }" }' >"$TMP/apigw-listener/apigw.yaml"
write_nginx_proxy_config "$TMP/nginx-listener" "$P_NGINXL" "" "" "    ssl_certificate $CERTS/$GW_NAME.pem;
    ssl_certificate_key $CERTS/$GW_NAME.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:GWSSL:10m;
    ssl_session_tickets on;"
sed -i "s|listen 127.0.0.1:$P_NGINXL backlog=4096;|listen 127.0.0.1:$P_NGINXL ssl backlog=4096;|" \
  "$TMP/nginx-listener/nginx.conf"
grep -q "listen 127.0.0.1:$P_NGINXL ssl " "$TMP/nginx-listener/nginx.conf" ||
  die "internal: the listener NGINX's listen line was not made TLS"
mkdir -p "$TMP/haproxy-listener"
haproxy_config "127.0.0.1:$P_HAPROXYL ssl crt $CERTS/$GW_NAME.haproxy.pem" "up1 127.0.0.1:$P_UP" \
  >"$TMP/haproxy-listener/haproxy.cfg"

validate_nginx upstream-tls nginx
timeout 20 haproxy -c -q -f "$TMP/haproxy/haproxy.cfg" >"$TMP/haproxy/test.log" 2>&1 ||
  { show_log "$TMP/haproxy/test.log"; die "haproxy rejects its configuration"; }
validate_apigw apigw1

# Whether this apigw has a TLS client listener: its -t on the listener config decides; anything it says is the reason.
LISTENER=1
LISTENER_SKIP=""
if ! timeout 20 "$APIGW_BIN" -t -c "$TMP/apigw-listener/apigw.yaml" >"$TMP/apigw-listener/test.log" 2>&1; then
  LISTENER=0
  LISTENER_SKIP=$(head -n 5 "$TMP/apigw-listener/test.log" | sed "s|$TMP/||g")
  log "the TLS listener part is skipped: apigw -t rejects a config with server.tls:"
  printf '%s\n' "$LISTENER_SKIP" | sed 's/^/[bench]   /' >&2
fi
if [ "$LISTENER" = 1 ]; then
  validate_nginx upstream nginx-listener
  timeout 20 haproxy -c -q -f "$TMP/haproxy-listener/haproxy.cfg" >"$TMP/haproxy-listener/test.log" 2>&1 ||
    { show_log "$TMP/haproxy-listener/test.log"; die "haproxy rejects its listener configuration"; }
fi

# ------------------------------------------------------------------------------------------------ start
# tls_get PORT NAME: one GET /bench over TLS to 127.0.0.1:PORT, sending NAME as SNI and verifying the server's
# certificate against the CA and NAME; succeeds on a 200 with the BODY_BYTES-byte body, else prints why.
cat >"$TMP/tls_get.py" <<'EOF'
import socket, ssl, sys
sys.path.insert(0, sys.argv[1])
from bench_helper import read_response
port, name, ca, want = int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
try:
    ctx = ssl.create_default_context(cafile=ca)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as s:
            s.sendall(b"GET /bench HTTP/1.1\r\nHost: %s\r\nUser-Agent: apigw-bench\r\n\r\n" % name.encode())
            status, _, body = read_response(s, __import__("time").monotonic() + 5)
except Exception as e:  # noqa: BLE001 - any failure is reported the same way
    print("GET https://127.0.0.1:%d/bench (SNI %s) failed: %s" % (port, name, e))
    sys.exit(1)
if status != 200 or len(body) != want:
    print("GET https://127.0.0.1:%d/bench: status %d, body %d bytes (want 200, %d bytes)"
          % (port, status, len(body), want))
    sys.exit(1)
EOF
tls_get() { timeout 15 "$PY" "$TMP/tls_get.py" "$SCRIPT_DIR" "$1" "$2" "$CA" "$BODY_BYTES"; }

# wait_tls_up LABEL PID PORT NAME LOG...: wait_up for a TLS listener (tls_get with NAME).
wait_tls_up() {
  local label=$1 pid=$2 port=$3 name=$4 why
  shift 4
  wait_port "$label" "$pid" "$port" "$@"
  if why=$(tls_get "$port" "$name"); then
    log "$label is up on 127.0.0.1:$port (TLS, pid $pid)"
    return 0
  fi
  show_log "$@"
  die "$label on 127.0.0.1:$port does not answer as expected: $why"
}

handshake_lines() { if [ -f "$HANDSHAKES" ]; then wc -l <"$HANDSHAKES"; else echo 0; fi; }
# new_connections LABEL FROM: "LABEL PROTOCOL CIPHER" of the connections the upstream logged after line FROM (those of
# a startup check), one line per distinct pair, into $CHECK_TLS; stops when there was none.
CHECK_TLS=""
new_connections() {
  local seen
  seen=$(tail -n +"$(($2 + 1))" "$HANDSHAKES" | awk '{ print $3, $4 }' | sort -u)
  [ -n "$seen" ] || { show_log "$TMP/upstream-tls/error.log"; die "$1's startup check reached the HTTPS upstream \
on no new connection (it should have opened one)"; }
  CHECK_TLS+="$(printf '%s\n' "$seen" | sed "s/^/$1: /" | paste -sd ';' | sed 's/;/; /g'); "
}

start upstream-tls "$TMP/upstream-tls/stdout.log" nginx -p "$TMP/upstream-tls" -c "$TMP/upstream-tls/nginx.conf" \
  -e "$TMP/upstream-tls/error.log"
PID_UPTLS=$LAST_PID
wait_tls_up "HTTPS upstream NGINX" "$PID_UPTLS" "$P_UPTLS" "$UP_NAME" "$TMP/upstream-tls/stdout.log" \
  "$TMP/upstream-tls/error.log"
# Each startup check opens one connection to the upstream: it must be logged, or the handshake counts would mean
# nothing; its protocol and cipher go into the report's header.
new_connections "direct" 0
L0=$(handshake_lines)
start_apigw apigw apigw1 "$P_APIGW" "apigw (workers: 1)"
PID_APIGW=$LAST_PID
new_connections apigw "$L0"
L0=$(handshake_lines)
start_nginx_proxy
new_connections NGINX "$L0"
L0=$(handshake_lines)
start_haproxy
new_connections HAProxy "$L0"
declare -A TARGET_PID=([upstream]=$PID_UPTLS [apigw]=$PID_APIGW [nginx]=$PID_NGINX [haproxy]=$PID_HAPROXY)

if [ "$LISTENER" = 1 ]; then
  start_upstream
  start apigw-listener "$TMP/apigw-listener/apigw.log" "$APIGW_BIN" -c "$TMP/apigw-listener/apigw.yaml"
  TARGET_PID[apigw-tls]=$LAST_PID
  wait_tls_up "apigw TLS listener" "$LAST_PID" "$P_APIGWL" "$GW_NAME" "$TMP/apigw-listener/apigw.log"
  start nginx-listener "$TMP/nginx-listener/stdout.log" nginx -p "$TMP/nginx-listener" \
    -c "$TMP/nginx-listener/nginx.conf" -e "$TMP/nginx-listener/error.log"
  TARGET_PID[nginx-tls]=$LAST_PID
  wait_tls_up "NGINX TLS listener" "$LAST_PID" "$P_NGINXL" "$GW_NAME" "$TMP/nginx-listener/stdout.log" \
    "$TMP/nginx-listener/error.log"
  start haproxy-listener "$TMP/haproxy-listener/haproxy.log" haproxy -db -f "$TMP/haproxy-listener/haproxy.cfg"
  TARGET_PID[haproxy-tls]=$LAST_PID
  wait_tls_up "HAProxy TLS listener" "$LAST_PID" "$P_HAPROXYL" "$GW_NAME" "$TMP/haproxy-listener/haproxy.log"
fi

# ------------------------------------------------------------------------------------------------ throughput
measure_idle

# Around each measured run: the target's user and system ticks and the machine's busy and total ticks, as
# "KEY<TAB>ROUND<TAB>user<TAB>system<TAB>busy<TAB>total" in $CPU_SPLIT (as proxy.sh); for the targets in front of the
# HTTPS upstream, also the connections it logged during the run and during its warm-up (from HS_W0, read before it),
# as "KEY<TAB>ROUND<TAB>new<TAB>resumed<TAB>warm-up new<TAB>warm-up resumed" in $HS_FILE.
CPU_SPLIT="$TMP/cpu_split.tsv"
HS_FILE="$TMP/handshakes.tsv"
: >"$HS_FILE"
bench_before_run() {
  HS_L0=$(handshake_lines)
  read -r SPLIT_U0 SPLIT_S0 < <(split_ticks "${TARGET_PID[$1]}")
  read -r MACHINE_B0 MACHINE_T0 < <(machine_ticks)
}
bench_after_run() {
  local user sys busy total l1
  read -r busy total < <(machine_ticks)
  read -r user sys < <(split_ticks "${TARGET_PID[$1]}")
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" $((user - SPLIT_U0)) $((sys - SPLIT_S0)) $((busy - MACHINE_B0)) \
    $((total - MACHINE_T0)) >>"$CPU_SPLIT"
  case "$1" in
    upstream | apigw | nginx | haproxy)
      l1=$(handshake_lines)
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" $((l1 - HS_L0)) \
        "$(sed -n "$((HS_L0 + 1)),${l1}p" "$HANDSHAKES" | awk '$2 == "r"' | wc -l)" $((HS_L0 - HS_W0)) \
        "$(sed -n "$((HS_W0 + 1)),${HS_L0}p" "$HANDSHAKES" | awk '$2 == "r"' | wc -l)" >>"$HS_FILE" ;;
  esac
}

# run_https_target KEY LABEL PORT PID ROUND: lib.sh's run_target (warm-up, measured run, CPU accounting, one row in
# $RESULTS) for a target that listens with TLS: wrk drives https://127.0.0.1:PORT/bench instead of http://.
run_https_target() {
  local key=$1 label=$2 port=$3 pid=$4 round=$5 url out c0 c1 t0 t1 parsed cpu key_r=$1 note=""
  url="https://127.0.0.1:$port/bench"
  if [ "$ROUNDS" -gt 1 ]; then key_r="$key-r$round"; note=" (round $round of $ROUNDS)"; fi
  log "$label: ${WARMUP}s warm-up$note"
  timeout --foreground -k 5 $((WARMUP + 30)) \
    wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" --latency "$url" >"$TMP/wrk-$key_r-warmup.txt" 2>&1 ||
    { cat "$TMP/wrk-$key_r-warmup.txt" >&2; die "wrk warm-up against $label failed"; }
  alive "$pid" || die "$label (pid $pid) died during the warm-up"
  log "$label: ${DURATION}s measured run$note"
  out="$TMP/wrk-$key_r.txt"
  bench_before_run "$key" "$round"
  c0=$(cpu_ticks "$pid")
  t0=$(now_ns)
  timeout --foreground -k 5 $((DURATION + 30)) \
    wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$url" >"$out" 2>&1 ||
    { cat "$out" >&2; die "wrk against $label failed"; }
  t1=$(now_ns)
  c1=$(cpu_ticks "$pid")
  bench_after_run "$key" "$round"
  alive "$pid" || die "$label (pid $pid) died during the run"
  parsed=$("$PY" "$HELPER" parse-wrk "$out") || { cat "$out" >&2; die "could not parse wrk's output for $label"; }
  cpu=$(cpu_pct "$((c1 - c0))" "$((t1 - t0))")
  printf '%s\t%s\t%s\t%s\t%s\n' "$key" "$round" "$label" "$parsed" "$cpu" >>"$RESULTS"
  grep -E 'Non-2xx|Socket errors' "$out" | sed "s/^/[bench]   $label: /" >&2
}

for ((round = 1; round <= ROUNDS; round++)); do
  HS_W0=$(handshake_lines)
  run_https_target upstream "upstream NGINX (direct, HTTPS)" "$P_UPTLS" "$PID_UPTLS" "$round"
  HS_W0=$(handshake_lines)
  run_target apigw "apigw (workers: 1)" "$P_APIGW" "$PID_APIGW" "$round"
  HS_W0=$(handshake_lines)
  run_target nginx "NGINX proxy (1 worker)" "$P_NGINX" "$PID_NGINX" "$round"
  HS_W0=$(handshake_lines)
  run_target haproxy "HAProxy (nbthread 1)" "$P_HAPROXY" "$PID_HAPROXY" "$round"
  if [ "$LISTENER" = 1 ]; then
    run_https_target apigw-tls "apigw TLS listener" "$P_APIGWL" "${TARGET_PID[apigw-tls]}" "$round"
    run_https_target nginx-tls "NGINX TLS listener" "$P_NGINXL" "${TARGET_PID[nginx-tls]}" "$round"
    run_https_target haproxy-tls "HAProxy TLS listener" "$P_HAPROXYL" "${TARGET_PID[haproxy-tls]}" "$round"
  fi
done
alive "$PID_UPTLS" || { show_log "$TMP"/upstream-tls/*.log; die "the HTTPS upstream died during the runs"; }

# ------------------------------------------------------------------------------------------------ report
LISTENER_TEXT=""
[ "$LISTENER" = 1 ] && LISTENER_TEXT="TLS listeners: certificate for $GW_NAME (ECDSA P-256, same CA); apigw server.tls \
{ cert, key }, NGINX listen ssl (TLSv1.2 TLSv1.3, session cache and tickets on), HAProxy bind ssl crt; each proxies \
plain HTTP to proxy.sh's upstream NGINX (1 worker) with keep-alive
"
# Every connection the HTTPS upstream served, warm-ups and startup checks included: "N TLSv1.3 TLS_AES_..." lines.
TLS_SEEN=$(awk '{ print $3, $4 }' "$HANDSHAKES" | sort | uniq -c |
  awk '{ printf "%s%s %s %s", sep, $1, $2, $3; sep = "; " }')
RESUMED_SEEN=$(awk '$2 == "r"' "$HANDSHAKES" | wc -l)
HEADER="apigw HTTPS benchmark: wrk 1 thread, $CONNECTIONS connections, ${DURATION}s per run after a ${WARMUP}s \
warm-up; ${BODY_BYTES}-byte JSON from one NGINX upstream (1 worker); $(nproc) CPU cores shared by wrk, upstream \
and proxy
HTTPS upstream: listen ssl, certificate for $UP_NAME (ECDSA P-256, signed by a CA made at start), session cache and \
tickets on; every proxy verifies it against that CA and sends SNI $UP_NAME
upstream connections of the startup checks: ${CHECK_TLS%; }; all it served in this run (warm-ups and checks \
included): ${TLS_SEEN:-none}, $RESUMED_SEEN of them resumed
${LISTENER_TEXT}apigw binary: $APIGW_DESC; $(peer_versions); $(openssl version | awk '{ print $1, $2 }') (the CLI \
that made the certificates); cpu % = CPU time of the target's processes / wall time (100 = one core)
machine ${IDLE_BUSY}% busy (all cores) in the second before the first run; load average at the end: \
$(cut -d' ' -f1-3 /proc/loadavg)"

"$PY" - "$SCRIPT_DIR" "$RESULTS" "$CPU_SPLIT" "$CLK_TCK" "$HS_FILE" "$HEADER" "$LISTENER" "$LISTENER_SKIP" \
  <<'EOF' || die "could not print the report"
import statistics
import sys

sys.path.insert(0, sys.argv[1])
import bench_helper as bh  # noqa: E402

results, split_path, clk_tck, hs_path, header, listener, skip_reason = sys.argv[2:9]
clk_tck = int(clk_tck)
order, runs, rows, rounds = bh.load_results(results)
split = bh.load_split(split_path)
for key in order:
    for r in runs[key]:
        r["cpu_req"] = bh.cpu_per_request(split, key, r, clk_tck)
hs = {}  # (key, round) -> (new connections, resumed) in the measured run
hs_warm = {}  # (key, round) -> the same in its warm-up
for line in open(hs_path):
    parts = line.rstrip("\n").split("\t")
    if len(parts) == 6:
        hs[(parts[0], int(parts[1]))] = (int(parts[2]), int(parts[3]))
        hs_warm[(parts[0], int(parts[1]))] = (int(parts[4]), int(parts[5]))

UPSTREAM_PART = ["upstream", "apigw", "nginx", "haproxy"]
LISTENER_PART = ["apigw-tls", "nginx-tls", "haproxy-tls"]


def fmt_cpu(r):
    return "%.1f" % r["cpu_req"] if r.get("cpu_req") is not None else "-"


def ratio_line(name, num, den, field, target=None, at_most=False, judge_rounds=False):
    """One ratio of num over den: of the median runs and round by round. With judge_rounds the decided figure is the
    median of the per-round ratios (as proxy.sh's CPU/req); otherwise the ratio of the median runs."""
    a, b = rows[num].get(field), rows[den].get(field)
    if a is None or not b:
        print("  %-22s %6s" % (name, "-"))
        return
    den_by_round = {r["round"]: r.get(field) for r in runs[den]}
    per_round = [r[field] / den_by_round[r["round"]] for r in runs[num]
                 if r.get(field) is not None and den_by_round.get(r["round"])]
    decided = statistics.median(per_round) if judge_rounds and per_round else a / b
    if target is None:
        verdict = "report only"
    else:
        ok = round(decided, 2) <= target if at_most else round(decided, 2) >= target
        verdict = "target %s %.2fx  %s" % ("<=" if at_most else ">=", target, "PASS" if ok else "FAIL")
    text = ""
    if rounds > 1 and per_round:
        text = "   (%s%s)" % (" ".join("%.2f" % x for x in per_round), "; median" if judge_rounds else "")
    print(("  %-22s %6.2fx   %-24s%s" % (name, decided, verdict, text)).rstrip())


def part_table(keys, extra_head, extra_row):
    hdr = bh.table_head(extra=extra_head)
    print(hdr)
    print("-" * len(hdr))
    for key in keys:
        print(bh.table_row(rows[key], extra_row(key)))


print()
print(header)

# ---- the HTTPS upstream
keys = [k for k in UPSTREAM_PART if k in rows]
print()
print("HTTPS upstream: each proxy listens in plain HTTP and opens TLS to the upstream NGINX")
print()


def hs_cols(key):
    r = rows[key]
    new, resumed = hs.get((key, r["round"]), (0, 0))
    return " %9s %9d %8d %10.6f" % (fmt_cpu(r), new, resumed, new / r["reqs"] if r["reqs"] else 0.0)


part_table(keys, " %9s %9s %8s %10s" % ("µs/req", "up conns", "resumed", "hs/req"), hs_cols)
print("  µs/req: own CPU (user + system) per request; up conns: connections the upstream accepted and served in the "
      "run,\n  each one TLS handshake (resumed: of them, with a resumed session); hs/req: up conns / requests")
bh.print_rounds(keys, runs, rows, rounds)
if rounds > 1:
    print("up conns (resumed) of every round:")
    for key in keys:
        print("  %-28s %s" % (rows[key]["label"], "  ".join(
            "%d (%d)" % hs.get((key, r["round"]), (0, 0)) for r in runs[key])))

if all(k in rows for k in ("apigw", "nginx", "haproxy")):
    print()
    print("apigw (workers: 1) against HAProxy and NGINX, HTTPS upstream (req/s and p99: of the median runs; "
          "CPU/req: the median\nof the per-round ratios%s)" % ("; in parentheses round by round" if rounds > 1 else ""))
    ratio_line("req/s vs HAProxy", "apigw", "haproxy", "rps", 1.0)
    ratio_line("CPU/req vs HAProxy", "apigw", "haproxy", "cpu_req", 1.0, at_most=True, judge_rounds=True)
    ratio_line("p99 vs HAProxy", "apigw", "haproxy", "p99")
    ratio_line("req/s vs NGINX", "apigw", "nginx", "rps")
    ratio_line("CPU/req vs NGINX", "apigw", "nginx", "cpu_req", judge_rounds=True)
    ratio_line("p99 vs NGINX", "apigw", "nginx", "p99")
    print()
    print("upstream TLS handshakes per request, all measured runs (keep-alive should hold it near 0):")
    for key in ("apigw", "nginx", "haproxy"):
        new = sum(hs.get((key, r["round"]), (0, 0))[0] for r in runs[key])
        resumed = sum(hs.get((key, r["round"]), (0, 0))[1] for r in runs[key])
        reqs = sum(r["reqs"] for r in runs[key])
        print("  %-24s %6d handshakes (%d resumed) in %9d requests: %.6f per request"
              % (rows[key]["label"], new, resumed, reqs, new / reqs if reqs else 0.0))
    if "upstream" in rows:
        print("  (the direct line's are wrk's own %s connections per run, for scale)" % "/".join(
            sorted({str(hs.get(("upstream", r["round"]), (0, 0))[0]) for r in runs["upstream"]})))
    print("in the warm-ups before those runs (the pools filling; round by round, resumed in parentheses):")
    for key in ("apigw", "nginx", "haproxy"):
        print("  %-24s %s" % (rows[key]["label"], "  ".join(
            "%d (%d)" % hs_warm.get((key, r["round"]), (0, 0)) for r in runs[key])))

bh.print_cpu_split(split_path, clk_tck, keys, rows)

# ---- the TLS listener
print()
if listener != "1":
    print("TLS listener (apigw server.tls against NGINX listen ssl and HAProxy bind ssl): SKIPPED, apigw -t rejects "
          "server.tls:")
    for line in skip_reason.splitlines():
        print("  " + line)
    print("  (nothing of this part was started or measured)")
else:
    keys_l = [k for k in LISTENER_PART if k in rows]
    print("TLS listener: each proxy terminates TLS from wrk (https://, keep-alive) and proxies plain HTTP to an "
          "NGINX upstream")
    print()
    part_table(keys_l, " %9s" % "µs/req", lambda k: " %9s" % fmt_cpu(rows[k]))
    print("  µs/req: own CPU (user + system) per request; wrk makes one full handshake per connection at the start of "
          "each run")
    bh.print_rounds(keys_l, runs, rows, rounds)
    if all(k in rows for k in LISTENER_PART):
        print()
        print("apigw TLS listener against HAProxy and NGINX (req/s and p99: of the median runs; CPU/req: the median of "
              "the per-round\nratios%s)" % ("; in parentheses round by round" if rounds > 1 else ""))
        ratio_line("req/s vs HAProxy", "apigw-tls", "haproxy-tls", "rps")
        ratio_line("CPU/req vs HAProxy", "apigw-tls", "haproxy-tls", "cpu_req", judge_rounds=True)
        ratio_line("p99 vs HAProxy", "apigw-tls", "haproxy-tls", "p99")
        ratio_line("req/s vs NGINX", "apigw-tls", "nginx-tls", "rps")
        ratio_line("CPU/req vs NGINX", "apigw-tls", "nginx-tls", "cpu_req", judge_rounds=True)
        ratio_line("p99 vs NGINX", "apigw-tls", "nginx-tls", "p99")
    bh.print_cpu_split(split_path, clk_tck, keys_l, rows)

bh.print_wrk_errors(order, runs)
EOF

print_server_logs "$TMP"/upstream-tls/error.log "$TMP"/upstream-tls/stdout.log "$TMP"/nginx/error.log \
  "$TMP"/nginx/stdout.log "$TMP"/haproxy/haproxy.log "$TMP"/apigw1/apigw.log "$TMP"/upstream/error.log \
  "$TMP"/upstream/stdout.log "$TMP"/apigw-listener/apigw.log "$TMP"/nginx-listener/error.log \
  "$TMP"/nginx-listener/stdout.log "$TMP"/haproxy-listener/haproxy.log
exit 0
