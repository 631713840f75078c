"""Upstream failures become the right gateway answers: refused → 502, hang → 504 after `timeout`, reset,
close or garbage → 502, a reset mid-body → a truncated response, a full pool → 503 after connect_timeout."""

import threading
import time

import pytest

from apigw_harness import assert_json_error, free_port, gateway_config, route
from rawhttp import Client, TruncatedResponse, ConnectionClosed, request
from recording_upstream import Close, Fixed, Garbage, Hang, Reset, ResetMidBody

FAST = {"connect_timeout": "200ms", "timeout": "1s", "retries": {"attempts": 0}}


def make(gateway, endpoints, **upstream_cfg):
    cfg = {**FAST, **upstream_cfg, "endpoints": endpoints}
    return gateway(gateway_config([route("r", "/*rest", "back")], {"back": cfg}))


def test_nothing_listening_is_502_quickly(gateway):
    gw = make(gateway, [free_port()])
    t0 = time.monotonic()
    r = request(gw.port, "GET", "/x")
    elapsed = time.monotonic() - t0
    assert_json_error(r, 502, "bad_gateway")
    assert r.header("X-Apigw-Route") == "r" and r.header("X-Apigw-Upstream") == "back", r
    assert elapsed < 1.0, f"502 took {elapsed:.2f}s"


def test_hanging_upstream_is_504_after_timeout(gateway, upstream):
    up = upstream("hang", default=Hang())
    gw = make(gateway, [up])
    t0 = time.monotonic()
    r = request(gw.port, "GET", "/x", timeout=10)
    elapsed = time.monotonic() - t0
    assert_json_error(r, 504, "gateway_timeout")
    assert r.header("X-Apigw-Route") == "r" and r.header("X-Apigw-Upstream") == "back", r
    assert 1.0 <= elapsed <= 2.5, f"504 after {elapsed:.2f}s with timeout 1s"
    assert len(up.recorded()) == 1


def test_timeout_covers_a_stalled_body(gateway, upstream):
    # the head arrives at once but the body stalls: `timeout` covers the whole response, so the client gets
    # a 504 (if nothing was sent yet) or a cut response, about `timeout` after the request, never a hang
    up = upstream("stall", default=ResetMidBody(total=100_000, sent=1000, then="hang"))
    gw = make(gateway, [up])
    with Client(gw.port, timeout=10) as c:
        t0 = time.monotonic()
        c.send(b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        try:
            r = c.read_response()
            assert r.status == 504, f"stalled body answered with {r!r}"
        except (TruncatedResponse, ConnectionClosed):
            assert c.wait_closed(3)
        elapsed = time.monotonic() - t0
    assert 0.9 <= elapsed <= 2.5, f"stalled upstream body ended after {elapsed:.2f}s with timeout 1s"


@pytest.mark.parametrize("fault", [Reset(), Close(), Garbage()], ids=["reset", "close", "garbage"])
def test_broken_upstream_answers_are_502(gateway, upstream, fault):
    up = upstream("bad", default=fault)
    gw = make(gateway, [up])
    with Client(gw.port) as c:
        r = c.request("GET", "/x")
        assert_json_error(r, 502, "bad_gateway")
        assert r.header("X-Apigw-Upstream") == "back", r
    assert len(up.recorded()) == 1


def test_reset_mid_body_truncates_client_response(gateway, upstream):
    up = upstream("mid", default=ResetMidBody(total=200_000, sent=20_000))
    gw = make(gateway, [up], timeout="5s")
    with Client(gw.port) as c:
        c.send(b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        try:
            r = c.read_response()
        except TruncatedResponse as e:
            assert e.response.status == 200 and len(e.response.body) < 200_000
        except ConnectionClosed:
            pass  # closed before any byte: also not a complete 200
        else:
            assert not (r.status == 200 and len(r.body) == 200_000), "complete 200 from a reset upstream"
            assert r.status == 502, r
        assert c.wait_closed(3), "client connection left open after a truncated response"


def test_reset_mid_chunked_body_does_not_send_last_chunk(gateway, upstream):
    up = upstream("midc", default=ResetMidBody(sent=20_000, chunked=True))
    gw = make(gateway, [up], timeout="5s")
    with Client(gw.port) as c:
        c.send(b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        try:
            r = c.read_response()
        except (TruncatedResponse, ConnectionClosed):
            pass
        else:
            assert r.status == 502, f"a cut upstream body was completed: {r!r}"
        assert c.wait_closed(3)


def test_gateway_recovers_after_upstream_faults(gateway, upstream):
    up = upstream("mixed")
    up.on("/reset", Reset()).on("/garbage", Garbage())
    gw = make(gateway, [up])
    with Client(gw.port) as c:
        for _ in range(3):
            assert c.request("GET", "/reset").status == 502
            assert c.request("GET", "/garbage").status == 502
            r = c.request("GET", "/fine")
            assert r.status == 200 and r.body == b"ok", r


def test_pool_full_gets_503_after_connect_timeout(gateway, upstream):
    up = upstream("slow", default=Fixed(200, b"slow", delay=1.0))
    gw = make(gateway, [up], max_connections=1, timeout="5s")
    first = {}

    def first_request():
        first["resp"] = request(gw.port, "GET", "/first", timeout=10)
        first["done"] = time.monotonic()

    t = threading.Thread(target=first_request)
    t.start()
    try:
        assert up.wait_for_requests(1, timeout=5), "first request never reached the upstream"
        t0 = time.monotonic()
        r = request(gw.port, "GET", "/second", timeout=10)
        elapsed = time.monotonic() - t0
    finally:
        t.join(15)
    assert_json_error(r, 503, "service_unavailable")
    assert r.header("X-Apigw-Route") == "r" and r.header("X-Apigw-Upstream") == "back", r
    assert 0.15 <= elapsed <= 0.8, f"503 after {elapsed:.2f}s; connect_timeout is 200ms and the first request " \
                                   f"holds the only connection for 1s"
    assert first["resp"].status == 200 and first["resp"].body == b"slow"
    assert [q.path for q in up.recorded()] == ["/first"]


def test_pool_connection_released_after_response(gateway, upstream):
    up = upstream("one", default=Fixed(200, b"x", delay=0.1))
    gw = make(gateway, [up], max_connections=1)
    for i in range(5):
        assert request(gw.port, "GET", f"/{i}").status == 200
    assert up.connections_accepted == 1
