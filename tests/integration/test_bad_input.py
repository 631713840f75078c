"""Malformed, oversized and slow client input, each through the real binary: the right status and JSON
error, the connection closed, and nothing (complete) reaching the upstream."""

import threading
import time

import pytest

from apigw_harness import assert_json_error, gateway_config, route
from rawhttp import Client, build_request, chunked, read_all_until_close, parse_response_head, request

LIMITS = {"max_uri_bytes": "1KiB", "max_header_bytes": "4KiB", "max_body_bytes": "1KiB",
          "header_timeout": "1s", "idle_timeout": "5s"}


@pytest.fixture
def gw_up(gateway, upstream):
    up = upstream("api")
    gw = gateway(gateway_config([route("r", "/*rest", "api")], {"api": up}, limits=LIMITS))
    return gw, up


def H(extra: bytes = b"", line: bytes = b"GET /x HTTP/1.1") -> bytes:
    return line + b"\r\nHost: 127.0.0.1\r\n" + extra + b"\r\n"


CASES = [
    ("malformed_request_line", b"GARBAGE\r\n\r\n", 400),
    ("request_line_missing_version", b"GET /x\r\nHost: a\r\n\r\n", 400),
    ("header_without_colon", H(b"NoColonHere\r\n"), 400),
    ("content_length_and_transfer_encoding",
     H(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"POST /x HTTP/1.1") + b"5\r\nhello\r\n0\r\n\r\n", 400),
    ("two_different_content_lengths",
     H(b"Content-Length: 5\r\nContent-Length: 6\r\n", b"POST /x HTTP/1.1") + b"hello!", 400),
    ("non_numeric_content_length", H(b"Content-Length: 5x\r\n", b"POST /x HTTP/1.1") + b"hello", 400),
    ("obs_fold", H(b"X-A: 1\r\n  continued\r\n"), 400),
    ("nul_in_header_value", H(b"X-A: a\x00b\r\n"), 400),
    ("bare_cr_in_header", H(b"X-A: a\rb\r\n"), 400),
    ("bare_lf_line_endings", b"GET /x HTTP/1.1\nHost: 127.0.0.1\nX-A: 1\n\n", 400),
    ("transfer_encoding_gzip",
     H(b"Transfer-Encoding: gzip\r\n", b"POST /x HTTP/1.1") + b"5\r\nhello\r\n0\r\n\r\n", 400),
    ("target_without_leading_slash", H(line=b"GET foo/bar HTTP/1.1"), 400),
    ("dotdot_escaping_root", H(line=b"GET /../etc/passwd HTTP/1.1"), 400),
    ("dotdot_escaping_root_deeper", H(line=b"GET /a/../../etc/passwd HTTP/1.1"), 400),
    ("uri_too_long", H(line=b"GET /" + b"u" * 2000 + b" HTTP/1.1"), 414),
    ("query_too_long", H(line=b"GET /x?q=" + b"q" * 2000 + b" HTTP/1.1"), 414),
    ("header_too_large", H(b"X-Big: " + b"h" * 6000 + b"\r\n"), 431),
    ("many_headers_too_large", H(b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 90) for i in range(60))), 431),
    ("content_length_over_limit", H(b"Content-Length: 1000000\r\n", b"POST /x HTTP/1.1"), 413),
]

CODES = {400: "bad_request", 408: "request_timeout", 413: "payload_too_large", 414: "uri_too_long",
         431: "header_fields_too_large"}


def assert_rejected_and_closed(c: Client, status: int):
    r = c.read_response()
    assert_json_error(r, status, CODES[status])
    closed = c.wait_closed(3)
    problems = [] if closed else [f"connection still open 3s after a {status}"]
    if not r.wants_close():
        problems.append(f"no Connection: close header on a {status}: {r.headers}")
    assert not problems, "; ".join(problems)
    return r


@pytest.mark.parametrize("name,raw,status", CASES, ids=[c[0] for c in CASES])
def test_bad_request_rejected(gw_up, name, raw, status):
    gw, up = gw_up
    with Client(gw.port, timeout=5) as c:
        t0 = time.monotonic()
        c.send(raw)
        assert_rejected_and_closed(c, status)
        # a limit or parse error is answered at once, never by waiting for the header timeout
        assert time.monotonic() - t0 < 0.9, "answered only after the header timeout"
    time.sleep(0.2)
    assert up.recorded() == [], [(q.method, q.target) for q in up.recorded()]
    # and the gateway still serves
    assert request(gw.port, "GET", "/ok").status == 200


def test_invalid_chunk_size(gw_up):
    gw, up = gw_up
    with Client(gw.port, timeout=5) as c:
        c.send(H(b"Transfer-Encoding: chunked\r\n", b"POST /x HTTP/1.1") + b"5\r\nhello\r\nzz\r\nmore\r\n0\r\n\r\n")
        assert_rejected_and_closed(c, 400)
    time.sleep(0.3)
    assert up.recorded() == [], "upstream received a complete request from a broken chunked body"
    assert request(gw.port, "GET", "/ok").status == 200


def test_chunked_body_growing_over_limit(gw_up):
    gw, up = gw_up
    pieces = [b"c" * 512] * 8  # 4 KiB > max_body_bytes 1 KiB
    with Client(gw.port, timeout=5) as c:
        c.send(H(b"Transfer-Encoding: chunked\r\n", b"POST /x HTTP/1.1") + chunked(pieces))
        assert_rejected_and_closed(c, 413)
    time.sleep(0.3)
    assert up.recorded() == [], "upstream received a complete over-limit request"


def test_body_at_limit_is_accepted(gw_up):
    gw, up = gw_up
    with Client(gw.port) as c:
        assert c.request("POST", "/x", body=b"b" * 1024).status == 200
        c.send(build_request("POST", "/y", [("Transfer-Encoding", "chunked")]) + chunked([b"b" * 512, b"b" * 512]))
        assert c.read_response().status == 200
    assert [q.body_len for q in up.recorded()] == [1024, 1024]


def test_slow_headers_get_408(gw_up):
    gw, up = gw_up
    data = b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"s" * 100 + b"\r\n\r\n"
    stop = threading.Event()
    with Client(gw.port, timeout=6) as c:
        def trickle():
            for i in range(len(data)):
                if stop.is_set():
                    return
                try:
                    c.sock.send(data[i:i + 1])
                except OSError:
                    return
                stop.wait(0.3)

        t = threading.Thread(target=trickle, daemon=True)
        t0 = time.monotonic()
        t.start()
        try:
            r = c.read_response()
            elapsed = time.monotonic() - t0
            assert_json_error(r, 408, "request_timeout")
            assert r.wants_close(), r
            assert c.wait_closed(3)
            assert 0.8 <= elapsed <= 3.0, f"408 after {elapsed:.2f}s with header_timeout 1s"
        finally:
            stop.set()
            t.join(5)
    assert up.recorded() == []


def test_silent_connection_closed_after_header_timeout(gw_up):
    gw, up = gw_up
    with Client(gw.port, timeout=6) as c:
        t0 = time.monotonic()
        data, closed = read_all_until_close(c.sock, 6)
        elapsed = time.monotonic() - t0
    assert closed, "silent connection still open after 6s (header_timeout 1s)"
    assert 0.8 <= elapsed <= 3.5, f"closed after {elapsed:.2f}s with header_timeout 1s"
    if data:
        head = data[: data.index(b"\r\n\r\n") + 4]
        assert parse_response_head(head).status == 408, data[:200]


def test_client_disconnecting_mid_body(gw_up):
    gw, up = gw_up
    with Client(gw.port) as c:
        c.send(H(b"Content-Length: 1000\r\n", b"POST /partial HTTP/1.1") + b"p" * 500)
        time.sleep(0.2)
    # the gateway keeps serving, and the upstream never sees a complete /partial request
    with Client(gw.port) as c:
        for i in range(3):
            assert c.request("GET", f"/ok{i}").status == 200
    time.sleep(0.3)
    assert [q.path for q in up.recorded()] == ["/ok0", "/ok1", "/ok2"]


def test_bad_request_after_good_one_on_same_connection(gw_up):
    gw, up = gw_up
    with Client(gw.port) as c:
        assert c.request("GET", "/first").status == 200
        c.send(b"GET /second HTTP/1.1\r\nHost: 127.0.0.1\r\nBroken header\r\n\r\n")
        assert_rejected_and_closed(c, 400)
    assert [q.path for q in up.recorded()] == ["/first"]


def test_nothing_after_rejected_request_is_processed(gw_up):
    gw, up = gw_up
    with Client(gw.port) as c:
        c.send(b"GARBAGE\r\n\r\n" + build_request("GET", "/smuggled"))
        assert_rejected_and_closed(c, 400)
    time.sleep(0.2)
    assert up.recorded() == []
