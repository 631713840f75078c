"""Leniencies a strict HTTP/1.1 server must not have, each through the real binary: raw bytes outside ASCII in the
request target (400, nothing upstream; percent-encoded is fine), a chunked body whose trailer section never ends
(bounded by the head size limit and the header timeout, not by idle_timeout), and a listen address another process
already holds (a clear start-up failure, whether or not that process set SO_REUSEPORT)."""

import socket
import time

import pytest

from apigw_harness import HOST, assert_json_error, free_port, gateway_config, route, run_apigw, write_config
from rawhttp import Client, parse_response_head, read_all_until_close, request

LIMITS = {"max_header_bytes": "4KiB", "header_timeout": "1s", "idle_timeout": "30s"}
CODES = {400: "bad_request", 408: "request_timeout", 431: "header_fields_too_large"}


@pytest.fixture
def gw_up(gateway, upstream):
    up = upstream("api")
    gw = gateway(gateway_config([route("r", "/*rest", "api")], {"api": up}, limits=LIMITS))
    return gw, up


def chunked_post_head(target="/upload"):
    return (f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n").encode()


# --- 7. raw bytes outside ASCII in the request target ------------------------------------------------------

@pytest.mark.parametrize("target", [b"/\xc3\x9c", b"/x?q=\xff", b"/caf\xe9/menu"], ids=["utf8-path", "query", "latin1"])
def test_raw_non_ascii_bytes_in_the_target_are_refused(gw_up, target):
    gw, up = gw_up
    with Client(gw.port, timeout=5) as c:
        c.send(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
    assert_json_error(r, 400, "bad_request")
    time.sleep(0.2)
    assert up.recorded() == [], f"forwarded upstream: {[(q.method, q.target) for q in up.recorded()]}"
    # The gateway still serves, and the percent-encoded form of the same target is forwarded as sent.
    ok = request(gw.port, "GET", "/%C3%9C")
    assert ok.status == 200, ok
    assert [q.target for q in up.recorded()] == ["/%C3%9C"]


# --- 8. a trailer section that never ends ------------------------------------------------------------------

def test_an_endless_trailer_section_is_answered_by_the_head_size_limit(gw_up):
    gw, up = gw_up
    line = b"X-T: " + b"a" * 95 + b"\r\n"  # 102 bytes
    trailer = line * 80                      # ~8 KiB, twice max_header_bytes; the final CRLF never comes
    with Client(gw.port, timeout=5) as c:
        t0 = time.monotonic()
        c.send(chunked_post_head() + b"5\r\nhello\r\n0\r\n" + trailer)
        try:
            r = c.read_response("POST")
        except (socket.timeout, TimeoutError):
            pytest.fail("no answer within 5s to a trailer section twice max_header_bytes (idle_timeout 30s)")
        elapsed = time.monotonic() - t0
        assert_json_error(r, 431, CODES[431])
        assert c.wait_closed(3), "connection still open 3s after the 431"
    assert elapsed < 2.0, f"the 431 came after {elapsed:.2f}s: the limit should answer at once"
    time.sleep(0.2)
    assert up.recorded() == [], "the upstream received a complete request with an over-limit trailer"
    assert request(gw.port, "GET", "/ok").status == 200


def test_an_unfinished_trailer_section_ends_at_the_header_timeout(gw_up):
    gw, up = gw_up
    header_timeout = 1.0
    with Client(gw.port, timeout=10) as c:
        c.send(chunked_post_head() + b"5\r\nhello\r\n0\r\nX-T: a\r\n")
        t0 = time.monotonic()
        data, closed = read_all_until_close(c.sock, header_timeout + 8)
        elapsed = time.monotonic() - t0
    assert closed, f"connection still open {header_timeout + 8:.0f}s into an unfinished trailer (idle_timeout 30s)"
    assert elapsed <= header_timeout + 3, \
        f"closed after {elapsed:.2f}s with header_timeout {header_timeout}s: the trailer waited for something else"
    assert elapsed >= header_timeout * 0.5, f"closed after only {elapsed:.2f}s, before the header timeout"
    if data:
        head = parse_response_head(data[: data.index(b"\r\n\r\n") + 4])
        assert head.status == 408, f"an unfinished trailer got {data[:300]!r}, expected 408 (or a plain close)"
    time.sleep(0.2)
    assert up.recorded() == [], "the upstream received a complete request from an unfinished trailer"
    assert request(gw.port, "GET", "/ok").status == 200


# --- 9. a listen address already in use --------------------------------------------------------------------

def occupy(port, reuse_port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if reuse_port:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((HOST, port))
    s.listen(16)
    return s


@pytest.mark.parametrize("reuse_port", [True, False], ids=["holder-sets-SO_REUSEPORT", "plain-holder"])
def test_a_listen_address_in_use_fails_at_start_up(tmp_path, gateway, upstream, reuse_port):
    up = upstream("api")
    port = free_port()
    cfg = gateway_config([route("r", "/*rest", "api")], {"api": up},
                         server={"listen": f"{HOST}:{port}", "workers": 2})
    cfg["admin"] = {"listen": f"{HOST}:{free_port()}"}
    path = write_config(tmp_path / "apigw.yaml", cfg)

    holder = occupy(port, reuse_port)
    try:
        started = time.monotonic()
        try:
            r = run_apigw(["-c", str(path)], timeout=10)  # killed by its PID when it does not exit
        except TimeoutError as e:
            r, still_running = None, str(e)
        took = time.monotonic() - started
        assert r is not None, f"apigw kept running on {HOST}:{port}, which another socket listens on: {still_running}"
        assert r.rc != 0, f"apigw exited {r.rc} on a port in use: {r.output}"
        assert "already in use" in r.output and f"{HOST}:{port}" in r.output, \
            f"the start-up error does not say that {HOST}:{port} is already in use: {r.output!r}"
        assert took < 8, f"apigw took {took:.1f}s to give up"
    finally:
        holder.close()

    gw = gateway(cfg)
    assert request(gw.port, "GET", "/after").status == 200
    assert [q.path for q in up.recorded()] == ["/after"]
