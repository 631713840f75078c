"""Connection handling: keep-alive on both sides (pool reuse), pipelining, HTTP/1.0, Connection: close,
idle timeout."""

import threading
import time

from apigw_harness import gateway_config, route
from rawhttp import Client, build_request, wait_closed
from recording_upstream import Dynamic, Fixed, IdleClose


def make(gateway, upstream, **server):
    up = upstream("api")
    up.default = Dynamic(lambda req: Fixed(200, req.target.encode()))
    gw = gateway(gateway_config([route("r", "/*rest", "api")], {"api": up}, server=server or None))
    return gw, up


def test_sequential_requests_reuse_upstream_connections(gateway, upstream):
    gw, up = make(gateway, upstream)
    with Client(gw.port) as c:
        for i in range(50):
            r = c.request("GET", f"/seq/{i}")
            assert r.status == 200 and r.body == f"/seq/{i}".encode(), r
            assert not r.wants_close(), r
    assert len(up.recorded()) == 50
    assert up.connections_accepted <= 2, f"upstream accepted {up.connections_accepted} connections for 50 requests"


def test_upstream_pool_reused_across_client_connections(gateway, upstream):
    gw, up = make(gateway, upstream)
    for i in range(20):
        with Client(gw.port) as c:
            assert c.request("GET", f"/n/{i}").status == 200
    assert up.connections_accepted <= 2, up.connections_accepted


def test_upstream_closing_an_idle_connection_takes_it_out_of_the_pool(gateway, upstream):
    up = upstream("api", default=Fixed(200, b"fresh"))
    up.on("/first", IdleClose(Fixed(200, b"first"), after=0.2))
    gw = gateway(gateway_config([route("r", "/*rest", "api")], {"api": {"endpoints": [up.endpoint],
                                                                         "retries": {"attempts": 0}}}))
    with Client(gw.port) as c:
        assert c.request("GET", "/first").body == b"first"
        time.sleep(0.7)  # the upstream has closed the pooled connection by now
        # A POST is never replayed, so only a pool that noticed the close can answer it from a fresh connection.
        r = c.request("POST", "/second", body=b"payload")
        assert r.status == 200 and r.body == b"fresh", r
    assert up.connections_accepted == 2
    assert [q.path for q in up.recorded()] == ["/first", "/second"]


def test_client_connection_kept_alive(gateway, upstream):
    gw, up = make(gateway, upstream)
    with Client(gw.port) as c:
        for i in range(10):
            assert c.request("POST", f"/p/{i}", body=b"x" * i).status == 200
        assert not c.wait_closed(0.3)
        assert c.request("GET", "/still-open").body == b"/still-open"


def test_pipelined_requests_answered_in_order(gateway, upstream):
    gw, up = make(gateway, upstream)
    up.on("/a", Fixed(200, b"A", delay=0.3))
    up.on("/b", Fixed(200, b"B"))
    up.on("/c", Fixed(200, b"C", delay=0.1))
    with Client(gw.port) as c:
        c.send(build_request("GET", "/a") + build_request("GET", "/b") + build_request("GET", "/c"))
        bodies = [c.read_response().body for _ in range(3)]
        assert bodies == [b"A", b"B", b"C"]
        assert c.request("GET", "/d").body == b"/d"
    assert sorted(q.path for q in up.recorded()) == ["/a", "/b", "/c", "/d"]


def test_pipelined_requests_with_bodies(gateway, upstream):
    gw, up = make(gateway, upstream)
    with Client(gw.port) as c:
        c.send(build_request("POST", "/one", body=b"first")
               + build_request("GET", "/two")
               + build_request("PUT", "/three", [("Transfer-Encoding", "chunked")], b"5\r\nthird\r\n0\r\n\r\n"))
        assert [c.read_response().body for _ in range(3)] == [b"/one", b"/two", b"/three"]
    got = {q.path: q.body for q in up.recorded()}
    assert got == {"/one": b"first", "/two": b"", "/three": b"third"}


def test_http10_without_keepalive_gets_response_then_close(gateway, upstream):
    gw, up = make(gateway, upstream)
    with Client(gw.port) as c:
        c.send(b"GET /old HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"/old", r
        assert not r.header_all("Transfer-Encoding"), "chunked is not HTTP/1.0"
        assert c.wait_closed(3), "connection left open after an HTTP/1.0 response"


def test_http10_without_host_header(gateway, upstream):
    gw, up = make(gateway, upstream)
    with Client(gw.port) as c:
        c.send(b"GET /nohost HTTP/1.0\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"/nohost", r
        assert c.wait_closed(3)


def test_http11_connection_close(gateway, upstream):
    gw, up = make(gateway, upstream)
    with Client(gw.port) as c:
        r = c.request("GET", "/bye", [("Connection", "close")])
        assert r.status == 200 and r.body == b"/bye", r
        assert c.wait_closed(3)


def test_idle_client_connection_closed_after_idle_timeout(gateway, upstream):
    gw, up = make(gateway, upstream, limits={"idle_timeout": "500ms", "header_timeout": "5s"})
    with Client(gw.port) as c:
        assert c.request("GET", "/x").status == 200
        time.sleep(0.2)
        assert c.request("GET", "/y").status == 200, "closed before idle_timeout"
        t0 = time.monotonic()
        assert c.wait_closed(4), "idle connection not closed"
        assert time.monotonic() - t0 >= 0.35


def test_a_busy_connection_serves_its_next_request_after_any_pause(gateway, upstream):
    # Between requests a busy connection first waits in its coroutine, then (quiet for two 100 ms sweeps) without
    # one: a request that comes in either state, or whose head is split across the move, is served the same way.
    gw, up = make(gateway, upstream, limits={"idle_timeout": "1500ms", "header_timeout": "5s"})
    with Client(gw.port) as c:
        for i in range(5):
            assert c.request("GET", f"/busy/{i}").status == 200
        for pause in (0.01, 0.15, 0.35, 0.8):
            time.sleep(pause)
            r = c.request("GET", f"/after/{pause}")
            assert r.status == 200 and r.body == f"/after/{pause}".encode(), r
            assert not r.wants_close(), r
        c.send(b"GET /split HTTP/1.1\r\nHo")
        time.sleep(0.3)
        c.send(b"st: x\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"/split", r
        # The idle timeout still ends it, hot or cold.
        t0 = time.monotonic()
        assert c.wait_closed(5), "idle connection not closed"
        assert time.monotonic() - t0 >= 1.2


def test_concurrent_clients(gateway, upstream):
    gw, up = make(gateway, upstream, workers=2)
    up.default = Dynamic(lambda req: Fixed(200, req.target.encode(), delay=0.05))
    errors = []

    def client(n):
        try:
            with Client(gw.port) as c:
                for i in range(10):
                    r = c.request("GET", f"/c{n}/{i}")
                    if r.body != f"/c{n}/{i}".encode():
                        errors.append(r)
        except Exception as e:  # collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    assert len(up.recorded()) == 80
