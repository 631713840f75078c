"""Message bodies through the proxy: Content-Length and chunked requests, chunked and close-delimited
responses, HEAD, 204/304, and upstream error statuses passed through as they are."""

import hashlib

from apigw_harness import gateway_config, route
from rawhttp import Client, build_request, chunked
from recording_upstream import Dynamic, Echo, Fixed, Generate, pattern_bytes, pattern_sha256


def make(gateway, upstream):
    up = upstream("api")
    gw = gateway(gateway_config([route("r", "/*rest", "api")], {"api": up}))
    return gw, up


def test_post_content_length_body_reaches_upstream(gateway, upstream):
    gw, up = make(gateway, upstream)
    body = bytes(range(256)) * 40 + b"\r\n\r\n0\r\n\r\n"
    with Client(gw.port) as c:
        r = c.request("POST", "/upload", [("Content-Type", "application/octet-stream")], body)
        assert r.status == 200, r
    seen = up.last()
    assert (seen.method, seen.body) == ("POST", body)
    assert seen.header_all("Content-Type") == ["application/octet-stream"]


def test_empty_post_body(gateway, upstream):
    gw, up = make(gateway, upstream)
    with Client(gw.port) as c:
        assert c.request("POST", "/empty", body=b"").status == 200
        assert c.request("GET", "/after").status == 200
    assert [(q.path, q.body) for q in up.recorded()] == [("/empty", b""), ("/after", b"")]


def test_chunked_request_body_reaches_upstream(gateway, upstream):
    gw, up = make(gateway, upstream)
    pieces = [b"a", b"bc" * 1000, pattern_bytes(0, 100_000), b"z"]
    with Client(gw.port) as c:
        c.send(build_request("POST", "/chunked", [("Transfer-Encoding", "chunked")]) + chunked(pieces))
        r = c.read_response()
        assert r.status == 200, r
        assert c.request("GET", "/next").status == 200
    seen = up.recorded("/chunked")[0]
    assert seen.body == b"".join(pieces)
    assert not (seen.has_header("Transfer-Encoding") and seen.has_header("Content-Length")), seen.headers


def test_chunked_request_with_extensions_and_uppercase_hex(gateway, upstream):
    gw, up = make(gateway, upstream)
    raw = (build_request("PUT", "/ext", [("Transfer-Encoding", "chunked")])
           + b"A;name=value\r\n0123456789\r\n1;x\r\n!\r\n0\r\n\r\n")
    with Client(gw.port) as c:
        c.send(raw)
        assert c.read_response().status == 200
    assert up.last().body == b"0123456789!"


def test_large_content_length_body_intact(gateway, upstream):
    gw, up = make(gateway, upstream)
    body = pattern_bytes(0, 3 * 1024 * 1024)
    with Client(gw.port) as c:
        assert c.request("POST", "/big", body=body).status == 200
    assert up.last().body_len == len(body)
    assert up.last().body_sha256 == hashlib.sha256(body).hexdigest()


def test_echo_round_trip(gateway, upstream):
    gw, up = make(gateway, upstream)
    up.default = Echo()
    body = pattern_bytes(7, 200_000)
    with Client(gw.port) as c:
        r = c.request("POST", "/echo", body=body)
        assert r.status == 200 and r.body == body
        c.send(build_request("POST", "/echo2", [("Transfer-Encoding", "chunked")]) + chunked([body[:5], body[5:]]))
        r = c.read_response()
        assert r.status == 200 and r.body == body


def test_chunked_response_reaches_client_intact(gateway, upstream):
    gw, up = make(gateway, upstream)
    chunks = [b"x", pattern_bytes(0, 70_000), b"", b"end"]
    up.on("/c", Fixed(chunks=chunks))
    up.on("/g", Generate(2_000_000, chunked=True))
    with Client(gw.port) as c:
        r = c.request("GET", "/c")
        assert r.status == 200 and r.body == b"".join(chunks)
        r = c.request("GET", "/g")
        assert r.status == 200 and hashlib.sha256(r.body).hexdigest() == pattern_sha256(2_000_000)
        assert c.request("GET", "/after").status == 200


def test_close_delimited_upstream_response(gateway, upstream):
    gw, up = make(gateway, upstream)
    up.on("/old", Fixed(200, b"read until the upstream closes", close_delimited=True))
    with Client(gw.port) as c:
        r = c.request("GET", "/old")
        assert r.status == 200 and r.body == b"read until the upstream closes", r
        r = c.request("GET", "/after")
        assert r.status == 200, r


def test_head_response_has_no_body(gateway, upstream):
    gw, up = make(gateway, upstream)
    up.on("/doc", Fixed(200, b"0123456789", headers=[("Content-Type", "text/plain")]))
    up.on("/cdoc", Fixed(200, chunks=[b"abc"]))
    with Client(gw.port) as c:
        r = c.request("HEAD", "/doc")
        assert r.status == 200 and r.body == b"", r
        assert r.header("Content-Length") in (None, "10"), r
        r = c.request("HEAD", "/cdoc")
        assert r.status == 200 and r.body == b"", r
        # anything sent after the head would be read as the next response here
        r = c.request("GET", "/doc")
        assert r.status == 200 and r.body == b"0123456789", r
    assert [q.method for q in up.recorded()] == ["HEAD", "HEAD", "GET"]


def test_204_and_304_have_no_body(gateway, upstream):
    gw, up = make(gateway, upstream)
    up.on("/nc", Fixed(204, headers=[("X-A", "1")]))
    up.on("/nm", Fixed(304, headers=[("ETag", '"v1"')]))
    with Client(gw.port) as c:
        for path, status in [("/nc", 204), ("/nm", 304), ("/nc", 204)]:
            r = c.request("GET", path, [("If-None-Match", '"v1"')])
            assert r.status == status and r.body == b"", r
            assert not r.header_all("Transfer-Encoding"), r
            assert r.header("Content-Length") in (None, "0") or status == 304, r
        r = c.request("GET", "/after")
        assert r.status == 200 and r.body == b"ok", r
    r = up.recorded("/nm")[0]
    assert r.header("If-None-Match") == '"v1"'


def test_upstream_error_statuses_pass_through(gateway, upstream):
    gw, up = make(gateway, upstream)
    up.on("/500", Fixed(500, b"upstream boom", headers=[("Content-Type", "text/plain")]))
    up.on("/404", Fixed(404, b"upstream says no"))
    up.on("/503", Fixed(503, b"busy", headers=[("Retry-After", "3")]))
    up.on("/301", Fixed(301, b"", headers=[("Location", "/elsewhere")]))
    with Client(gw.port) as c:
        r = c.request("GET", "/500")
        assert (r.status, r.body, r.header("Content-Type")) == (500, b"upstream boom", "text/plain"), r
        r = c.request("GET", "/404")
        assert (r.status, r.body) == (404, b"upstream says no"), r
        r = c.request("GET", "/503")
        assert (r.status, r.body, r.header("Retry-After")) == (503, b"busy", "3"), r
        r = c.request("GET", "/301")
        assert (r.status, r.header("Location")) == (301, "/elsewhere"), r
    # a failing upstream status is an answer, not a reason to retry
    assert len(up.recorded("/500")) == 1 and len(up.recorded("/503")) == 1


def test_methods_pass_through(gateway, upstream):
    gw, up = make(gateway, upstream)
    up.default = Dynamic(lambda req: Fixed(200, req.method.encode()))
    with Client(gw.port) as c:
        for m in ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]:
            body = b"b" if m in ("POST", "PUT", "PATCH") else None
            r = c.request(m, "/m", body=body)
            assert r.status == 200 and r.body == m.encode(), (m, r)
    assert [q.method for q in up.recorded()] == ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
