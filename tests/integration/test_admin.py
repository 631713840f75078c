"""The admin listener: /healthz, /readyz, /metrics (Prometheus text, counters summed over workers), /config (the
effective config), /routes (match order), /upstreams (endpoint state); GET and HEAD only, JSON 404 otherwise;
`admin.listen: off` opens no admin port."""

import copy
import os
import re
import signal
import socket
import threading

import pytest

from apigw_harness import free_port, gateway_config, route, wait_until, write_config
from rawhttp import Client, build_request, read_all_until_close, request
from recording_upstream import Fixed, Garbage, Hang, Reset

ADMIN_JSON_PATHS = ["/healthz", "/readyz", "/config", "/routes", "/upstreams"]


# --- helpers -----------------------------------------------------------------------------------------------

def admin(gw, path, method="GET"):
    return request(gw.admin_port, method, path, timeout=5)


def admin_json(gw, path):
    r = admin(gw, path)
    assert r.status == 200, r
    ctype = (r.header("Content-Type") or "").split(";")[0].strip().lower()
    assert ctype == "application/json", r
    return r.json()


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """{(name, frozenset(labels)): value} for every sample line; raises on a line that is not Prometheus text."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        labels = frozenset(_LABEL.findall(m.group(2) or ""))
        key = (m.group(1), labels)
        assert key not in out, f"duplicate series {line!r}"
        out[key] = float(m.group(3))
    return out


class Metrics:
    def __init__(self, gw):
        r = admin(gw, "/metrics")
        assert r.status == 200, r
        self.text = r.body.decode()
        self.samples = parse_metrics(self.text)

    def get(self, name, **labels):
        """The value of one series; KeyError (with the known series of that name) when it is absent."""
        key = (name, frozenset(labels.items()))
        if key not in self.samples:
            known = [dict(lb) for (n, lb) in self.samples if n == name]
            raise KeyError(f"{name}{labels} not in /metrics; series of that name: {known}")
        return self.samples[key]

    def series(self, name):
        return {lb: v for (n, lb), v in self.samples.items() if n == name}


def metric(gw, name, **labels):
    return Metrics(gw).get(name, **labels)


def send_hup(gw, cfg):
    write_config(gw.config_path, cfg)
    os.kill(gw.pid, signal.SIGHUP)


def listening_ports(pid):
    """TCP ports on which the process holds a listening socket (from /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A = LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def simple(gateway, upstream, **server):
    up = upstream("a", default=Fixed(200, b"ok"))
    return gateway(gateway_config([route("r", "/api/*rest", "a")], {"a": up}, server=server or None)), up


# --- liveness, readiness, errors, methods ----------------------------------------------------------------

def test_healthz_and_readyz(gateway, upstream):
    """/healthz answers 200 {"status":"alive"}; /readyz answers 200 {"status":"ready","generation":1}."""
    gw, _ = simple(gateway, upstream)
    assert admin_json(gw, "/healthz") == {"status": "alive"}
    assert admin_json(gw, "/readyz") == {"status": "ready", "generation": 1}
    assert metric(gw, "apigw_ready") == 1
    assert metric(gw, "apigw_config_generation") == 1


@pytest.mark.parametrize("path", ["/", "/nope", "/metricsx", "/healthz/extra"])
def test_unknown_admin_path_is_404_json(gateway, upstream, path):
    """An unknown admin path answers 404 with a JSON body holding "error"."""
    gw, _ = simple(gateway, upstream)
    r = admin(gw, path)
    assert r.status == 404, r
    assert (r.header("Content-Type") or "").split(";")[0].strip().lower() == "application/json", r
    doc = r.json()
    assert isinstance(doc.get("error"), str) and doc["error"], doc


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_405_with_allow(gateway, upstream, method):
    """Every admin endpoint answers a method other than GET/HEAD with 405 and `Allow: GET, HEAD`."""
    gw, _ = simple(gateway, upstream)
    for path in ADMIN_JSON_PATHS + ["/metrics"]:
        body = b"{}" if method in ("POST", "PUT", "PATCH") else None
        with Client(gw.admin_port, timeout=5) as c:
            r = c.request(method, path, body=body)
        assert r.status == 405, f"{method} {path}: {r!r}"
        assert r.header("Allow") == "GET, HEAD", f"{method} {path}: {r!r}"


@pytest.mark.parametrize("path", ADMIN_JSON_PATHS + ["/metrics"])
def test_head_has_headers_but_no_body(gateway, upstream, path):
    """HEAD answers 200 with the GET's Content-Type and Content-Length and not one body byte."""
    gw, _ = simple(gateway, upstream)
    get = admin(gw, path)
    with socket.create_connection(("127.0.0.1", gw.admin_port), timeout=5) as s:
        s.sendall(build_request("HEAD", path, [("Connection", "close")]))
        data, closed = read_all_until_close(s, 5)
    assert closed, f"HEAD {path}: connection not closed after Connection: close; got {data!r}"
    head, sep, rest = data.partition(b"\r\n\r\n")
    assert sep and head.startswith(b"HTTP/1.1 200"), data
    assert rest == b"", f"HEAD {path} sent body bytes: {rest[:200]!r}"
    headers = {ln.split(b":", 1)[0].strip().lower(): ln.split(b":", 1)[1].strip()
               for ln in head.split(b"\r\n")[1:]}
    assert headers.get(b"content-type", b"").decode() == get.header("Content-Type"), (head, get)
    if path in ("/healthz", "/readyz"):  # bodies whose length does not change between the two requests
        assert headers.get(b"content-length", b"").decode() == get.header("Content-Length"), (head, get)


# --- metrics ------------------------------------------------------------------------------------------------

FAMILIES = {
    "apigw_requests_total": "counter", "apigw_request_duration_seconds": "histogram",
    "apigw_upstream_request_duration_seconds": "histogram", "apigw_upstream_errors_total": "counter",
    "apigw_upstream_connections": "gauge", "apigw_upstream_pool_waits_total": "counter",
    "apigw_client_connections": "gauge", "apigw_config_generation": "gauge",
    "apigw_config_reloads_total": "counter", "apigw_config_last_reload_successful": "gauge",
    "apigw_ready": "gauge", "apigw_upstream_endpoint_healthy": "gauge", "apigw_upstream_ejections_total": "counter",
    "apigw_health_checks_total": "counter", "apigw_health_check_failures_total": "counter",
    "apigw_access_log_dropped_lines_total": "counter",
}


def test_metrics_exposes_every_documented_family(gateway, upstream):
    """/metrics is text/plain version 0.0.4 with a # TYPE of the right kind for every documented family, and
    the per-endpoint and per-kind series exist before any failure."""
    up = upstream("a", default=Fixed(200, b"ok"))
    up.on("/healthz", Fixed(200, b"fine"))
    gw = gateway(gateway_config([route("r", "/api/*rest", "a")],
                                {"a": {"endpoints": [up], "health_check": {"path": "/healthz", "interval": "100ms"}}}))
    assert request(gw.port, "GET", "/api/x").status == 200
    assert wait_until(lambda: metric(gw, "apigw_health_checks_total") >= 1, timeout=3)
    # The client may have its answer a moment before the worker has counted the request.
    assert wait_until(lambda: sum(Metrics(gw).series("apigw_requests_total").values()) >= 1, timeout=3)
    r = admin(gw, "/metrics")
    ctype = r.header("Content-Type") or ""
    assert ctype.split(";")[0].strip() == "text/plain" and "version=0.0.4" in ctype, ctype
    text = r.body.decode()
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    for family, kind in FAMILIES.items():
        assert types.get(family) == kind, f"{family}: # TYPE {types.get(family)!r}, expected {kind}"
    m = Metrics(gw)
    for kind in ("connect", "timeout", "reset", "bad_response", "5xx", "pool_full"):
        assert m.get("apigw_upstream_errors_total", upstream="a", kind=kind) == 0
    assert m.get("apigw_upstream_endpoint_healthy", upstream="a", endpoint=up.endpoint) == 1
    assert m.get("apigw_upstream_ejections_total", upstream="a", endpoint=up.endpoint) == 0
    assert m.get("apigw_config_reloads_total", result="success") == 0
    assert m.get("apigw_config_reloads_total", result="failure") == 0
    assert m.get("apigw_config_last_reload_successful") == 1
    assert m.get("apigw_health_check_failures_total") == 0
    assert m.get("apigw_access_log_dropped_lines_total") == 0
    assert m.get("apigw_upstream_connections", upstream="a") == 1
    assert m.get("apigw_upstream_pool_waits_total", upstream="a") == 0

def test_metrics_counters_are_exact_sums_over_two_workers(gateway, upstream):
    """With 2 workers, N requests on N connections give apigw_requests_total N by route, method and status
    class; 404s count under route "-"; the request and upstream histograms count every request."""
    up = upstream("a", default=Fixed(200, b"ok"))
    up.on("/api/boom", Fixed(500, b"boom"))
    gw = gateway(gateway_config([route("r", "/api/*rest", "a")],
                                {"a": {"endpoints": [up], "retries": {"attempts": 0}}}, server={"workers": 2}))
    ctype = admin(gw, "/metrics").header("Content-Type") or ""
    assert ctype.startswith("text/plain") and "version=0.0.4" in ctype, ctype
    plan = [("GET", "/api/x", 200)] * 30 + [("POST", "/api/x", 200)] * 5 + [("GET", "/nothing", 404)] * 4 \
        + [("GET", "/api/boom", 500)] * 3
    errors = []
    lock = threading.Lock()
    jobs = list(plan)

    def worker():
        while True:
            with lock:
                if not jobs:
                    return
                method, path, status = jobs.pop()
            try:
                r = request(gw.port, method, path, body=b"x" if method == "POST" else None)
                if r.status != status:
                    errors.append((method, path, r))
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                errors.append((method, path, e))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors[:3]
    # A request is counted once its response is written, which its client may see a moment before.
    assert wait_until(lambda: sum(Metrics(gw).series("apigw_requests_total").values()) == len(plan), timeout=5)

    m = Metrics(gw)
    assert m.get("apigw_requests_total", route="r", method="GET", status="2xx") == 30
    assert m.get("apigw_requests_total", route="r", method="POST", status="2xx") == 5
    assert m.get("apigw_requests_total", route="-", method="GET", status="4xx") == 4
    assert m.get("apigw_requests_total", route="r", method="GET", status="5xx") == 3
    total = sum(m.series("apigw_requests_total").values())
    assert total == len(plan), m.series("apigw_requests_total")

    for name, labels, count in [("apigw_request_duration_seconds", {"route": "r"}, 38),
                                ("apigw_request_duration_seconds", {"route": "-"}, 4),
                                ("apigw_upstream_request_duration_seconds", {"upstream": "a"}, 38)]:
        assert m.get(name + "_count", **labels) == count, (name, labels)
        assert m.get(name + "_sum", **labels) > 0, (name, labels)
        buckets = sorted(((float(dict(lb)["le"]), v) for lb, v in m.series(name + "_bucket").items()
                          if all(dict(lb).get(k) == x for k, x in labels.items())), key=lambda b: b[0])
        assert len(buckets) >= 2 and buckets[-1][0] == float("inf"), buckets
        assert buckets[-1][1] == count, (name, labels, buckets)
        assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), f"buckets not cumulative: {buckets}"
    assert m.get("apigw_upstream_errors_total", upstream="a", kind="5xx") == 3


def test_metrics_upstream_errors_by_kind(gateway, upstream):
    """Each failure counts once under its own kind in apigw_upstream_errors_total, and under no other."""
    hang = upstream("hang", default=Hang())
    reset = upstream("reset", default=Reset())
    garbage = upstream("garbage", default=Garbage())
    slow = upstream("slow", default=Fixed(200, b"slow", delay=0.8))
    base = {"connect_timeout": "200ms", "timeout": "2s", "retries": {"attempts": 0}}
    ups = {"dead": {**base, "endpoints": [free_port()]},
           "hang": {**base, "endpoints": [hang], "timeout": "300ms"},
           "reset": {**base, "endpoints": [reset]},
           "garbage": {**base, "endpoints": [garbage]},
           "slow": {**base, "endpoints": [slow], "max_connections": 1}}
    gw = gateway(gateway_config([route(n, f"/{n}/*rest", n) for n in ups], ups))

    assert request(gw.port, "GET", "/dead/1").status == 502
    assert request(gw.port, "GET", "/dead/2").status == 502
    assert request(gw.port, "GET", "/hang/1").status == 504
    assert request(gw.port, "GET", "/reset/1").status == 502
    assert request(gw.port, "GET", "/garbage/1").status == 502
    first = {}
    t = threading.Thread(target=lambda: first.setdefault("r", request(gw.port, "GET", "/slow/1")))
    t.start()
    try:
        assert slow.wait_for_requests(1, timeout=5)
        assert request(gw.port, "GET", "/slow/2").status == 503
    finally:
        t.join(10)
    assert first["r"].status == 200

    expected = {"dead": "connect", "hang": "timeout", "reset": "reset", "garbage": "bad_response",
                "slow": "pool_full"}
    counts = {"dead": 2}
    m = Metrics(gw)
    for name, kind in expected.items():
        got = {k: m.get("apigw_upstream_errors_total", upstream=name, kind=k)
               for k in ("connect", "timeout", "reset", "bad_response", "5xx", "pool_full")}
        want = {k: (counts.get(name, 1) if k == kind else 0) for k in got}
        assert got == want, f"upstream {name}: {got}"
    assert m.get("apigw_upstream_pool_waits_total", upstream="slow") >= 1


def test_pool_waits_and_upstream_connections(gateway, upstream):
    """Two concurrent requests on a 1-connection pool: the second waits (apigw_upstream_pool_waits_total 1),
    both succeed over one upstream connection, and apigw_upstream_connections shows it."""
    up = upstream("a", default=Fixed(200, b"ok", delay=0.3))
    gw = gateway(gateway_config([route("r", "/*rest", "a")],
                                {"a": {"endpoints": [up], "max_connections": 1, "connect_timeout": "3s"}}))
    results = []
    threads = [threading.Thread(target=lambda i=i: results.append(request(gw.port, "GET", f"/{i}")))
               for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert [r.status for r in results] == [200, 200], results
    assert up.connections_accepted == 1
    m = Metrics(gw)
    assert m.get("apigw_upstream_pool_waits_total", upstream="a") == 1
    assert m.get("apigw_upstream_connections", upstream="a") == 1
    assert m.get("apigw_upstream_errors_total", upstream="a", kind="pool_full") == 0


def test_client_connections_gauge_summed_over_workers(gateway, upstream):
    """apigw_client_connections counts open client connections over both workers, and drops back to 0."""
    gw, _ = simple(gateway, upstream, workers=2)
    # The harness's own probe connection may still be closing.
    assert wait_until(lambda: metric(gw, "apigw_client_connections") == 0, timeout=3)
    clients = [Client(gw.port) for _ in range(6)]
    try:
        for c in clients:
            assert c.request("GET", "/api/x").status == 200
        assert wait_until(lambda: metric(gw, "apigw_client_connections") == 6, timeout=3), \
            metric(gw, "apigw_client_connections")
    finally:
        for c in clients:
            c.close()
    assert wait_until(lambda: metric(gw, "apigw_client_connections") == 0, timeout=3), \
        metric(gw, "apigw_client_connections")


def test_reload_shows_in_readyz_routes_config_and_metrics(gateway, upstream):
    """A good SIGHUP reload moves every admin view to generation 2; a bad one counts as a failure and changes
    nothing."""
    gw, up = simple(gateway, upstream)
    assert metric(gw, "apigw_config_reloads_total", result="success") == 0
    cfg = copy.deepcopy(gw.config)
    cfg["routes"].append(route("added", "/added", "a"))
    send_hup(gw, cfg)
    assert wait_until(lambda: admin_json(gw, "/readyz").get("generation") == 2, timeout=5), gw.log()
    assert admin_json(gw, "/readyz") == {"status": "ready", "generation": 2}
    routes = admin_json(gw, "/routes")
    assert routes["generation"] == 2 and [r["name"] for r in routes["routes"]] == ["added", "r"], routes
    assert admin_json(gw, "/config")["generation"] == 2
    assert admin_json(gw, "/upstreams")["generation"] == 2
    m = Metrics(gw)
    assert m.get("apigw_config_generation") == 2
    assert m.get("apigw_config_reloads_total", result="success") == 1
    assert m.get("apigw_config_reloads_total", result="failure") == 0
    assert m.get("apigw_config_last_reload_successful") == 1

    send_hup(gw, "routes: [\n")
    assert wait_until(lambda: metric(gw, "apigw_config_reloads_total", result="failure") == 1, timeout=5)
    m = Metrics(gw)
    assert m.get("apigw_config_last_reload_successful") == 0
    assert m.get("apigw_config_generation") == 2
    assert admin_json(gw, "/readyz") == {"status": "ready", "generation": 2}


# --- /config, /routes, /upstreams ------------------------------------------------------------------------

def test_config_shows_the_effective_config(gateway, upstream):
    """/config shows what was configured and the defaults, with durations as "250ms"/"5s" and each route's
    source as file:line."""
    up1 = upstream("one")
    up2 = upstream("two")
    ups = {"checked": {"endpoints": [up1, up2], "balance": "least_request", "connect_timeout": "150ms",
                       "timeout": "3s", "max_connections": 7, "retries": {"attempts": 2},
                       "health_check": {"path": "/hc", "interval": "5s", "timeout": "1s", "unhealthy_after": 4,
                                        "healthy_after": 3},
                       "passive_health": {"unhealthy_after": 6, "eject_for": "20s"}},
           "plain": {"endpoints": [up1]}}
    routes = [route("users", "/users/:id", "checked", methods=["GET", "PUT"], host="api.example.com"),
              route("v1", "/v1/*rest", "plain", strip_prefix="/v1")]
    gw = gateway(gateway_config(routes, ups, server={"workers": 2, "trusted_proxies": ["10.0.0.0/8"],
                                                     "drain_timeout": "750ms"},
                                limits={"idle_timeout": "30s"}))
    doc = admin_json(gw, "/config")
    assert {"generation", "files", "server", "log", "admin", "reload", "upstreams", "routes"} <= set(doc), doc
    assert doc["generation"] == 1
    assert doc["files"] == [str(gw.config_path)], doc["files"]

    srv = doc["server"]
    assert srv["listen"] == f"127.0.0.1:{gw.port}"
    assert srv["workers"] == 2
    assert srv["trusted_proxies"] == ["10.0.0.0/8"]
    assert srv["drain_timeout"] == "750ms"
    assert srv["debug_headers"] is True
    assert srv["limits"]["idle_timeout"] == "30s"
    assert srv["limits"]["header_timeout"] == "10s"  # the default
    assert doc["admin"]["listen"] == f"127.0.0.1:{gw.admin_port}"

    checked = doc["upstreams"]["checked"]
    assert checked["endpoints"] == [up1.endpoint, up2.endpoint]
    assert checked["balance"] == "least_request"
    assert checked["connect_timeout"] == "150ms" and checked["timeout"] == "3s"
    assert checked["max_connections"] == 7
    assert checked["retries"] == {"attempts": 2}
    assert checked["health_check"] == {"path": "/hc", "interval": "5s", "timeout": "1s", "unhealthy_after": 4,
                                       "healthy_after": 3}
    assert checked["passive_health"] == {"unhealthy_after": 6, "eject_for": "20s"}
    plain = doc["upstreams"]["plain"]
    assert plain["health_check"] is None, plain
    assert plain["passive_health"] == {"unhealthy_after": 5, "eject_for": "10s"}  # the defaults
    assert plain["connect_timeout"] == "250ms" and plain["timeout"] == "5s"
    assert plain["balance"] == "round_robin" and plain["max_connections"] == 256
    assert plain["retries"] == {"attempts": 1}

    lines = gw.config_text().splitlines()
    by_name = {r["name"]: r for r in doc["routes"]}
    assert set(by_name) == {"users", "v1"}
    for name in by_name:
        line = next(i + 1 for i, text in enumerate(lines) if text.strip() == f"- name: {name}")
        assert by_name[name]["source"] == f"{gw.config_path}:{line}", by_name[name]
    users = by_name["users"]
    assert users["upstream"] == "checked"
    assert users["match"]["path"] == "/users/:id"
    assert sorted(users["match"]["methods"]) == ["GET", "PUT"]
    assert users["match"]["host"] == "api.example.com"
    assert "rewrite" not in users or users["rewrite"] is None, users
    assert by_name["v1"]["rewrite"] == {"strip_prefix": "/v1"}, by_name["v1"]


def test_routes_are_listed_in_match_order(gateway, upstream):
    """/routes lists exact hosts, then wildcard hosts, then any host; static before :param before *wildcard,
    whatever the file order; and requests are matched that way."""
    up = upstream("a")
    routes = [route("rest", "/users/*rest", "a"), route("id", "/users/:id", "a"), route("me", "/users/me", "a"),
              route("wild", "/users/me", "a", host="*.example.com"),
              route("exact", "/users/me", "a", host="api.example.com")]
    gw = gateway(gateway_config(routes, {"a": up}))
    doc = admin_json(gw, "/routes")
    assert doc["generation"] == 1
    assert [r["name"] for r in doc["routes"]] == ["exact", "wild", "me", "id", "rest"], doc
    assert doc["routes"][0]["match"]["host"] == "api.example.com"
    assert doc["routes"][0]["upstream"] == "a" and doc["routes"][0]["source"].startswith(str(gw.config_path) + ":")
    for host, path, name in [("api.example.com", "/users/me", "exact"), ("x.example.com", "/users/me", "wild"),
                             ("other.org", "/users/me", "me"), ("other.org", "/users/7", "id"),
                             ("other.org", "/users/7/posts", "rest")]:
        r = request(gw.port, "GET", path, headers=[("Host", host)])
        assert r.status == 200 and r.header("X-Apigw-Route") == name, (host, path, r)


def test_upstreams_shows_every_endpoint(gateway, upstream):
    """/upstreams lists each upstream's balance, healthy_endpoints and every endpoint with its state."""
    up1, up2 = upstream("one"), upstream("two")
    gw = gateway(gateway_config([route("r", "/*rest", "pair")],
                                {"pair": {"endpoints": [up1.endpoint, f"localhost:{up2.port}"], "balance": "random"},
                                 "solo": [up1]}))
    doc = admin_json(gw, "/upstreams")
    assert doc["generation"] == 1
    assert set(doc["upstreams"]) == {"pair", "solo"}
    pair = doc["upstreams"]["pair"]
    assert pair["balance"] == "random" and pair["healthy_endpoints"] == 2, pair
    assert [e["endpoint"] for e in pair["endpoints"]] == [up1.endpoint, f"localhost:{up2.port}"]
    assert pair["endpoints"][0]["address"] == up1.endpoint
    assert pair["endpoints"][1]["address"] in (f"127.0.0.1:{up2.port}", f"[::1]:{up2.port}"), pair
    for e in pair["endpoints"]:
        assert {k: e[k] for k in ("healthy", "health_check", "ejected", "consecutive_connect_failures",
                                  "ejections")} == {"healthy": True, "health_check": "off", "ejected": False,
                                                    "consecutive_connect_failures": 0, "ejections": 0}, e
    solo = doc["upstreams"]["solo"]
    assert solo["balance"] == "round_robin" and solo["healthy_endpoints"] == 1
    assert [e["endpoint"] for e in solo["endpoints"]] == [up1.endpoint]


def test_admin_off_opens_no_admin_port(gateway, upstream):
    """With `admin.listen: off` the process listens on its server port only; with an admin address, on both."""
    up = upstream("a")
    with_admin = gateway(gateway_config([route("r", "/*rest", "a")], {"a": up}), name="with")
    assert listening_ports(with_admin.pid) == {with_admin.port, with_admin.admin_port}
    cfg = gateway_config([route("r", "/*rest", "a")], {"a": up})
    cfg["admin"] = {"listen": "off"}
    gw = gateway(cfg, name="off")
    assert gw.admin_port is None
    assert request(gw.port, "GET", "/x").status == 200
    assert listening_ports(gw.pid) == {gw.port}
