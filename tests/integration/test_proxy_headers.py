"""Headers through the proxy: request ids, X-Forwarded-* with and without trusted proxies, hop-by-hop
stripping both ways, and end-to-end headers (duplicates included) passing through unchanged."""

import pytest

from apigw_harness import gateway_config, is_uuid_like, route
from rawhttp import Client, connection_tokens, request
from recording_upstream import Fixed


def one_route_gateway(gateway, upstream, **server):
    up = upstream("api")
    gw = gateway(gateway_config([route("r", "/*rest", "api")], {"api": up}, server=server or None))
    return gw, up


# --- request id -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("rid", ["abc", "A-Za-z0-9._:-", "x" * 128, "7", "req.1:2_3-4"])
def test_valid_request_id_is_kept(gateway, upstream, rid):
    gw, up = one_route_gateway(gateway, upstream)
    r = request(gw.port, "GET", "/a", [("X-Request-Id", rid)])
    assert r.status == 200, r
    assert r.header_all("X-Request-Id") == [rid], r
    assert up.last().header_all("X-Request-Id") == [rid], up.last().headers


@pytest.mark.parametrize("rid", [None, "", "x" * 129, "has space", "semi;colon", "slash/y", "quote\"", "ü-umlaut",
                                 "{braces}"])
def test_invalid_or_missing_request_id_is_replaced(gateway, upstream, rid):
    gw, up = one_route_gateway(gateway, upstream)
    headers = [] if rid is None else [("X-Request-Id", rid)]
    r = request(gw.port, "GET", "/a", headers)
    assert r.status == 200, r
    got = r.header_all("X-Request-Id")
    assert len(got) == 1 and is_uuid_like(got[0]), r
    assert up.last().header_all("X-Request-Id") == got, up.last().headers


def test_generated_request_ids_differ(gateway, upstream):
    gw, up = one_route_gateway(gateway, upstream)
    with Client(gw.port) as c:
        ids = [c.request("GET", "/a").header("X-Request-Id") for _ in range(5)]
    assert all(is_uuid_like(i) for i in ids) and len(set(ids)) == 5, ids
    assert [q.header("X-Request-Id") for q in up.recorded()] == ids


def test_upstream_request_id_does_not_replace_gateway_id(gateway, upstream):
    gw, up = one_route_gateway(gateway, upstream)
    up.default = Fixed(200, b"x", headers=[("X-Request-Id", "from-upstream")])
    r = request(gw.port, "GET", "/a", [("X-Request-Id", "from-client")])
    assert r.header_all("X-Request-Id") == ["from-client"], r


# --- forwarded headers ----------------------------------------------------------------------------------

SPOOFED = [("X-Forwarded-For", "9.9.9.9"), ("X-Forwarded-Proto", "https"),
           ("X-Forwarded-Host", "evil.example"), ("X-Real-IP", "9.9.9.9")]


def test_untrusted_peer_forwarded_headers_replaced(gateway, upstream):
    gw, up = one_route_gateway(gateway, upstream)
    r = request(gw.port, "GET", "/a", [("Host", "gw.example.test")] + SPOOFED)
    assert r.status == 200, r
    seen = up.last()
    assert seen.header_all("X-Forwarded-For") == ["127.0.0.1"], seen.headers
    assert seen.header_all("X-Forwarded-Proto") == ["http"], seen.headers
    assert seen.header_all("X-Forwarded-Host") == ["gw.example.test"], seen.headers
    assert all(v == "127.0.0.1" for v in seen.header_all("X-Real-IP")), seen.headers
    assert seen.header_all("Host") == ["gw.example.test"], seen.headers


def test_untrusted_peer_without_forwarded_headers(gateway, upstream):
    gw, up = one_route_gateway(gateway, upstream, trusted_proxies=["10.0.0.0/8"])
    r = request(gw.port, "GET", "/a", [("Host", "plain.test:8080")] + SPOOFED)
    assert r.status == 200, r
    seen = up.last()
    assert seen.header_all("X-Forwarded-For") == ["127.0.0.1"], seen.headers
    assert seen.header_all("X-Forwarded-Proto") == ["http"], seen.headers
    assert seen.header_all("X-Forwarded-Host") == ["plain.test:8080"], seen.headers
    assert seen.header_all("Host") == ["plain.test:8080"], seen.headers


def test_trusted_peer_forwarded_headers_kept_and_appended(gateway, upstream):
    gw, up = one_route_gateway(gateway, upstream, trusted_proxies=["127.0.0.1/32"])
    r = request(gw.port, "GET", "/a", [("Host", "gw.example.test"), ("X-Forwarded-For", "1.2.3.4"),
                                       ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "public.example"),
                                       ("X-Real-IP", "1.2.3.4")])
    assert r.status == 200, r
    seen = up.last()
    assert seen.header_all("X-Forwarded-For") == ["1.2.3.4, 127.0.0.1"], seen.headers
    assert seen.header_all("X-Forwarded-Proto") == ["https"], seen.headers
    assert seen.header_all("X-Forwarded-Host") == ["public.example"], seen.headers
    assert seen.header_all("X-Real-IP") == ["1.2.3.4"], seen.headers
    assert seen.header_all("Host") == ["gw.example.test"], seen.headers


def test_trusted_peer_without_incoming_forwarded_headers(gateway, upstream):
    gw, up = one_route_gateway(gateway, upstream, trusted_proxies=["127.0.0.1/32"])
    r = request(gw.port, "GET", "/a", [("Host", "gw.example.test")])
    assert r.status == 200, r
    seen = up.last()
    assert seen.header_all("X-Forwarded-For") == ["127.0.0.1"], seen.headers
    assert seen.header_all("X-Forwarded-Proto") == ["http"], seen.headers
    assert seen.header_all("X-Forwarded-Host") == ["gw.example.test"], seen.headers


# --- hop-by-hop and end-to-end headers ------------------------------------------------------------------

REQUEST_HOP = ["x-secret", "keep-alive", "proxy-authorization", "proxy-connection", "proxy-foo", "upgrade", "te",
               "trailer"]


def assert_gateway_connection_header_only(headers):
    extra = connection_tokens(headers) - {"keep-alive", "close"}
    assert not extra, f"Connection names forwarded headers: {headers}"


def test_request_hop_by_hop_headers_stripped(gateway, upstream):
    gw, up = one_route_gateway(gateway, upstream)
    r = request(gw.port, "GET", "/a", [
        ("Connection", "keep-alive, X-Secret"), ("X-Secret", "1"), ("Keep-Alive", "timeout=5"),
        ("Proxy-Authorization", "Basic eDp5"), ("Proxy-Connection", "keep-alive"), ("Proxy-Foo", "bar"),
        ("Upgrade", "websocket"), ("TE", "trailers"), ("Trailer", "X-T"),
        ("X-Foo", "bar"), ("Authorization", "Bearer t")])
    assert r.status == 200, r
    seen = up.last()
    names = seen.header_names_lower()
    assert not names & set(REQUEST_HOP), seen.headers
    assert_gateway_connection_header_only(seen.headers)
    assert seen.header_all("X-Foo") == ["bar"] and seen.header_all("Authorization") == ["Bearer t"], seen.headers


def test_request_connection_named_header_stripped_case_insensitive(gateway, upstream):
    gw, up = one_route_gateway(gateway, upstream)
    r = request(gw.port, "GET", "/a", [("Connection", "X-ONE ,  x-two"), ("x-one", "1"), ("X-Two", "2"),
                                       ("X-Three", "3")])
    assert r.status == 200, r
    seen = up.last()
    assert not seen.header_names_lower() & {"x-one", "x-two"}, seen.headers
    assert seen.header_all("X-Three") == ["3"]


def test_request_end_to_end_headers_pass_with_duplicates(gateway, upstream):
    gw, up = one_route_gateway(gateway, upstream)
    r = request(gw.port, "GET", "/a", [("X-Foo", "bar"), ("X-Multi", "1"), ("Cookie", "a=1"),
                                       ("X-Multi", "2"), ("Accept", "text/plain"), ("X-Empty", "")])
    assert r.status == 200, r
    seen = up.last()
    assert seen.header_all("X-Foo") == ["bar"]
    multi = seen.header_all("X-Multi")
    assert multi in (["1", "2"], ["1, 2"]), seen.headers
    assert seen.header_all("Cookie") == ["a=1"] and seen.header_all("Accept") == ["text/plain"]
    assert seen.header_all("X-Empty") == [""], seen.headers


def test_response_hop_by_hop_headers_stripped(gateway, upstream):
    gw, up = one_route_gateway(gateway, upstream)
    up.default = Fixed(200, b"body", headers=[
        ("Connection", "X-Internal"), ("X-Internal", "1"), ("Keep-Alive", "timeout=5, max=100"),
        ("Proxy-Authenticate", "Basic realm=x"), ("Proxy-Connection", "keep-alive"), ("Upgrade", "h2c"),
        ("Trailer", "X-T"), ("X-Custom", "kept"), ("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; HttpOnly")])
    with Client(gw.port) as c:
        r = c.request("GET", "/a")
        assert r.status == 200 and r.body == b"body", r
        names = {n.lower() for n, _ in r.headers}
        assert not names & {"x-internal", "keep-alive", "proxy-authenticate", "proxy-connection", "upgrade",
                            "trailer"}, r.headers
        assert_gateway_connection_header_only(r.headers)
        assert r.header_all("X-Custom") == ["kept"], r.headers
        assert r.header_all("Set-Cookie") == ["a=1; Path=/", "b=2; HttpOnly"], r.headers
        # and the client connection is still a normal keep-alive connection
        assert c.request("GET", "/b").status == 200


def test_response_transfer_encoding_regenerated(gateway, upstream):
    gw, up = one_route_gateway(gateway, upstream)
    up.on("/chunked", Fixed(chunks=[b"abc", b"defg"], headers=[("X-A", "1")]))
    with Client(gw.port) as c:
        r = c.request("GET", "/chunked")
        assert r.status == 200 and r.body == b"abcdefg", r
        te = r.header_all("Transfer-Encoding")
        assert te in ([], ["chunked"]), r.headers
        assert te or r.header("Content-Length") == "7", r.headers
        assert c.request("GET", "/again").status == 200


def test_host_header_passed_unchanged(gateway, upstream):
    gw, up = one_route_gateway(gateway, upstream)
    for host in ["Example.COM", "example.com:1234", "[::1]:8080"]:
        assert request(gw.port, "GET", "/a", [("Host", host)]).status == 200
        assert up.last().header_all("Host") == [host]
