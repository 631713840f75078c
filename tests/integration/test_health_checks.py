"""Active and passive upstream health: an endpoint failing `unhealthy_after` probes gets no traffic until
`healthy_after` probes pass; with no healthy endpoint left the answer is 503; an endpoint refusing
`passive_health.unhealthy_after` connections in a row from real traffic is ejected for `eject_for`."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from apigw_harness import assert_json_error, free_port, gateway_config, route, wait_until
from rawhttp import request
from recording_upstream import Dynamic, Fixed, Hang

CHECK = {"path": "/healthz", "interval": "100ms", "timeout": "200ms", "unhealthy_after": 2, "healthy_after": 2}


# --- helpers -----------------------------------------------------------------------------------------------

def admin_json(gw, path):
    r = request(gw.admin_port, "GET", path, timeout=5)
    assert r.status == 200, r
    return r.json()


def endpoint_state(gw, upstream_name, endpoint):
    ups = admin_json(gw, "/upstreams")["upstreams"][upstream_name]
    for e in ups["endpoints"]:
        if e["endpoint"] == endpoint:
            return {**e, "healthy_endpoints": ups["healthy_endpoints"]}
    raise AssertionError(f"{endpoint} not listed for {upstream_name}: {ups}")


def metric(gw, series):
    """The value of one series written exactly as in the exposition (labels in the documented order)."""
    text = request(gw.admin_port, "GET", "/metrics", timeout=5).body.decode()
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    raise KeyError(f"{series} not in /metrics")


def traffic(up, probe_path="/healthz"):
    """Proxied requests an upstream received (health probes left out)."""
    return [q for q in up.recorded() if q.path != probe_path]


class Switchable:
    """A /healthz behaviour answering 200 or 500 as `ok` says, counting the probes answered each way."""

    def __init__(self, ok=True):
        self.ok = ok
        self.lock = threading.Lock()
        self.answered = {True: 0, False: 0}

    def __call__(self, req):
        with self.lock:
            ok = self.ok
            self.answered[ok] += 1
        return Fixed(200, b"fine") if ok else Fixed(500, b"sick")

    def set(self, ok):
        with self.lock:
            self.ok = ok
            before = self.answered[ok]
        return before


class PortServer:
    """A plain HTTP server on a given port (to start listening where nothing did), counting requests by path."""

    def __init__(self, port):
        counts = self.counts = {}

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                counts[self.path] = counts.get(self.path, 0) + 1
                body = b"late"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


# --- active checks -----------------------------------------------------------------------------------------

def test_failing_endpoint_gets_no_traffic_until_it_recovers(gateway, upstream):
    """B's /healthz answers 500: after 2 failed probes B is unhealthy and every request (on either worker) goes
    to A; once /healthz answers 200 again, after 2 passing probes B gets traffic again."""
    a, b = upstream("a"), upstream("b")
    b_health = Switchable(ok=True)
    a.on("/healthz", Fixed(200, b"fine"))
    b.on("/healthz", Dynamic(b_health))
    gw = gateway(gateway_config([route("r", "/*rest", "pool")],
                                {"pool": {"endpoints": [a, b], "health_check": CHECK}}, server={"workers": 2}))
    assert wait_until(lambda: b_health.answered[True] >= 1, timeout=3), "B was never probed"
    assert endpoint_state(gw, "pool", b.endpoint)["health_check"] == "passing"

    b_health.set(False)
    assert wait_until(lambda: not endpoint_state(gw, "pool", b.endpoint)["healthy"], timeout=3), \
        endpoint_state(gw, "pool", b.endpoint)
    assert b_health.answered[False] >= 2, f"unhealthy after {b_health.answered[False]} failed probes"
    state = endpoint_state(gw, "pool", b.endpoint)
    assert state["health_check"] == "failing" and state["healthy_endpoints"] == 1 and not state["ejected"], state
    assert endpoint_state(gw, "pool", a.endpoint)["healthy"] is True
    assert metric(gw, f'apigw_upstream_endpoint_healthy{{upstream="pool",endpoint="{b.endpoint}"}}') == 0
    failures = metric(gw, "apigw_health_check_failures_total")
    assert failures >= 2 and metric(gw, "apigw_health_checks_total") >= failures + 1

    a_before, b_before = len(traffic(a)), len(traffic(b))
    for i in range(20):
        r = request(gw.port, "GET", f"/sick/{i}")
        assert r.status == 200 and r.header("X-Upstream-Name") == "a", r
    assert len(traffic(a)) - a_before == 20
    assert len(traffic(b)) == b_before, [q.target for q in traffic(b)]

    passing_before = b_health.set(True)
    assert wait_until(lambda: endpoint_state(gw, "pool", b.endpoint)["healthy"], timeout=3), \
        endpoint_state(gw, "pool", b.endpoint)
    assert b_health.answered[True] - passing_before >= 2, \
        f"healthy again after {b_health.answered[True] - passing_before} passing probes"
    assert endpoint_state(gw, "pool", b.endpoint)["health_check"] == "passing"
    assert metric(gw, f'apigw_upstream_endpoint_healthy{{upstream="pool",endpoint="{b.endpoint}"}}') == 1
    for i in range(20):
        assert request(gw.port, "GET", f"/well/{i}").status == 200
    well_b = [q for q in traffic(b) if q.path.startswith("/well/")]
    well_a = [q for q in traffic(a) if q.path.startswith("/well/")]
    assert well_b and well_a and len(well_a) + len(well_b) == 20, (len(well_a), len(well_b))


def test_closed_port_fails_checks_and_recovers_when_it_listens(gateway, upstream):
    """An endpoint whose port is closed is marked unhealthy and skipped; when something starts listening there
    and passes the checks, it gets traffic."""
    a = upstream("a")
    a.on("/healthz", Fixed(200, b"fine"))
    late_port = free_port()
    late_ep = f"127.0.0.1:{late_port}"
    gw = gateway(gateway_config([route("r", "/*rest", "pool")],
                                {"pool": {"endpoints": [a, late_port], "health_check": CHECK,
                                          "retries": {"attempts": 0}}}))
    assert wait_until(lambda: endpoint_state(gw, "pool", late_ep)["health_check"] == "failing", timeout=3), \
        endpoint_state(gw, "pool", late_ep)
    assert endpoint_state(gw, "pool", late_ep)["healthy"] is False
    # With no retries, a request sent to the closed port would fail: every one succeeding means none went there.
    for i in range(10):
        r = request(gw.port, "GET", f"/early/{i}")
        assert r.status == 200 and r.header("X-Upstream-Name") == "a", r
    assert metric(gw, 'apigw_upstream_errors_total{upstream="pool",kind="connect"}') == 0

    server = PortServer(late_port)
    try:
        assert wait_until(lambda: endpoint_state(gw, "pool", late_ep)["healthy"], timeout=3), \
            endpoint_state(gw, "pool", late_ep)
        assert server.counts.get("/healthz", 0) >= 2
        bodies = [request(gw.port, "GET", f"/late/{i}").body for i in range(10)]
        assert b"late" in bodies and b"ok" in bodies, bodies
    finally:
        server.stop()


def test_probe_timeout_counts_as_failure(gateway, upstream):
    """A /healthz that never answers fails each probe after `timeout`, so the endpoint goes unhealthy."""
    a, b = upstream("a"), upstream("b")
    a.on("/healthz", Fixed(200, b"fine"))
    b.on("/healthz", Hang())
    gw = gateway(gateway_config([route("r", "/*rest", "pool")],
                                {"pool": {"endpoints": [a, b], "health_check": {**CHECK, "timeout": "150ms"}}}))
    assert wait_until(lambda: endpoint_state(gw, "pool", b.endpoint)["health_check"] == "failing", timeout=3)
    assert endpoint_state(gw, "pool", a.endpoint)["health_check"] == "passing"
    before = len(traffic(b))
    for i in range(6):
        assert request(gw.port, "GET", f"/{i}").header("X-Upstream-Name") == "a"
    assert len(traffic(b)) == before


def test_no_healthy_endpoint_answers_503(gateway, upstream):
    """When every endpoint fails its checks, requests answer 503 JSON naming the cause, with the request id, and
    no upstream sees them."""
    a, b = upstream("a"), upstream("b")
    a.on("/healthz", Fixed(500, b"sick"))
    b.on("/healthz", Fixed(503, b"sick"))
    gw = gateway(gateway_config([route("r", "/*rest", "pool")],
                                {"pool": {"endpoints": [a, b], "health_check": CHECK}}))
    assert wait_until(lambda: admin_json(gw, "/upstreams")["upstreams"]["pool"]["healthy_endpoints"] == 0,
                      timeout=3), admin_json(gw, "/upstreams")
    r = request(gw.port, "GET", "/x")
    doc = assert_json_error(r, 503, "service_unavailable")
    assert "no healthy endpoint" in doc["message"], doc
    assert r.header("X-Apigw-Upstream") == "pool", r
    assert traffic(a) == [] and traffic(b) == []


# --- passive health ----------------------------------------------------------------------------------------

def passive_gateway(gateway, up, dead_port, unhealthy_after, eject_for="1s"):
    return gateway(gateway_config([route("r", "/*rest", "pool")],
                                  {"pool": {"endpoints": [dead_port, up], "connect_timeout": "200ms",
                                            "retries": {"attempts": 1},
                                            "passive_health": {"unhealthy_after": unhealthy_after,
                                                               "eject_for": eject_for}}}))


def test_passive_ejection_after_connect_failures(gateway, upstream):
    """Two refused connections in a row eject the endpoint (retries still answer 200 from the other); during
    eject_for it gets no connection attempt; afterwards it is tried again."""
    live = upstream("live")
    dead_port = free_port()
    dead = f"127.0.0.1:{dead_port}"
    gw = passive_gateway(gateway, live, dead_port, unhealthy_after=2)
    connect_errors = 'apigw_upstream_errors_total{upstream="pool",kind="connect"}'
    ejections = f'apigw_upstream_ejections_total{{upstream="pool",endpoint="{dead}"}}'

    for i in range(10):
        r = request(gw.port, "GET", f"/warm/{i}")
        assert r.status == 200 and r.header("X-Upstream-Name") == "live", r
        if endpoint_state(gw, "pool", dead)["ejected"]:
            break
    ejected_seen = time.monotonic()
    state = endpoint_state(gw, "pool", dead)
    assert state["ejected"] is True and state["ejections"] == 1 and state["healthy"] is False, state
    assert state["healthy_endpoints"] == 1, state
    assert metric(gw, connect_errors) == 2
    assert metric(gw, ejections) == 1
    assert metric(gw, f'apigw_upstream_endpoint_healthy{{upstream="pool",endpoint="{dead}"}}') == 0

    before = len(live.recorded())
    for i in range(10):
        assert request(gw.port, "GET", f"/ejected/{i}").status == 200
    elapsed = time.monotonic() - ejected_seen
    assert elapsed < 0.8, f"the machine is too slow for this check: 10 requests took {elapsed:.2f}s"
    assert endpoint_state(gw, "pool", dead)["ejected"] is True
    assert metric(gw, connect_errors) == 2, "an ejected endpoint was tried"
    assert len(live.recorded()) - before == 10

    def tried_again():
        assert request(gw.port, "GET", "/later").status == 200
        return metric(gw, connect_errors) > 2

    assert wait_until(tried_again, timeout=4, interval=0.05), endpoint_state(gw, "pool", dead)
    waited = time.monotonic() - ejected_seen
    assert 0.8 <= waited <= 2.5, f"tried again {waited:.2f}s after the ejection was seen (eject_for 1s)"


def test_passive_health_zero_never_ejects(gateway, upstream):
    """`passive_health.unhealthy_after: 0` disables ejection: the refusing endpoint keeps being tried."""
    live = upstream("live")
    dead_port = free_port()
    dead = f"127.0.0.1:{dead_port}"
    gw = passive_gateway(gateway, live, dead_port, unhealthy_after=0)
    for i in range(12):
        assert request(gw.port, "GET", f"/{i}").status == 200
    state = endpoint_state(gw, "pool", dead)
    assert state["ejected"] is False and state["ejections"] == 0 and state["healthy"] is True, state
    assert metric(gw, 'apigw_upstream_errors_total{upstream="pool",kind="connect"}') >= 6
    assert metric(gw, f'apigw_upstream_ejections_total{{upstream="pool",endpoint="{dead}"}}') == 0
