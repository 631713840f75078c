#!/usr/bin/python3
"""Helpers for bench/proxy.sh, bench/auth.sh, bench/cache.sh and bench/shadow.sh (Python standard library only).

Subcommands:
  free-ports N                 print N distinct free TCP ports on 127.0.0.1, one per line
  check-get PORT PATH LEN [--status N] [--header "NAME: VALUE"]... [--contains TEXT] [--want-header "NAME: VALUE"]...
                               one GET (with those extra request headers); exit 0 if the answer has status N
                               (default 200), a LEN-byte body (LEN "-": any) containing TEXT, and each wanted
                               response header with exactly that value, else print why, exit 1
  probe PORT PATH [--header "NAME: VALUE"]...
                               one GET; print: status  head_bytes  body_bytes  X-Cache value (or -)
  mc PORT set FILE KEY...      store FILE's bytes in Memcached under each KEY (flags 0, no expiry)
  mc PORT get KEY              print the length of KEY's value (exit 1 when absent)
  mc PORT stats FILE           write Memcached's `stats` as "name value" lines to FILE
  mc PORT keys PREFIX          print the keys that start with PREFIX (lru_crawler metadump all)
  metrics PORT FILE            GET /metrics from apigw's admin listener; write its samples (no histogram buckets,
                               no comments) to FILE
  parse-wrk FILE               print one tab-separated line parsed from a wrk --latency output:
                               rps  p50_us  p99_us  requests  non2xx  sockerr_total  sockerr_text
  hold --port P --pid PID --count N --window W --hold S --out FILE
                               open N keep-alive connections to P, send one GET on each and read its response,
                               keep them all open and idle, read /proc/PID/status, write the figures to FILE
  report RESULTS_TSV RSS_FILE HEADER [CPU_SPLIT CLK_TCK [BASELINE_PATH BASELINE_RSS_FILE]]
                               print the final tables of proxy.sh (with BASELINE_PATH: apigw against that
                               baseline binary too)
  auth-report RESULTS_TSV SIDE_TSV METRICS_DIR HEADER
                               print the final tables of auth.sh (reads WARMUP from the environment)
  cache-report RESULTS_TSV SIDE_TSV METRICS_DIR PROBES_TSV HEADER
                               print the final tables of cache.sh
  stub-status PORT PATH [FILE] GET PATH from an NGINX stub_status location; print its request count, and write
                               "active/accepts/handled/requests N" lines to FILE (read like a metrics file)
  tracing-report RESULTS_TSV SIDE_TSV METRICS_DIR HEADER
                               print the final tables of tracing.sh
  shadow-report RESULTS_TSV SIDE_TSV METRICS_DIR HEADER
                               print the final tables of shadow.sh
"""

import errno
import os
import re
import selectors
import socket
import statistics
import sys
import time


# ---------------------------------------------------------------------------------------------------- free-ports
def free_ports(n):
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    print("\n".join(str(p) for p in ports))


# ---------------------------------------------------------------------------------------------------- check-get
def read_response(sock, deadline):
    """Read one HTTP/1.1 response with a Content-Length body. Returns (status, headers dict, body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        if time.monotonic() > deadline:
            raise TimeoutError("timed out reading the response head")
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed before the response head (got %r)" % buf[:200])
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        if time.monotonic() > deadline:
            raise TimeoutError("timed out reading the response body")
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed in the response body")
        rest += chunk
    return status, headers, rest[:length]


def http_get(port, path, headers=()):
    """One GET on a fresh connection. Returns (status, headers dict, body)."""
    extra = "".join("%s\r\n" % h for h in headers)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: apigw-bench\r\n%s\r\n"
                   % (path, port, extra)).encode())
        return read_response(s, time.monotonic() + 5)


def check_get(port, path, want_len, want_status=200, headers=(), contains=None, want_headers=()):
    try:
        status, resp_headers, body = http_get(port, path, headers)
    except Exception as e:  # noqa: BLE001 - any failure is reported the same way
        print("GET http://127.0.0.1:%d%s failed: %s" % (port, path, e))
        return 1
    for wanted in want_headers:
        name, _, value = wanted.partition(":")
        got = resp_headers.get(name.strip().lower())
        if got != value.strip():
            print("GET http://127.0.0.1:%d%s: status %d, %s: %s (want %s)"
                  % (port, path, status, name.strip(), "absent" if got is None else repr(got), repr(value.strip())))
            return 1
    if (status != want_status or (want_len is not None and len(body) != want_len)
            or (contains is not None and contains.encode() not in body)):
        want = "%d, %s" % (want_status, "%d bytes" % want_len if want_len is not None else "a body of any length")
        if contains is not None:
            want += " containing %r" % contains
        print("GET http://127.0.0.1:%d%s: status %d, body %d bytes (want %s): %r"
              % (port, path, status, len(body), want, body[:200]))
        return 1
    return 0


def check_get_main(args):
    import argparse
    p = argparse.ArgumentParser(prog="bench_helper.py check-get")
    p.add_argument("port", type=int)
    p.add_argument("path")
    p.add_argument("length")
    p.add_argument("--status", type=int, default=200)
    p.add_argument("--header", action="append", default=[])
    p.add_argument("--contains")
    p.add_argument("--want-header", action="append", default=[])
    a = p.parse_args(args)
    return check_get(a.port, a.path, None if a.length == "-" else int(a.length), a.status, a.header, a.contains,
                     a.want_header)


# ---------------------------------------------------------------------------------------------------- probe
def probe_main(args):
    """One GET; print status, the size of the response head (status line to the blank line, inclusive) and body,
    and the X-Cache header."""
    import argparse
    p = argparse.ArgumentParser(prog="bench_helper.py probe")
    p.add_argument("port", type=int)
    p.add_argument("path")
    p.add_argument("--header", action="append", default=[])
    a = p.parse_args(args)
    extra = "".join("%s\r\n" % h for h in a.header)
    try:
        with socket.create_connection(("127.0.0.1", a.port), timeout=5) as s:
            s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: apigw-bench\r\n%s\r\n"
                       % (a.path, a.port, extra)).encode())
            buf = b""
            deadline = time.monotonic() + 5
            while b"\r\n\r\n" not in buf and time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            head, sep, rest = buf.partition(b"\r\n\r\n")
            if not sep:
                print("probe: no complete response head from port %d" % a.port, file=sys.stderr)
                return 1
            m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            need = int(m.group(1)) if m else 0
            while len(rest) < need and time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                rest += chunk
    except Exception as e:  # noqa: BLE001
        print("probe: GET http://127.0.0.1:%d%s failed: %s" % (a.port, a.path, e), file=sys.stderr)
        return 1
    status = int(head.split(b" ", 2)[1])
    xc = re.search(rb"(?im)^x-cache:\s*(\S+)", head)
    print("%d\t%d\t%d\t%s" % (status, len(head) + 4, len(rest), xc.group(1).decode() if xc else "-"))
    return 0


# ---------------------------------------------------------------------------------------------------- mc
def mc_command(port, payload, until):
    """Send payload to the Memcached on 127.0.0.1:port and read until the reply ends with one of `until`."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        buf = b""
        deadline = time.monotonic() + 10
        while not any(buf.endswith(u) for u in until):
            if time.monotonic() > deadline:
                raise TimeoutError("memcached on port %d: no complete reply (got %r)" % (port, buf[-200:]))
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("memcached on port %d closed the connection (got %r)" % (port, buf[-200:]))
            buf += chunk
        return buf


MC_ERRORS = (b"ERROR\r\n", b"SERVER_ERROR", b"CLIENT_ERROR")


def mc_main(args):
    port, cmd = int(args[0]), args[1]
    try:
        if cmd == "set":
            value, keys = open(args[2], "rb").read(), args[3:]
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                for i in range(0, len(keys), 100):  # in batches, so that neither side's socket buffer fills up
                    batch = keys[i:i + 100]
                    s.sendall(b"".join(b"set %s 0 0 %d\r\n%s\r\n" % (k.encode(), len(value), value)
                                       for k in batch))
                    reply = b""
                    while reply.count(b"\r\n") < len(batch):
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        reply += chunk
                    if reply != b"STORED\r\n" * len(batch):
                        print("memcached set %s...: %r" % (batch[0], reply[:200]), file=sys.stderr)
                        return 1
            return 0
        if cmd == "get":
            reply = mc_command(port, b"get %s\r\n" % args[2].encode(), (b"END\r\n",) + MC_ERRORS)
            m = re.match(rb"VALUE \S+ \d+ (\d+)\r\n", reply)
            if not m:
                return 1
            print(int(m.group(1)))
            return 0
        if cmd == "stats":
            reply = mc_command(port, b"stats\r\n", (b"END\r\n",) + MC_ERRORS)
            with open(args[2], "w") as f:
                for line in reply.decode("latin-1").split("\r\n"):
                    parts = line.split(" ")
                    if len(parts) == 3 and parts[0] == "STAT":
                        f.write("%s %s\n" % (parts[1], parts[2]))
            return 0
        if cmd == "keys":
            from urllib.parse import unquote
            reply = mc_command(port, b"lru_crawler metadump all\r\n", (b"END\r\n",) + MC_ERRORS)
            for line in reply.decode("latin-1").splitlines():  # metadump ends its lines with a bare \n
                if line.startswith("key="):
                    key = unquote(line.split(" ", 1)[0][4:])
                    if key.startswith(args[2]):
                        print(key)
            return 0
    except Exception as e:  # noqa: BLE001
        print("memcached on port %d: %s" % (port, e), file=sys.stderr)
        return 1
    print("unknown mc command %r" % cmd, file=sys.stderr)
    return 2


# ---------------------------------------------------------------------------------------------------- metrics
def metrics(port, out_path):
    try:
        status, _, body = http_get(port, "/metrics")
    except Exception as e:  # noqa: BLE001
        print("metrics: GET http://127.0.0.1:%d/metrics failed: %s" % (port, e), file=sys.stderr)
        return 1
    if status != 200:
        print("metrics: GET http://127.0.0.1:%d/metrics answered %d" % (port, status), file=sys.stderr)
        return 1
    with open(out_path, "w") as f:
        for line in body.decode("utf-8", "replace").splitlines():
            if line and not line.startswith("#") and "_bucket{" not in line:
                f.write(line + "\n")
    return 0


def read_metrics(path):
    """{sample name with labels: value} from a file written by metrics(); {} when it is missing."""
    out = {}
    if os.path.exists(path):
        for line in open(path):
            name, _, value = line.rstrip("\n").rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


# ---------------------------------------------------------------------------------------------------- stub-status
def stub_status(port, path, out_path=None):
    """NGINX's stub_status counters. They count every connection and request, this one included."""
    try:
        status, _, body = http_get(port, path)
    except Exception as e:  # noqa: BLE001
        print("stub-status: GET http://127.0.0.1:%d%s failed: %s" % (port, path, e), file=sys.stderr)
        return 1
    m = re.search(r"Active connections:\s*(\d+).*?\n\s*(\d+)\s+(\d+)\s+(\d+)", body.decode("latin-1"), re.S)
    if status != 200 or not m:
        print("stub-status: GET http://127.0.0.1:%d%s answered %d: %r" % (port, path, status, body[:200]),
              file=sys.stderr)
        return 1
    active, accepts, handled, requests = m.groups()
    print(requests)
    if out_path:
        with open(out_path, "w") as f:
            f.write("active %s\naccepts %s\nhandled %s\nrequests %s\n" % (active, accepts, handled, requests))
    return 0


# ---------------------------------------------------------------------------------------------------- parse-wrk
UNITS_US = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0, "m": 60_000_000.0, "h": 3_600_000_000.0}


def to_us(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text.strip())
    if not m:
        raise ValueError("unparsable latency %r" % text)
    return float(m.group(1)) * UNITS_US[m.group(2)]


def parse_wrk(path):
    text = open(path, encoding="utf-8", errors="replace").read()
    rps = re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M)
    p50 = re.search(r"^\s+50%\s+(\S+)", text, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    reqs = re.search(r"^\s+(\d+) requests in", text, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if not (rps and p50 and p99 and reqs):
        print("parse-wrk: %s is not a complete wrk --latency output" % path, file=sys.stderr)
        return 1
    sock_total = sum(int(x) for x in sock.groups()) if sock else 0
    sock_text = sock.group(0) if sock else "-"
    print("\t".join([rps.group(1), "%.1f" % to_us(p50.group(1)), "%.1f" % to_us(p99.group(1)), reqs.group(1),
                     non2xx.group(1) if non2xx else "0", str(sock_total), sock_text]))
    return 0


# ---------------------------------------------------------------------------------------------------- hold
def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads"):
                out[k] = int(v.split()[0])  # kB for Vm*, a count for Threads
    return out


def count_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def hold(port, pid, count, window, hold_s, out_path, timeout_s):
    """Open `count` connections, at most `window` of them with a request in flight at once."""
    request = ("GET /rss HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: apigw-bench\r\n\r\n" % port).encode()
    sel = selectors.DefaultSelector()  # epoll: no FD_SETSIZE limit
    deadline = time.monotonic() + timeout_s
    conns = {}  # fd -> dict(sock, state, buf)
    started = done = failed = non200 = 0
    idle = []
    fail_reasons = {}

    def fail(c, why):
        nonlocal failed
        failed += 1
        fail_reasons[why] = fail_reasons.get(why, 0) + 1
        try:
            sel.unregister(c["sock"])
        except (KeyError, ValueError):
            pass
        c["sock"].close()
        conns.pop(c["fd"], None)

    def start_one():
        nonlocal started
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex(("127.0.0.1", port))
        started += 1
        c = {"sock": s, "fd": s.fileno(), "state": "connect", "buf": b"", "sent": 0}
        conns[c["fd"]] = c
        if err not in (0, errno.EINPROGRESS):
            fail(c, "connect: " + os.strerror(err))
            return
        sel.register(s, selectors.EVENT_WRITE, c)

    while done + failed < count:
        if time.monotonic() > deadline:
            print("hold: timed out after %ds with %d of %d connections ready" % (timeout_s, done, count),
                  file=sys.stderr)
            break
        while started < count and (started - done - failed) < window:
            start_one()
        for key, _ in sel.select(timeout=1.0):
            c = key.data
            s = c["sock"]
            try:
                if c["state"] == "connect":
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        fail(c, "connect: " + os.strerror(err))
                        continue
                    c["state"] = "send"
                if c["state"] == "send":
                    c["sent"] += s.send(request[c["sent"]:])
                    if c["sent"] == len(request):
                        c["state"] = "read"
                        sel.modify(s, selectors.EVENT_READ, c)
                    continue
                if c["state"] == "read":
                    chunk = s.recv(65536)
                    if not chunk:
                        fail(c, "closed by peer before the response")
                        continue
                    c["buf"] += chunk
                    head, sep, body = c["buf"].partition(b"\r\n\r\n")
                    if not sep:
                        continue
                    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                    need = int(m.group(1)) if m else 0
                    if len(body) < need:
                        continue
                    status = int(head.split(b" ", 2)[1])
                    if status != 200:
                        non200 += 1
                    sel.unregister(s)
                    c["state"] = "idle"
                    c["buf"] = b""
                    idle.append(c)
                    done += 1
            except OSError as e:
                fail(c, type(e).__name__ + ": " + (e.strerror or str(e)))

    # Everything that answered is now idle and open. Let the gateway settle, then measure.
    time.sleep(hold_s)
    # Count the idle connections the gateway closed meanwhile (a readable socket that reads EOF).
    closed_meanwhile = 0
    for c in idle:
        try:
            c["sock"].setblocking(False)
            if c["sock"].recv(1, socket.MSG_PEEK) == b"":
                closed_meanwhile += 1
        except BlockingIOError:
            pass
        except OSError:
            closed_meanwhile += 1
    try:
        st = proc_status(pid)
        fds = count_fds(pid)
    except OSError as e:
        print("hold: cannot read /proc/%d/status: %s (did apigw exit?)" % (pid, e), file=sys.stderr)
        st, fds = {}, -1
    with open(out_path, "w") as f:
        f.write("open_ok\t%d\n" % done)
        f.write("open_failed\t%d\n" % failed)
        f.write("non200\t%d\n" % non200)
        f.write("closed_meanwhile\t%d\n" % closed_meanwhile)
        f.write("rss_kb\t%d\n" % st.get("VmRSS", -1))
        f.write("hwm_kb\t%d\n" % st.get("VmHWM", -1))
        f.write("threads\t%d\n" % st.get("Threads", -1))
        f.write("fds\t%d\n" % fds)
        f.write("fail_reasons\t%s\n" % ("; ".join("%s x%d" % kv for kv in fail_reasons.items()) or "-"))
    for c in idle:
        c["sock"].close()
    return 0


# ---------------------------------------------------------------------------------------------------- report
def fmt_ms(us):
    return "%.2f" % (us / 1000.0)


def load_results(results_path):
    """Rows written by run_target. Returns (order of keys, {key: every run}, {key: median run}, rounds)."""
    runs = {}  # key -> every run of that target, in order
    order = []
    for line in open(results_path):
        parts = line.rstrip("\n").split("\t")
        if len(parts) < 11:
            continue
        key, rnd, label, rps, p50, p99, reqs, non2xx, sockerr, socktext, cpu = parts[:11]
        if key not in runs:
            runs[key] = []
            order.append(key)
        runs[key].append(dict(label=label, round=int(rnd), rps=float(rps), p50=float(p50), p99=float(p99),
                              reqs=int(reqs), non2xx=int(non2xx), sockerr=int(sockerr), socktext=socktext,
                              cpu=cpu))
    # With several rounds, each target is represented by its run with the median req/s (the lower middle one
    # for an even count); its p50 and p99 come from that same run.
    rows = {}
    for key in order:
        by_rps = sorted(runs[key], key=lambda r: r["rps"])
        rows[key] = by_rps[(len(by_rps) - 1) // 2]
    rounds = max(len(v) for v in runs.values()) if runs else 0
    return order, runs, rows, rounds


def table_head(first="target", extra=""):
    return "%-30s %11s %9s %9s %8s %10s %8s%s" % (first, "req/s", "p50 ms", "p99 ms", "non-2xx", "sock err",
                                                 "cpu %", extra)


def table_row(r, extra=""):
    return "%-30s %11.0f %9s %9s %8d %10d %8s%s" % (r["label"], r["rps"], fmt_ms(r["p50"]), fmt_ms(r["p99"]),
                                                   r["non2xx"], r["sockerr"], r["cpu"], extra)


def print_rounds(order, runs, rows, rounds):
    if rounds > 1:
        print()
        print("%d rounds; each line is the run with the median req/s. req/s of every round:" % rounds)
        for key in order:
            print("  %-28s %s" % (rows[key]["label"], "  ".join("%.0f" % r["rps"] for r in runs[key])))


def per_round_ratios(runs, num, den, field, rounds):
    """"   (r1 r2 ...)": num's field over den's, round by round; empty for a single round."""
    if rounds <= 1:
        return ""
    den_by_round = {r["round"]: r[field] for r in runs[den]}
    return "   (%s)" % " ".join("%.2f" % (r[field] / den_by_round[r["round"]])
                                for r in runs[num] if den_by_round.get(r["round"]))


def print_wrk_errors(order, runs, all_non2xx=()):
    """wrk's error counts. A key in all_non2xx is meant to answer non-2xx to every request: only a run where
    some answers were 2xx, or with socket errors, is listed."""
    def bad(key, r):
        if key in all_non2xx:
            return r["sockerr"] or r["non2xx"] != r["reqs"]
        return r["non2xx"] or r["sockerr"]

    bad_runs = [r for k in order for r in runs[k] if bad(k, r)]
    print()
    if bad_runs:
        print("wrk reported errors (measured runs):")
        for r in bad_runs:
            print("  %-28s round %d: Non-2xx or 3xx responses: %d; %s"
                  % (r["label"], r["round"], r["non2xx"], r["socktext"]))
    elif all_non2xx:
        print("wrk reported no socket errors and no unexpected non-2xx responses in any measured run\n"
              "(%s: every answer non-2xx, as meant)" % ", ".join(runs[k][0]["label"] for k in order if k in all_non2xx))
    else:
        print("wrk reported no non-2xx responses and no socket errors in any measured run.")


def load_split(split_path):
    """(key, round) -> [user, system, machine busy, machine total] ticks, from the CPU split file of proxy.sh."""
    split = {}
    if split_path and os.path.exists(split_path):
        for line in open(split_path):
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 6:
                split[(parts[0], int(parts[1]))] = [int(x) for x in parts[2:]]
    return split


def cpu_per_request(split, key, run, clk_tck):
    """The target's own CPU (user + system) in microseconds per request in `run`, or None when not measured."""
    got = split.get((key, run["round"]))
    if not clk_tck or not got or run["reqs"] <= 0:
        return None
    return (got[0] + got[1]) * 1e6 / clk_tck / run["reqs"]


def print_cpu_target(runs, split, clk_tck, rounds):
    """apigw's own CPU per request against HAProxy's, round by round (each round runs both one after the other),
    judged on the median of those ratios (with one round, on its ratio)."""
    by_round = {r["round"]: cpu_per_request(split, "haproxy", r, clk_tck) for r in runs["haproxy"]}
    ratios = []
    for r in runs["apigw1"]:
        mine, theirs = cpu_per_request(split, "apigw1", r, clk_tck), by_round.get(r["round"])
        if mine is not None and theirs:
            ratios.append(mine / theirs)
    if not ratios:
        return
    decided = statistics.median(ratios)
    rounds_text = "   (%s; median)" % " ".join("%.2f" % x for x in ratios) if rounds > 1 else ""
    print("  %-18s %6.2fx   target %-9s %s%s" % ("CPU/req vs HAProxy", decided, "<= 1.00x",
                                               "PASS" if round(decided, 2) <= 1.0 else "FAIL", rounds_text))


# apigw against its baseline: the noise allowance. A change is called "no worse" when apigw's req/s is at least
# BASELINE_RPS_MIN times the baseline's and its own CPU per request at most BASELINE_CPU_MAX times the baseline's.
BASELINE_RPS_MIN = 0.97
BASELINE_CPU_MAX = 1.03


def print_baseline(runs, rows, rounds, split, clk_tck, baseline_path):
    """apigw (workers: 1) against the baseline binary, measured right after it in every round: req/s, p99 and own
    CPU (user + system) per request, as apigw / baseline, of the median runs and round by round, and a verdict
    on the median of the rounds' ratios (with one round, on its ratios)."""
    if "apigw1" not in rows or "baseline" not in rows:
        return
    for key in ("apigw1", "baseline"):
        for r in runs[key]:
            r["cpu_req"] = cpu_per_request(split, key, r, clk_tck)

    def ratios(field):
        """(ratio of the median runs or None, [ratio of each round both have])."""
        a, b = rows["apigw1"].get(field), rows["baseline"].get(field)
        median_runs = a / b if a is not None and b else None
        base_by_round = {r["round"]: r.get(field) for r in runs["baseline"]}
        per_round = [r[field] / base_by_round[r["round"]] for r in runs["apigw1"]
                     if r.get(field) is not None and base_by_round.get(r["round"])]
        return median_runs, per_round

    print()
    print("apigw against its baseline (%s)" % baseline_path)
    print("  apigw / baseline, of the median runs%s"
          % ("; in parentheses round by round, then their median" if rounds > 1 else ""))
    decided = {}
    for name, field in (("req/s", "rps"), ("p99", "p99"), ("own CPU per request", "cpu_req")):
        median_runs, per_round = ratios(field)
        if median_runs is None:
            print("  %-22s %6s" % (name, "-"))
            continue
        line = "  %-22s %6.2fx" % (name, median_runs)
        # The verdict is taken on the ratios as printed (two decimals).
        if rounds > 1 and per_round:
            decided[field] = round(statistics.median(per_round), 2)
            line += "   (%s; median %.2fx)" % (" ".join("%.2f" % x for x in per_round), decided[field])
        else:
            decided[field] = round(median_runs, 2)
        if field == "cpu_req":
            line += "   apigw %.1f µs, baseline %.1f µs (own user + system)" % (rows["apigw1"]["cpu_req"],
                                                                              rows["baseline"]["cpu_req"])
        print(line)
    allowance = ("req/s >= %.2fx and own CPU per request <= %.2fx, the noise allowance"
                 % (BASELINE_RPS_MIN, BASELINE_CPU_MAX))
    of = "median of the rounds" if rounds > 1 else "one round"
    if "rps" not in decided or "cpu_req" not in decided:
        print("  verdict: none (the CPU per request is missing); no worse needs %s" % allowance)
    else:
        worse = []
        if decided["rps"] < BASELINE_RPS_MIN:
            worse.append("req/s %.2fx < %.2fx" % (decided["rps"], BASELINE_RPS_MIN))
        if decided["cpu_req"] > BASELINE_CPU_MAX:
            worse.append("own CPU per request %.2fx > %.2fx" % (decided["cpu_req"], BASELINE_CPU_MAX))
        if worse:
            print("  verdict: worse beyond the noise allowance: %s (%s)" % ("; ".join(worse), of))
        else:
            print("  verdict: no worse (%s: req/s %.2fx, own CPU per request %.2fx)"
                  % (of, decided["rps"], decided["cpu_req"]))
        print("  (no worse: %s; p99 is shown, not judged)" % allowance)
    if rounds <= 1:
        print("  one round: use --rounds 3 or more before reading a change from these ratios")


def print_cpu_split(split_path, clk_tck, order, rows):
    """Where the CPU of each target's reported run went, per request: the target's user and system time, and the
    whole machine's busy time (wrk, the upstream and the target together). Then what that means for apigw: on a
    machine whose cores are all busy, req/s is inversely proportional to the machine's time per request, so even
    with no user-space work at all apigw's req/s could not rise by more than machine / (machine - its user time)."""
    split = load_split(split_path)
    tick_us = 1e6 / clk_tck
    cores = os.cpu_count() or 1
    per_req = {}  # key -> (user, system, machine) µs per request, machine busy % of all cores
    for key in order:
        r = rows[key]
        got = split.get((key, r["round"]))
        if got and r["reqs"] > 0:
            user, system, busy, total = got
            per_req[key] = (user * tick_us / r["reqs"], system * tick_us / r["reqs"], busy * tick_us / r["reqs"],
                            100.0 * busy / total if total else 0.0)
    if not per_req:
        return
    print()
    print("Where the CPU goes, in the runs above: microseconds of CPU per request")
    head = "%-30s %11s %11s %11s %14s" % ("target", "own user", "own system", "machine", "machine busy %")
    print(head)
    print("-" * len(head))
    for key in order:
        if key in per_req:
            user, system, machine, busy = per_req[key]
            print("%-30s %11.1f %11.1f %11.1f %14.0f" % (rows[key]["label"], user, system, machine, busy))
    print("  own: the target's processes; machine: all %d cores (wrk, the upstream and the target)" % cores)
    a = per_req.get("apigw1")
    if a and all(k in rows for k in ("nginx", "haproxy")):
        gain = a[2] / (a[2] - a[0])
        ceiling = rows["apigw1"]["rps"] * gain
        print("  apigw (workers: 1): its user time is %.0f%% of the machine's CPU per request, so with no user-space "
              "work at all" % (100.0 * a[0] / a[2]))
        print("  its req/s could rise by at most %.2fx on this machine: to %.0f, %.2fx NGINX and %.2fx HAProxy in "
              "this run" % (gain, ceiling, ceiling / rows["nginx"]["rps"], ceiling / rows["haproxy"]["rps"]))
        print("  (machine / (machine - apigw's user time), per request; it holds while the machine is saturated)")


def report(results_path, rss_path, header, split_path=None, clk_tck=None, baseline_path=None,
           baseline_rss_path=None):
    order, runs, rows, rounds = load_results(results_path)

    print()
    print(header)
    print()
    hdr = table_head()
    print(hdr)
    print("-" * len(hdr))
    for key in order:
        if key in ("apigw2", "apigwlog"):
            continue
        print(table_row(rows[key]))

    print_rounds(order, runs, rows, rounds)

    a, h, n = rows.get("apigw1"), rows.get("haproxy"), rows.get("nginx")
    if a and h and n:
        print()
        print("apigw (workers: 1) against the spec targets (of the median runs%s)"
              % ("; in parentheses round by round" if rounds > 1 else ""))
        checks = [
            ("req/s vs HAProxy", "haproxy", "rps", a["rps"] / h["rps"], ">= 1.00x", a["rps"] >= 1.0 * h["rps"]),
            ("req/s vs NGINX", "nginx", "rps", a["rps"] / n["rps"], ">= 1.30x", a["rps"] >= 1.3 * n["rps"]),
            ("p99 vs HAProxy", "haproxy", "p99", a["p99"] / h["p99"], "<= 1.00x", a["p99"] <= h["p99"]),
        ]
        for name, peer, field, ratio, target, ok in checks:
            print("  %-18s %6.2fx   target %-9s %s%s" % (name, ratio, target, "PASS" if ok else "FAIL",
                                                       per_round_ratios(runs, "apigw1", peer, field, rounds)))
        if split_path and clk_tck:
            print_cpu_target(runs, load_split(split_path), int(clk_tck), rounds)

    if baseline_path:
        print_baseline(runs, rows, rounds, load_split(split_path), int(clk_tck) if clk_tck else None,
                       baseline_path)

    w2 = rows.get("apigw2")
    if w2:
        print()
        print(table_head(""))
        print(table_row(w2))
        if a:
            print("  (%.2fx the req/s of workers: 1)" % (w2["rps"] / a["rps"]))

    lg = rows.get("apigwlog")
    if lg:
        print(table_row(lg))
        if a:
            cost = 1.0 - lg["rps"] / a["rps"]
            print("  access log cost: %.1f%% of the req/s of workers: 1   target <= 10%%  %s"
                  % (100.0 * cost, "PASS" if cost <= 0.10 else "FAIL"))

    if split_path and clk_tck and os.path.exists(split_path):
        print_cpu_split(split_path, int(clk_tck), [k for k in order if k not in ("apigw2", "apigwlog")], rows)

    print_wrk_errors(order, runs)

    rss = read_rss(rss_path)
    if rss is not None:
        print()
        per_conn = print_memory(rss, "apigw (workers: 1)", "apigw")
        base_rss = read_rss(baseline_rss_path)
        if base_rss is not None:
            print()
            base_per_conn = print_memory(base_rss, "apigw baseline (workers: 1)", "the baseline")
            if per_conn is not None and base_per_conn is not None:
                print()
                print("RSS per connection: apigw %.2f KiB, baseline %.2f KiB: %s (apigw / baseline)"
                      % (per_conn, base_per_conn,
                         "%.2fx" % (per_conn / base_per_conn) if base_per_conn > 0 else "ratio undefined"))
        if "access_lines" in rss:
            print()
            print("the access log run wrote %s lines" % rss["access_lines"])
    return 0


def read_rss(path):
    """The memory figures written by `hold` and proxy.sh, as {name: text}; None when there is no such file."""
    if not path or not os.path.exists(path):
        return None
    rss = {}
    for line in open(path):
        k, _, v = line.rstrip("\n").partition("\t")
        rss[k] = v
    return rss


def print_memory(rss, label, who):
    """One memory block; returns the RSS per connection in KiB, or None when it cannot be computed."""
    n_ok = int(rss.get("open_ok", "0"))
    base = int(rss.get("base_rss_kb", "-1"))
    cur = int(rss.get("rss_kb", "-1"))
    hwm = int(rss.get("hwm_kb", "-1"))
    per_conn = None
    print("%s memory with %s idle keep-alive client connections" % (label, rss.get("count", "?")))
    print("  VmRSS at start                %9.1f MiB" % (base / 1024.0))
    print("  VmRSS with %5d open         %9.1f MiB" % (n_ok, cur / 1024.0))
    print("  VmHWM with %5d open         %9.1f MiB" % (n_ok, hwm / 1024.0))
    if n_ok > 0 and base >= 0 and cur >= 0:
        per_conn = (cur - base) / n_ok
        print("  RSS per connection            %9.2f KiB   ((VmRSS open - VmRSS at start) / %d)" % (per_conn, n_ok))
    if "after_close_rss_kb" in rss:
        print("  VmRSS 2 s after closing them  %9.1f MiB" % (int(rss["after_close_rss_kb"]) / 1024.0))
    print("  connections: %s answered and held, %s failed, %s non-200 answers, %s closed by %s while idle; "
          "%s had %s fds open"
          % (rss.get("open_ok"), rss.get("open_failed"), rss.get("non200"), rss.get("closed_meanwhile"), who,
             who, rss.get("fds")))
    if rss.get("fail_reasons", "-") != "-":
        print("  failures: %s" % rss["fail_reasons"])
    return per_conn


# ---------------------------------------------------------------------------------------------------- auth-report
AUTH_TTL_S = 5  # cache.ttl in auth.sh's configs


def load_side_cpu(side_path):
    """(target key, round) -> the side server's cpu % during that measured run, from "key<TAB>round<TAB>cpu" lines."""
    cpu = {}
    for line in open(side_path):
        parts = line.rstrip("\n").split("\t")
        if len(parts) >= 3:
            cpu[(parts[0], int(parts[1]))] = parts[2]
    return cpu


def metric_delta(metrics_dir, key, rnd, name):
    before = read_metrics(os.path.join(metrics_dir, "%s-r%d-before.txt" % (key, rnd)))
    after = read_metrics(os.path.join(metrics_dir, "%s-r%d-after.txt" % (key, rnd)))
    return after.get(name, 0.0) - before.get(name, 0.0)


def print_side_table(header, order, rows, runs, rounds, side_cpu, side_name, per_request=False):
    """The header, then one line per target (its median run) with the side server's cpu % in the same run (and,
    with per_request, the target's own CPU microseconds per request), then every round's req/s."""
    print()
    print(header)
    print()
    extra = (" %11s" % "cpu us/req" if per_request else "") + " %11s" % side_name
    hdr = table_head(extra=extra)
    print(hdr)
    print("-" * len(hdr))
    for key in order:
        r = rows[key]
        cells = ""
        if per_request:
            us = cpu_us_per_request(r)
            cells = " %11s" % ("-" if us is None else "%.1f" % us)
        print(table_row(r, cells + " %11s" % side_cpu.get((key, r["round"]), "-")))
    print_rounds(order, runs, rows, rounds)


def print_ratio_checks(checks, rows, runs, rounds, width=40):
    """(name, numerator key, denominator key, target or None) -> one line each: the req/s ratio of the median runs,
    PASS/FAIL against the target, and the ratio round by round."""
    for name, num, den, target in checks:
        if num not in rows or den not in rows:
            continue
        ratio = rows[num]["rps"] / rows[den]["rps"]
        verdict = "report only" if target is None else "target >= %.2fx  %s" % (
            target, "PASS" if ratio >= target else "FAIL")
        print("  %-*s %6.2fx   %-24s%s" % (width, name, ratio, verdict,
                                           per_round_ratios(runs, num, den, "rps", rounds)))


def cpu_us_per_request(r):
    """The target's own CPU time per answered request, in microseconds, from its cpu % and req/s."""
    try:
        return float(r["cpu"]) / 100.0 * 1e6 / r["rps"] if r["rps"] else None
    except ValueError:
        return None


def auth_report(results_path, side_path, metrics_dir, header):
    order, runs, rows, rounds = load_results(results_path)
    redis_cpu = load_side_cpu(side_path)  # (key, round) -> Redis's cpu % during that measured run
    print_side_table(header, order, rows, runs, rounds, redis_cpu, "redis cpu %")

    print()
    print("ratios of req/s, same run, apigw workers: 1 in every variant (of the median runs%s)"
          % ("; in parentheses round by round" if rounds > 1 else ""))
    checks = [
        ("auth + proxy (cache) / apigw plain", "auth", "plain", 0.95),
        ("auth + proxy (cache off) / apigw plain", "nocache", "plain", 0.60),
        ("invalid token / apigw plain", "invalid", "plain", None),
        ("apigw plain / NGINX", "plain", "nginx", None),
        ("apigw plain / HAProxy", "plain", "haproxy", None),
        ("auth + proxy (cache) / NGINX", "auth", "nginx", None),
        ("auth + proxy (cache) / HAProxy", "auth", "haproxy", None),
    ]
    print_ratio_checks(checks, rows, runs, rounds)

    names = {
        "auth": 'apigw_auth_requests_total{decision="authenticated"}',
        "invalid": 'apigw_auth_requests_total{decision="invalid"}',
        "hit": 'apigw_auth_lookups_total{result="hit"}',
        "miss": 'apigw_auth_lookups_total{result="miss"}',
        "error": 'apigw_auth_lookups_total{result="error"}',
        "timeout": 'apigw_auth_lookups_total{result="timeout"}',
        "cache": "apigw_auth_local_cache_hits_total",
    }
    print()
    print("Redis lookups and local cache hits, from apigw's /metrics (sums over the measured runs)")
    mhdr = "  %-28s %10s %10s %10s %9s %9s %7s %10s %9s" % (
        "variant", "wrk reqs", "auth ok", "invalid", "Redis hit", "miss", "err/to", "cache hit", "Redis/req")
    print(mhdr)
    for key in ("plain", "auth", "nocache", "invalid"):
        if key not in runs:
            continue
        tot = dict.fromkeys(names, 0.0)
        for r in runs[key]:
            for short, name in names.items():
                tot[short] += metric_delta(metrics_dir, key, r["round"], name)
        wrk_reqs = sum(r["reqs"] for r in runs[key])
        lookups = tot["hit"] + tot["miss"] + tot["error"] + tot["timeout"]
        decided = tot["auth"] + tot["invalid"]
        print("  %-28s %10d %10d %10d %9d %9d %7d %10d %9s" % (
            runs[key][0]["label"][6:], wrk_reqs, tot["auth"], tot["invalid"], tot["hit"], tot["miss"],
            tot["error"] + tot["timeout"], tot["cache"], "%.3f" % (lookups / decided) if decided else "-"))

    # In its first warm-up the cached variant's cache holds none of the rotating tokens (the startup check uses its
    # own) and no entry expires yet: it asks Redis once per distinct token, so this counts the tokens wrk really sent.
    start = read_metrics(os.path.join(metrics_dir, "auth-start.txt"))
    first = read_metrics(os.path.join(metrics_dir, "auth-r1-before.txt"))
    warmup_s = float(os.environ.get("WARMUP", "0"))
    if start and first and 0 < warmup_s < AUTH_TTL_S:
        hits = first.get(names["hit"], 0) - start.get(names["hit"], 0)
        reqs = first.get(names["auth"], 0) - start.get(names["auth"], 0)
        print("  tokens: in its first %gs warm-up (empty cache, nothing expires yet) the cached variant answered %d "
              "requests\n  and asked Redis %d times: that many distinct tokens"
              % (warmup_s, reqs, hits))

    print_wrk_errors(order, runs, all_non2xx=("invalid",))
    return 0


# ---------------------------------------------------------------------------------------------------- ratelimit-report
def ratelimit_report(results_path, side_path, metrics_dir, header):
    order, runs, rows, rounds = load_results(results_path)
    print_side_table(header, order, rows, runs, rounds, load_side_cpu(side_path), "redis cpu %", per_request=True)

    print()
    print("ratios of req/s, same run, one worker each (of the median runs%s)"
          % ("; in parentheses round by round" if rounds > 1 else ""))
    checks = [
        ("apigw route limit / apigw plain", "route", "plain", 0.95),
        ("apigw per-key limit / apigw plain", "perkey", "plain", 0.95),
        ("NGINX limit_req / NGINX proxy", "nginx-limit", "nginx", None),
        ("HAProxy stick table / HAProxy", "haproxy-limit", "haproxy", None),
        ("apigw plain / NGINX proxy", "plain", "nginx", None),
        ("apigw per-key limit / NGINX limit_req", "perkey", "nginx-limit", None),
        ("apigw per-key limit / HAProxy stick table", "perkey", "haproxy-limit", None),
    ]
    print_ratio_checks(checks, rows, runs, rounds, width=44)

    print()
    print("CPU per request, limited over unlimited (own user + system time / requests, of the median runs)")
    for name, num, den in (("apigw route limit / apigw plain", "route", "plain"),
                           ("apigw per-key limit / apigw plain", "perkey", "plain"),
                           ("NGINX limit_req / NGINX proxy", "nginx-limit", "nginx"),
                           ("HAProxy stick table / HAProxy", "haproxy-limit", "haproxy")):
        if num in rows and den in rows:
            a, b = cpu_us_per_request(rows[num]), cpu_us_per_request(rows[den])
            if a and b:
                print("  %-44s %6.1f us / %6.1f us = %.2fx" % (name, a, b, a / b))

    print()
    print("Redis commands and decisions over the measured runs (Redis's INFO commandstats, apigw's /metrics)")
    print("  %-28s %10s %12s %10s %10s %10s %14s" % ("variant", "wrk reqs", "script calls", "allowed", "limited",
                                                    "errors", "per 1,000 reqs"))
    result = 'apigw_rate_limit_requests_total{route="bench",key="%s",result="%s"}'
    for key, label in (("plain", "route"), ("route", "route"), ("perkey", "header:authorization")):
        if key not in runs:
            continue
        reqs = sum(r["reqs"] for r in runs[key])
        calls = sum(metric_delta(metrics_dir, key, r["round"], "redis_script_calls") for r in runs[key])
        got = {res: sum(metric_delta(metrics_dir, key, r["round"], result % (label, res)) for r in runs[key])
               for res in ("allowed", "limited", "error_allowed", "error_denied")}
        print("  %-28s %10d %12d %10d %10d %10d %14.2f" % (
            runs[key][0]["label"][6:], reqs, calls, got["allowed"], got["limited"],
            got["error_allowed"] + got["error_denied"], 1000.0 * calls / reqs if reqs else 0.0))

    print_wrk_errors(order, runs)
    return 0


def tracing_report(results_path, side_path, metrics_dir, header):
    order, runs, rows, rounds = load_results(results_path)
    print_side_table(header, order, rows, runs, rounds, load_side_cpu(side_path), "collector cpu %", per_request=True)

    print()
    print("ratios of req/s, same run, one worker each (of the median runs%s)"
          % ("; in parentheses round by round" if rounds > 1 else ""))
    checks = [
        ("apigw tracing 1% / apigw plain", "one", "plain", 0.95),
        ("apigw propagate only / apigw plain", "propagate", "plain", None),
        ("apigw tracing 100% / apigw plain", "all", "plain", None),
        ("apigw plain / NGINX proxy", "plain", "nginx", None),
        ("apigw plain / HAProxy", "plain", "haproxy", None),
        ("apigw tracing 1% / NGINX proxy", "one", "nginx", None),
        ("apigw tracing 1% / HAProxy", "one", "haproxy", None),
    ]
    print_ratio_checks(checks, rows, runs, rounds, width=40)

    print()
    print("CPU per request against apigw plain (own user + system time / requests, of the median runs)")
    for key in ("propagate", "one", "all", "nginx", "haproxy"):
        if key in rows and "plain" in rows:
            a, b = cpu_us_per_request(rows[key]), cpu_us_per_request(rows["plain"])
            if a and b:
                print("  %-40s %6.1f us / %6.1f us = %.2fx" % (rows[key]["label"] + " / apigw plain", a, b, a / b))

    print()
    print("spans over the measured runs (apigw's apigw_tracing_spans_total)")
    print("  %-28s %10s %10s %10s %10s %16s" % ("variant", "wrk reqs", "exported", "dropped", "failed",
                                                "spans per request"))
    series = 'apigw_tracing_spans_total{result="%s"}'
    for key in ("propagate", "one", "all"):
        if key not in runs:
            continue
        reqs = sum(r["reqs"] for r in runs[key])
        got = {res: sum(metric_delta(metrics_dir, key, r["round"], series % res) for r in runs[key])
               for res in ("exported", "dropped", "failed")}
        spans = got["exported"] + got["dropped"] + got["failed"]
        print("  %-28s %10d %10d %10d %10d %16.4f" % (runs[key][0]["label"][6:], reqs, got["exported"],
                                                     got["dropped"], got["failed"], spans / reqs if reqs else 0.0))

    print_wrk_errors(order, runs)
    return 0


# ---------------------------------------------------------------------------------------------------- cache-report
CACHE_TARGETS = (  # (name, numerator key, denominator key, target or None for report only)
    ("apigw cache hit / NGINX memcached_pass", "cache", "nginx", 1.00),
    ("apigw auth + cache hit / NGINX memcached_pass", "authcache", "nginx", 0.90),
    ("apigw tagged cache hit / apigw cache hit", "tagged", "cache", 0.90),
    ("apigw tagged cache hit / NGINX memcached_pass", "tagged", "nginx", None),
    ("NGINX memcached_pass / NGINX return (no Memcached)", "nginx", "upstream", None),
    ("apigw cache hit / apigw proxy (no cache)", "cache", "proxy", None),
    ("apigw auth + cache hit / apigw cache hit", "authcache", "cache", None),
)
CACHE_VARIANTS = ("cache", "authcache", "tagged")  # apigw targets whose every answer should be a cache hit
HIT_SHARE_MIN = 0.99


def cache_report(results_path, side_path, metrics_dir, probes_path, header):
    order, runs, rows, rounds = load_results(results_path)
    mc_cpu = load_side_cpu(side_path)  # (key, round) -> Memcached's cpu % during that measured run

    def mc_gets(key, rnd):
        return metric_delta(metrics_dir, "mc-" + key, rnd, "cmd_get")

    print()
    print(header)
    print()
    hdr = table_head(extra=" %9s %11s" % ("mc cpu %", "mc gets/req"))
    print(hdr)
    print("-" * len(hdr))
    for key in order:
        r = rows[key]
        gets = mc_gets(key, r["round"])
        print(table_row(r, " %9s %11s" % (mc_cpu.get((key, r["round"]), "-"),
                                           "%.3f" % (gets / r["reqs"]) if r["reqs"] else "-")))
    print_rounds(order, runs, rows, rounds)

    # apigw's own counters, summed over the measured runs of each apigw target
    names = {
        "hit": 'apigw_cache_requests_total{result="hit"}',
        "miss": 'apigw_cache_requests_total{result="miss"}',
        "bypass": 'apigw_cache_requests_total{result="bypass"}',
        "coalesced": "apigw_cache_coalesced_total",
        "trips": 'apigw_memcached_duration_seconds_count{pool="primary"}',
        "stores": 'apigw_cache_stores_total{result="ok"}',
    }
    redis_names = ['apigw_auth_lookups_total{result="%s"}' % x for x in ("hit", "miss", "error", "timeout")]
    totals = {}
    for key in order:
        if not os.path.exists(os.path.join(metrics_dir, "%s-r%d-before.txt" % (key, runs[key][0]["round"]))):
            continue
        t = dict.fromkeys(names, 0.0)
        t["redis"] = 0.0
        t["mc_gets"] = 0.0
        for r in runs[key]:
            for short, name in names.items():
                t[short] += metric_delta(metrics_dir, key, r["round"], name)
            t["redis"] += sum(metric_delta(metrics_dir, key, r["round"], n) for n in redis_names)
        totals[key] = t

    invalid = {}
    for key in CACHE_VARIANTS:
        t = totals.get(key)
        if t is None:
            continue
        answered = t["hit"] + t["miss"] + t["bypass"]
        share = t["hit"] / answered if answered else 0.0
        if share < HIT_SHARE_MIN:
            invalid[key] = share

    print()
    print("ratios of req/s, same run, every server with one worker (of the median runs%s)"
          % ("; in parentheses round by round" if rounds > 1 else ""))
    for name, num, den, target in CACHE_TARGETS:
        if num not in rows or den not in rows:
            continue
        ratio = rows[num]["rps"] / rows[den]["rps"]
        if target is None:
            verdict = "report only"
        else:
            verdict = "target >= %.2fx  %s" % (target, "PASS" if ratio >= target else "MISS")
        print(("  %-50s %6.2fx   %-24s%s" % (name, ratio, verdict, per_round_ratios(runs, num, den, "rps", rounds)))
              .rstrip())
    for key, share in invalid.items():
        print("  WARNING: only %.1f%% of %s's answers in the measured runs were cache hits: its figure is not a "
              "cache-hit figure" % (100.0 * share, rows[key]["label"]))

    print()
    print("apigw's counters (from /metrics) and Memcached's cmd_get, sums over the measured runs")
    print("  %-32s %10s %11s %9s %7s %10s %14s %10s %8s" % (
        "target", "wrk reqs", "X-Cache HIT", "MISS", "BYPASS", "coalesced", "mc round trips", "mc gets", "Redis"))
    for key in order:
        wrk_reqs = sum(r["reqs"] for r in runs[key])
        gets = sum(mc_gets(key, r["round"]) for r in runs[key])
        t = totals.get(key)
        if t is None:
            print("  %-32s %10d %11s %9s %7s %10s %14s %10d %8s" % (
                rows[key]["label"], wrk_reqs, "-", "-", "-", "-", "-", gets, "-"))
        else:
            print("  %-32s %10d %11d %9d %7d %10d %14d %10d %8d" % (
                rows[key]["label"], wrk_reqs, t["hit"], t["miss"], t["bypass"], t["coalesced"], t["trips"], gets,
                t["redis"]))
    print("  (mc gets: Memcached's own cmd_get count over each measured run, whoever sent them; coalesced: hits "
          "that shared another\n  request's Memcached lookup; Redis: apigw's auth lookups in Redis)")

    if probes_path and os.path.exists(probes_path):
        print()
        print("one GET /bench to each target at startup: status, response head and body sizes, X-Cache")
        for line in open(probes_path):
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 5:
                label, status, head, body, xcache = parts[:5]
                print("  %-32s %s  head %4s bytes  body %5s bytes  X-Cache: %s" % (label, status, head, body, xcache))

    print_wrk_errors(order, runs)
    return 0


# ---------------------------------------------------------------------------------------------------- shadow-report
# (name, numerator key, denominator key, field, target or None for report only, True when the target is a maximum).
# The p99 target is checked at the same offered load (the paced runs): in a run as fast as the server answers, wrk's
# 64 requests in flight make the latency about 64 / req/s, so there the p99 ratio restates the req/s ratio (a target
# at 0.6x the req/s has about 1.7x the latency), and it is reported only.
SHADOW_RATIOS = (
    ("apigw shadow / apigw plain, req/s", "shadow", "plain", "rps", 0.60, False),
    ("apigw shadow / apigw plain, p99", "shadow", "plain", "p99", None, True),
    ("NGINX mirror / NGINX plain, req/s", "mirror", "nginx", "rps", None, False),
    ("NGINX mirror / NGINX plain, p99", "mirror", "nginx", "p99", None, True),
    ("apigw shadow / NGINX mirror, req/s", "shadow", "mirror", "rps", None, False),
    ("apigw plain / NGINX plain, req/s", "plain", "nginx", "rps", None, False),
    ("apigw plain / HAProxy plain, req/s", "plain", "haproxy", "rps", None, False),
)
# The same for each pace: paced run keys are KEY-paced-MS.
PACED_RATIOS = (
    ("apigw shadow / apigw plain, p99", "shadow", "plain", "p99", 1.20, True),
    ("apigw shadow / apigw plain, p50", "shadow", "plain", "p50", None, True),
    ("apigw shadow / apigw plain, req/s", "shadow", "plain", "rps", None, False),
    ("NGINX mirror / NGINX plain, p99", "mirror", "nginx", "p99", None, True),
    ("NGINX mirror / NGINX plain, req/s", "mirror", "nginx", "rps", None, False),
)


def pace_of(key):
    """The pace in ms of a paced run's key (KEY-paced-MS), None for a run as fast as the server answers."""
    return int(key.rsplit("-", 1)[1]) if "-paced-" in key else None


def shadowing(key):
    """Whether the target copies every request (apigw shadow, NGINX mirror), paced or not."""
    return key.split("-", 1)[0] in ("shadow", "mirror")
SHADOW_SHARE_MIN = 0.99  # below this share of the primary side's requests, the copy is called incomplete
PACED_KEEP_UP = 0.95  # a paced shadowing run below this share of its plain run's req/s was not at the same load


def metric_family_delta(metrics_dir, key, rnd, family):
    """{labels: after - before} for every sample of one metric family ("" for a sample without labels)."""
    before = read_metrics(os.path.join(metrics_dir, "%s-r%d-before.txt" % (key, rnd)))
    after = read_metrics(os.path.join(metrics_dir, "%s-r%d-after.txt" % (key, rnd)))
    out = {}
    for name, value in after.items():
        base, brace, labels = name.partition("{")
        if base == family:
            out[brace + labels] = out.get(brace + labels, 0.0) + value - before.get(name, 0.0)
    return out


def stub_delta(metrics_dir, key, rnd, name):
    """Connections or requests an NGINX counted between two stub-status reads, the second read's own left out."""
    return metric_delta(metrics_dir, key, rnd, name) - 1


def label_value(labels, name):
    m = re.search(r'%s="([^"]*)"' % name, labels)
    return m.group(1) if m else "?"


def print_apigw_exchanges(keys, runs, rows, metrics_dir):
    """apigw's exchanges with each upstream over the measured runs: how many, their mean duration (request sent to
    answer read), and the most connections its pool held open after a run."""
    print()
    print("apigw's upstream exchanges (apigw_upstream_request_duration_seconds, apigw_upstream_connections; "
          "over the measured runs)")
    print("  %-32s %-10s %12s %10s %18s" % ("target", "upstream", "exchanges", "mean ms", "connections open"))
    for key in keys:
        for upstream in ("backend", "shadow"):
            label = '{upstream="%s"}' % upstream
            count = total = 0.0
            conns = 0.0
            for r in runs[key]:
                count += metric_delta(metrics_dir, key, r["round"], "apigw_upstream_request_duration_seconds_count"
                                      + label)
                total += metric_delta(metrics_dir, key, r["round"], "apigw_upstream_request_duration_seconds_sum"
                                      + label)
                after = read_metrics(os.path.join(metrics_dir, "%s-r%d-after.txt" % (key, r["round"])))
                conns = max(conns, after.get("apigw_upstream_connections" + label, 0.0))
            if count:
                print("  %-32s %-10s %12d %10.2f %18d" % (rows[key]["label"], upstream, count, 1000.0 * total / count,
                                                          conns))
    print("  (backend: the primary side; shadow: the shadow side, apigw's copies; connections open: the most after "
          "any run,\n  of max_connections 256)")


def shadow_report(results_path, side_path, metrics_dir, header):
    order, runs, rows, rounds = load_results(results_path)
    side = {}  # (key, round) -> (primary upstream cpu %, shadow upstream cpu %)
    for line in open(side_path):
        parts = line.rstrip("\n").split("\t")
        if len(parts) >= 4:
            side[(parts[0], int(parts[1]))] = (parts[2], parts[3])

    # A paced run's req/s is the offered load, the same for every run: each paced target is represented by its run
    # with the median p99 instead (the lower middle one for an even count).
    paced = [k for k in order if pace_of(k) is not None]
    for key in paced:
        rows[key] = sorted(runs[key], key=lambda r: r["p99"])[(len(runs[key]) - 1) // 2]
    paces = sorted({pace_of(k) for k in paced}, reverse=True)

    print("\n%s" % header)
    tables = [("", [k for k in order if k not in paced])]
    tables += [("paced runs, %d ms: the same offered load for every target (see the header)" % p,
                [k for k in paced if pace_of(k) == p]) for p in paces]
    for title, keys in tables:
        if not keys:
            continue
        print("\n%s" % title if title else "")
        hdr = table_head(extra=" %9s %12s" % ("up cpu %", "shadow up %"))
        print("%s\n%s" % (hdr, "-" * len(hdr)))
        for key in keys:
            print(table_row(rows[key], " %9s %12s" % side.get((key, rows[key]["round"]), ("-", "-"))))
    print_rounds(order, runs, rows, rounds)
    if rounds > 1 and paced:
        print("the paced lines are each the run with the median p99 instead; p99 ms of every round:")
        for key in paced:
            print("  %-28s %s" % (rows[key]["label"], "  ".join(fmt_ms(r["p99"]) for r in runs[key])))

    print()
    print("ratios, same run, every server with one worker (of the median runs%s)"
          % ("; in parentheses round by round" if rounds > 1 else ""))
    ratios = list(SHADOW_RATIOS)
    for p in paces:
        ratios += [("paced %d ms: %s" % (p, name), "%s-paced-%d" % (num, p), "%s-paced-%d" % (den, p), field, target,
                    at_most) for name, num, den, field, target, at_most in PACED_RATIOS]
    for name, num, den, field, target, at_most in ratios:
        if num not in rows or den not in rows or not rows[den][field]:
            continue
        ratio = rows[num][field] / rows[den][field]
        if target is None:
            verdict = "report only"
        else:
            ok = ratio <= target if at_most else ratio >= target
            verdict = "target %s %.2fx  %s" % ("<=" if at_most else ">=", target, "PASS" if ok else "FAIL")
        print(("  %-50s %6.2fx   %-24s%s" % (name, ratio, verdict, per_round_ratios(runs, num, den, field, rounds)))
              .rstrip())
    for num, den in [("shadow-paced-%d" % p, "plain-paced-%d" % p) for p in paces] + \
            [("mirror-paced-%d" % p, "nginx-paced-%d" % p) for p in paces]:
        if num in rows and den in rows and rows[num]["rps"] < PACED_KEEP_UP * rows[den]["rps"]:
            print("  note: %s answered %.2fx the req/s of %s: it did not keep up with the offered load, so its "
                  "latency\n  is not measured at the same load"
                  % (rows[num]["label"], rows[num]["rps"] / rows[den]["rps"], rows[den]["label"]))

    print()
    print("requests each upstream NGINX received during the measured runs (its stub_status; sums over the runs)")
    print("  %-32s %10s %12s %12s %14s %12s" % (
        "target", "wrk reqs", "primary side", "shadow side", "shadow/primary", "shadow conns"))
    shares = {}
    for key in order:
        wrk_reqs = sum(r["reqs"] for r in runs[key])
        prim = sum(stub_delta(metrics_dir, "up-" + key, r["round"], "requests") for r in runs[key])
        shad = sum(stub_delta(metrics_dir, "sh-" + key, r["round"], "requests") for r in runs[key])
        conns = sum(stub_delta(metrics_dir, "sh-" + key, r["round"], "accepts") for r in runs[key])
        share = shad / prim if prim > 0 else 0.0
        if shadowing(key):
            shares[key] = share
        print("  %-32s %10d %12d %12d %13.1f%% %12d" % (
            rows[key]["label"], wrk_reqs, prim, shad, 100.0 * share, conns))
    print("  (shadow conns: connections the shadow-side NGINX accepted during the runs)")

    apigw_keys = [k for k in order if os.path.exists(os.path.join(metrics_dir, "%s-r%d-before.txt"
                                                                  % (k, runs[k][0]["round"])))]
    if apigw_keys:
        print()
        print("apigw's shadow counters (its /metrics; sums over the measured runs)")
        print("  %-32s %12s %12s %12s %8s %8s %10s" % (
            "target", "primary reqs", "copies sent", "answered 2xx", "other", "errors", "dropped"))
        details = []
        for key in apigw_keys:
            t = {"primary": 0.0, "sent": 0.0, "2xx": 0.0, "other": 0.0}
            errors, dropped = {}, {}
            in_flight = 0.0
            for r in runs[key]:
                rnd = r["round"]
                t["primary"] += sum(metric_family_delta(metrics_dir, key, rnd, "apigw_requests_total").values())
                t["sent"] += sum(metric_family_delta(
                    metrics_dir, key, rnd, "apigw_migration_shadow_requests_total").values())
                for labels, v in metric_family_delta(
                        metrics_dir, key, rnd, "apigw_migration_shadow_responses_total").items():
                    t["2xx" if label_value(labels, "status") == "2xx" else "other"] += v
                for family, into in (("apigw_migration_shadow_errors_total", errors),
                                     ("apigw_migration_shadow_dropped_total", dropped)):
                    for labels, v in metric_family_delta(metrics_dir, key, rnd, family).items():
                        reason = label_value(labels, "reason")
                        into[reason] = into.get(reason, 0.0) + v
                after = read_metrics(os.path.join(metrics_dir, "%s-r%d-after.txt" % (key, rnd)))
                in_flight = max(in_flight, after.get("apigw_migration_shadows_in_flight", 0.0))
            print("  %-32s %12d %12d %12d %8d %8d %10d" % (
                rows[key]["label"], t["primary"], t["sent"], t["2xx"], t["other"], sum(errors.values()),
                sum(dropped.values())))
            for what, by_reason in (("errors", errors), ("dropped", dropped)):
                nonzero = ["%s %d" % (k, v) for k, v in sorted(by_reason.items()) if v]
                if nonzero:
                    details.append("  %s %s by reason: %s" % (rows[key]["label"], what, ", ".join(nonzero)))
            if in_flight:
                details.append("  %s: %d shadow copies still in flight when the counters were read after a run"
                               % (rows[key]["label"], in_flight))
        for line in details:
            print(line)
        print("  (primary reqs: apigw_requests_total; copies sent: apigw_migration_shadow_requests_total; answered: "
              "..._shadow_responses_total\n  by status class; errors: ..._shadow_errors_total, copies that got no "
              "answer; dropped: ..._shadow_dropped_total, requests not copied)")
        print_apigw_exchanges(apigw_keys, runs, rows, metrics_dir)

    print()
    for key, share in shares.items():
        verdict = "complete" if share >= SHADOW_SHARE_MIN else "INCOMPLETE (below %.0f%%)" % (100 * SHADOW_SHARE_MIN)
        print("%s: the shadow side received %.1f%% of the requests the primary side received: %s"
              % (rows[key]["label"], 100.0 * share, verdict))
    print("HAProxy has no built-in request mirroring (only through an external SPOE agent, a separate program): it "
          "is measured\nas a plain proxy only.")

    print_wrk_errors(order, runs)
    return 0


# ---------------------------------------------------------------------------------------------------- main
def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd = argv[1]
    if cmd == "free-ports":
        free_ports(int(argv[2]))
        return 0
    if cmd == "check-get":
        return check_get_main(argv[2:])
    if cmd == "probe":
        return probe_main(argv[2:])
    if cmd == "mc":
        return mc_main(argv[2:])
    if cmd == "metrics":
        return metrics(int(argv[2]), argv[3])
    if cmd == "parse-wrk":
        return parse_wrk(argv[2])
    if cmd == "hold":
        import argparse
        p = argparse.ArgumentParser(prog="bench_helper.py hold")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--pid", type=int, required=True)
        p.add_argument("--count", type=int, default=10000)
        p.add_argument("--window", type=int, default=128)
        p.add_argument("--hold", type=float, default=2.0)
        p.add_argument("--timeout", type=float, default=120.0)
        p.add_argument("--out", required=True)
        a = p.parse_args(argv[2:])
        return hold(a.port, a.pid, a.count, a.window, a.hold, a.out, a.timeout)
    if cmd == "report":
        return report(argv[2], argv[3], argv[4], *argv[5:9])
    if cmd == "auth-report":
        return auth_report(argv[2], argv[3], argv[4], argv[5])
    if cmd == "ratelimit-report":
        return ratelimit_report(argv[2], argv[3], argv[4], argv[5])
    if cmd == "tracing-report":
        return tracing_report(argv[2], argv[3], argv[4], argv[5])
    if cmd == "cache-report":
        return cache_report(argv[2], argv[3], argv[4], argv[5], argv[6])
    if cmd == "stub-status":
        return stub_status(int(argv[2]), argv[3], argv[4] if len(argv) > 4 else None)
    if cmd == "shadow-report":
        return shadow_report(argv[2], argv[3], argv[4], argv[5])
    print("unknown subcommand %r" % cmd, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
