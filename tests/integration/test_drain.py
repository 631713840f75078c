"""Drain on SIGTERM/SIGINT: no new connections, /readyz answers 503 "draining", in-flight requests finish with
their whole response and `Connection: close`, idle keep-alive connections are closed, exit 0; past
`drain_timeout` what is left is cut (never answered with a made-up 200) and the process exits."""

import os
import signal
import socket
import threading
import time

import pytest

from apigw_harness import HOST, gateway_config, route, wait_until
from rawhttp import Client, ConnectionClosed, ProtocolError, TruncatedResponse, build_request, request
from recording_upstream import Fixed, pattern_bytes

SLOW_BODY = pattern_bytes(0, 100_000)


def make(gateway, upstream, delay, **server):
    up = upstream("a", default=Fixed(200, b"fast"))
    up.on("/slow", Fixed(200, SLOW_BODY, delay=delay))
    gw = gateway(gateway_config([route("r", "/*rest", "a")], {"a": up}, server=server or None))
    return gw, up


def readyz(gw):
    """(status, body) of /readyz, or None when the admin listener no longer answers."""
    try:
        r = request(gw.admin_port, "GET", "/readyz", timeout=2)
    except (OSError, ConnectionClosed, ProtocolError):
        return None
    return r.status, r.json()


class InFlight:
    """One request sent on its own keep-alive connection, answered in a background thread."""

    def __init__(self, port, path="/slow", client=None):
        self.client = client or Client(port, timeout=15)
        self.result = None
        self.error = None
        self.done_at = None
        self.client.send(build_request("GET", path))
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            self.result = self.client.read_response()
        except Exception as e:  # noqa: BLE001 - the test asserts on it
            self.error = e
        self.done_at = time.monotonic()

    def join(self, timeout):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "no response within the timeout"


def new_connection_refused_or_unserved(port):
    """True when a new connection is refused, or accepted by the kernel but never answered."""
    try:
        s = socket.create_connection((HOST, port), timeout=1)
    except OSError:
        return True
    with s:
        s.settimeout(1)
        try:
            s.sendall(build_request("GET", "/fresh", [("Connection", "close")]))
            data = s.recv(100)
        except (socket.timeout, TimeoutError, OSError):
            return True
        return not data.startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_in_flight_request_finishes_during_drain(gateway, upstream, sig):
    """While a 3 s request is in flight: the signal makes /readyz answer 503 "draining", closes an idle
    keep-alive connection once its 1 s grace is over and refuses new ones; the request completes with its whole
    body and `Connection: close`; the process exits 0."""
    gw, up = make(gateway, upstream, delay=3.0, workers=2)
    idle = Client(gw.port, timeout=10)
    assert idle.request("GET", "/warm").status == 200
    flight = InFlight(gw.port)
    try:
        assert up.wait_for_requests(2, timeout=5), "the slow request never reached the upstream"
        signalled = time.monotonic()
        os.kill(gw.pid, sig)

        assert wait_until(lambda: (readyz(gw) or (0,))[0] == 503, timeout=1), readyz(gw)
        status, doc = readyz(gw)
        assert doc.get("status") == "draining", doc
        # The grace (1 s from the signal) plus a sweep, with room for a loaded machine and the sanitizer build.
        assert idle.wait_closed(1.8), "idle keep-alive connection still open during drain"
        assert new_connection_refused_or_unserved(gw.port), "a new connection was served during drain"
        assert flight.result is None and flight.error is None, "the slow request ended early"

        flight.join(10)
        assert flight.error is None, f"in-flight request failed during drain: {flight.error!r}"
        r = flight.result
        assert r.status == 200 and r.body == SLOW_BODY, r
        assert flight.client.wait_closed(2), "connection left open after the drained response"
        rc = gw.proc.wait(timeout=5)
        exited = time.monotonic()
    finally:
        idle.close()
        flight.client.close()
    assert rc == 0, gw.log()
    assert flight.done_at - signalled >= 1.0, "the response came before the upstream could have answered"
    assert exited - flight.done_at < 1.5, f"exit {exited - flight.done_at:.2f}s after the last response"
    assert r.wants_close(), f"response during drain lacks Connection: close: {r!r}"


def test_idle_connections_only_exit_at_once(gateway, upstream):
    """With only idle keep-alive connections open, SIGTERM closes them and the process exits 0 promptly."""
    gw, up = make(gateway, upstream, delay=0)
    clients = [Client(gw.port, timeout=5) for _ in range(3)]
    try:
        for c in clients:
            assert c.request("GET", "/x").status == 200
        t0 = time.monotonic()
        os.kill(gw.pid, signal.SIGTERM)
        for c in clients:
            assert c.wait_closed(2), "idle connection not closed on SIGTERM"
        rc = gw.proc.wait(timeout=5)
        assert time.monotonic() - t0 < 1.5, f"exit took {time.monotonic() - t0:.2f}s with nothing in flight"
    finally:
        for c in clients:
            c.close()
    assert rc == 0, gw.log()


def test_drain_timeout_cuts_a_slow_request(gateway, upstream):
    """drain_timeout 300ms with a 3 s request in flight: the process exits within about drain_timeout + 1 s
    and the cut request is not answered with a 200."""
    gw, up = make(gateway, upstream, delay=3.0, drain_timeout="300ms")
    flight = InFlight(gw.port)
    try:
        assert up.wait_for_requests(1, timeout=5)
        t0 = time.monotonic()
        os.kill(gw.pid, signal.SIGTERM)
        rc = gw.proc.wait(timeout=5)
        exit_after = time.monotonic() - t0
        flight.join(5)
    finally:
        flight.client.close()
    assert rc == 0, f"exit code {rc}\n{gw.log()}"
    if flight.error is not None:
        assert isinstance(flight.error, (ConnectionClosed, TruncatedResponse, OSError)), repr(flight.error)
        if isinstance(flight.error, TruncatedResponse):
            assert flight.error.response.status != 200 or len(flight.error.response.body) < len(SLOW_BODY)
    else:
        assert flight.result.status != 200, f"a request cut by the drain was answered 200: {flight.result!r}"
    assert flight.done_at - t0 < 1.3, f"the cut request ended {flight.done_at - t0:.2f}s after SIGTERM"
    assert exit_after >= 0.25, f"exited {exit_after:.2f}s after SIGTERM: did not wait for drain_timeout"
    assert exit_after <= 1.3, f"exited {exit_after:.2f}s after SIGTERM with drain_timeout 300ms"
    # The access log (stdout here) says the client got nothing: 499, not the upstream's status.
    cut = [line for line in gw.log().splitlines() if '"GET /slow' in line]
    assert cut and " 499 " in cut[0], cut


def test_twenty_concurrent_requests_all_finish(gateway, upstream):
    """20 requests in flight on 20 connections over 2 workers, each 1 s slow, all complete 200 with their
    whole body after SIGTERM; exit 0."""
    gw, up = make(gateway, upstream, delay=1.0, workers=2)
    flights = []
    try:
        flights = [InFlight(gw.port) for _ in range(20)]
        assert up.wait_for_requests(20, timeout=5), f"only {len(up.recorded())} requests reached the upstream"
        os.kill(gw.pid, signal.SIGTERM)
        for f in flights:
            f.join(10)
        rc = gw.proc.wait(timeout=5)
    finally:
        for f in flights:
            f.client.close()
    failed = [(i, f.error or f.result) for i, f in enumerate(flights)
              if f.error is not None or f.result.status != 200 or f.result.body != SLOW_BODY]
    assert not failed, f"{len(failed)} of 20 in-flight requests failed: {failed[:3]}"
    assert rc == 0, gw.log()
    lacking = [f.result for f in flights if not f.result.wants_close()]
    assert not lacking, f"{len(lacking)} of 20 responses during drain lack Connection: close: {lacking[0]!r}"
