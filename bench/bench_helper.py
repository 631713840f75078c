#!/usr/bin/python3
"""Helpers for bench/proxy.sh (Python standard library only).

Subcommands:
  free-ports N                 print N distinct free TCP ports on 127.0.0.1, one per line
  check-get PORT PATH LEN      one GET; exit 0 if the answer is 200 with a LEN-byte body, else print why and exit 1
  parse-wrk FILE               print one tab-separated line parsed from a wrk --latency output:
                               rps  p50_us  p99_us  requests  non2xx  sockerr_total  sockerr_text
  hold --port P --pid PID --count N --window W --hold S --out FILE
                               open N keep-alive connections to P, send one GET on each and read its response,
                               keep them all open and idle, read /proc/PID/status, write the figures to FILE
  report RESULTS_TSV RSS_FILE HEADER
                               print the final table
"""

import errno
import os
import re
import selectors
import socket
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


def check_get(port, path, want_len):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: apigw-bench\r\n\r\n"
                       % (path, port)).encode())
            status, headers, body = read_response(s, time.monotonic() + 5)
    except Exception as e:  # noqa: BLE001 - any failure is reported the same way
        print("GET http://127.0.0.1:%d%s failed: %s" % (port, path, e))
        return 1
    if status != 200 or len(body) != want_len:
        print("GET http://127.0.0.1:%d%s: status %d, body %d bytes (want 200, %d bytes): %r"
              % (port, path, status, len(body), want_len, body[:200]))
        return 1
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


def report(results_path, rss_path, header):
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

    print()
    print(header)
    print()
    hdr = "%-30s %11s %9s %9s %8s %10s %8s" % ("target", "req/s", "p50 ms", "p99 ms", "non-2xx", "sock err",
                                               "cpu %")
    print(hdr)
    print("-" * len(hdr))
    for key in order:
        if key in ("apigw2", "apigwlog"):
            continue
        r = rows[key]
        print("%-30s %11.0f %9s %9s %8d %10d %8s" % (r["label"], r["rps"], fmt_ms(r["p50"]), fmt_ms(r["p99"]),
                                                  r["non2xx"], r["sockerr"], r["cpu"]))

    if rounds > 1:
        print()
        print("%d rounds; each line is the run with the median req/s. req/s of every round:" % rounds)
        for key in order:
            print("  %-28s %s" % (rows[key]["label"], "  ".join("%.0f" % r["rps"] for r in runs[key])))

    a, h, n = rows.get("apigw1"), rows.get("haproxy"), rows.get("nginx")
    if a and h and n:
        print()
        print("apigw (workers: 1) against the spec targets")
        checks = [
            ("req/s vs HAProxy", a["rps"] / h["rps"], ">= 1.00x", a["rps"] >= 1.0 * h["rps"]),
            ("req/s vs NGINX", a["rps"] / n["rps"], ">= 1.30x", a["rps"] >= 1.3 * n["rps"]),
            ("p99 vs HAProxy", a["p99"] / h["p99"], "<= 1.00x", a["p99"] <= h["p99"]),
        ]
        for name, ratio, target, ok in checks:
            print("  %-18s %6.2fx   target %-9s %s" % (name, ratio, target, "PASS" if ok else "FAIL"))

    w2 = rows.get("apigw2")
    if w2:
        print()
        print("%-30s %11s %9s %9s %8s %10s %8s" % ("", "req/s", "p50 ms", "p99 ms", "non-2xx", "sock err", "cpu %"))
        print("%-30s %11.0f %9s %9s %8d %10d %8s" % (w2["label"], w2["rps"], fmt_ms(w2["p50"]), fmt_ms(w2["p99"]),
                                                  w2["non2xx"], w2["sockerr"], w2["cpu"]))
        if a:
            print("  (%.2fx the req/s of workers: 1)" % (w2["rps"] / a["rps"]))

    lg = rows.get("apigwlog")
    if lg:
        print("%-30s %11.0f %9s %9s %8d %10d %8s" % (lg["label"], lg["rps"], fmt_ms(lg["p50"]), fmt_ms(lg["p99"]),
                                                  lg["non2xx"], lg["sockerr"], lg["cpu"]))
        if a:
            cost = 1.0 - lg["rps"] / a["rps"]
            print("  access log cost: %.1f%% of the req/s of workers: 1   target <= 10%%  %s"
                  % (100.0 * cost, "PASS" if cost <= 0.10 else "FAIL"))

    bad = [r for k in order for r in runs[k] if r["non2xx"] or r["sockerr"]]
    print()
    if bad:
        print("wrk reported errors (measured runs):")
        for r in bad:
            print("  %-28s round %d: Non-2xx or 3xx responses: %d; %s"
                  % (r["label"], r["round"], r["non2xx"], r["socktext"]))
    else:
        print("wrk reported no non-2xx responses and no socket errors in any measured run.")

    if rss_path and os.path.exists(rss_path):
        rss = {}
        for line in open(rss_path):
            k, _, v = line.rstrip("\n").partition("\t")
            rss[k] = v
        n_ok = int(rss.get("open_ok", "0"))
        base = int(rss.get("base_rss_kb", "-1"))
        cur = int(rss.get("rss_kb", "-1"))
        hwm = int(rss.get("hwm_kb", "-1"))
        print()
        print("apigw (workers: 1) memory with %s idle keep-alive client connections" % rss.get("count", "?"))
        print("  VmRSS at start                %9.1f MiB" % (base / 1024.0))
        print("  VmRSS with %5d open         %9.1f MiB" % (n_ok, cur / 1024.0))
        print("  VmHWM with %5d open         %9.1f MiB" % (n_ok, hwm / 1024.0))
        if n_ok > 0 and base >= 0 and cur >= 0:
            print("  RSS per connection            %9.2f KiB   ((VmRSS open - VmRSS at start) / %d)"
                  % ((cur - base) / n_ok, n_ok))
        if "after_close_rss_kb" in rss:
            print("  VmRSS 2 s after closing them  %9.1f MiB" % (int(rss["after_close_rss_kb"]) / 1024.0))
        print("  connections: %s answered and held, %s failed, %s non-200 answers, %s closed by apigw while idle; "
              "apigw had %s fds open"
              % (rss.get("open_ok"), rss.get("open_failed"), rss.get("non200"), rss.get("closed_meanwhile"),
                 rss.get("fds")))
        if rss.get("fail_reasons", "-") != "-":
            print("  failures: %s" % rss["fail_reasons"])
        if "access_lines" in rss:
            print()
            print("the access log run wrote %s lines" % rss["access_lines"])
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
        return check_get(int(argv[2]), argv[3], int(argv[4]))
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
        return report(argv[2], argv[3], argv[4])
    print("unknown subcommand %r" % cmd, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
