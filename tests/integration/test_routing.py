"""Routing: templates, precedence (static > :param > *wildcard whatever the order), hosts, 404, 405 with
Allow, strip_prefix rewrites, the JSON error shape and the debug headers."""

import pytest

from apigw_harness import assert_json_error, free_port, gateway_config, route
from rawhttp import Client, build_request, request

PRECEDENCE_ROUTES = [
    route("users_any", "/users/*rest", "api"),
    route("user_by_id", "/users/:id", "api"),
    route("user_me", "/users/me", "api"),
]


@pytest.mark.parametrize("order", ["wildcard_first", "static_first"])
def test_precedence_static_param_wildcard(gateway, upstream, order):
    up = upstream("api")
    routes = PRECEDENCE_ROUTES if order == "wildcard_first" else list(reversed(PRECEDENCE_ROUTES))
    gw = gateway(gateway_config(routes, {"api": up}))
    with Client(gw.port) as c:
        for target, name in [("/users/me", "user_me"), ("/users/42", "user_by_id"),
                             ("/users/42/posts", "users_any"), ("/users/me/x/y", "users_any"),
                             ("/users/meme", "user_by_id")]:
            r = c.request("GET", target)
            assert r.status == 200, (target, r)
            assert r.header("X-Apigw-Route") == name, (target, r)
            assert r.header("X-Apigw-Upstream") == "api", (target, r)
            assert up.last().target == target


def test_wildcard_and_param_templates(gateway, upstream):
    up = upstream("files")
    gw = gateway(gateway_config([route("files", "/files/*rest", "files"),
                                 route("order_item", "/orders/:order/items/:item", "files")], {"files": up}))
    with Client(gw.port) as c:
        r = c.request("GET", "/files/a/b/c.txt?download=1")
        assert r.status == 200 and r.header("X-Apigw-Route") == "files", r
        assert up.last().target == "/files/a/b/c.txt?download=1"
        r = c.request("GET", "/orders/12/items/34")
        assert r.status == 200 and r.header("X-Apigw-Route") == "order_item", r
        # a :param matches exactly one segment
        r = c.request("GET", "/orders/12/items/34/extra")
        assert_json_error(r, 404, "not_found")
        r = c.request("GET", "/orders/12/items")
        assert_json_error(r, 404, "not_found")
    assert [q.target for q in up.recorded()] == ["/files/a/b/c.txt?download=1", "/orders/12/items/34"]


def test_no_route_is_404_json(gateway, upstream):
    up = upstream("api")
    gw = gateway(gateway_config([route("only", "/only", "api")], {"api": up}))
    r = request(gw.port, "GET", "/nothing/here")
    doc = assert_json_error(r, 404, "not_found")
    assert doc["request_id"]
    assert not r.has_header("X-Apigw-Route")
    assert up.recorded() == []


def test_method_not_allowed_405_with_sorted_allow(gateway, upstream):
    up = upstream("api")
    gw = gateway(gateway_config([route("items", "/items/:id", "api", methods=["PUT", "GET", "DELETE"])],
                                {"api": up}))
    r = request(gw.port, "POST", "/items/1", body=b"x")
    assert_json_error(r, 405, "method_not_allowed")
    assert r.header("Allow") == "DELETE, GET, PUT", r
    # No route served a 405 (several routes may share the path with other methods): no route headers.
    assert not r.has_header("X-Apigw-Route"), r
    assert not r.has_header("X-Apigw-Upstream"), r
    r = request(gw.port, "PUT", "/items/1", body=b"x")
    assert r.status == 200, r
    assert [(q.method, q.target) for q in up.recorded()] == [("PUT", "/items/1")]


def test_405_connection_stays_usable(gateway, upstream):
    up = upstream("api")
    gw = gateway(gateway_config([route("items", "/items", "api", methods=["GET"])], {"api": up}))
    with Client(gw.port) as c:
        r = c.request("DELETE", "/items")
        assert r.status == 405 and r.header("Allow") == "GET", r
        r = c.request("GET", "/items")
        assert r.status == 200, r


def test_host_matching_ignores_port(gateway, upstream):
    up = upstream("api")
    gw = gateway(gateway_config([route("api_host", "/h", "api", host="api.example.test"),
                                 route("other", "/other", "api")], {"api": up}))
    for host in ["api.example.test", "api.example.test:8443"]:
        r = request(gw.port, "GET", "/h", [("Host", host)])
        assert r.status == 200 and r.header("X-Apigw-Route") == "api_host", (host, r)
        assert up.last().header("Host") == host
    for host in ["www.example.test", "api.example.test.evil", "127.0.0.1"]:
        r = request(gw.port, "GET", "/h", [("Host", host)])
        assert_json_error(r, 404, "not_found")
    # a route without match.host matches any Host
    r = request(gw.port, "GET", "/other", [("Host", "whatever.test")])
    assert r.status == 200 and r.header("X-Apigw-Route") == "other", r
    assert len(up.recorded()) == 3


def test_strip_prefix_rewrite(gateway, upstream):
    up = upstream("api")
    gw = gateway(gateway_config([route("v1_root", "/v1", "api", strip_prefix="/v1"),
                                 route("v1", "/v1/*rest", "api", strip_prefix="/v1"),
                                 route("plain", "/plain/*rest", "api")], {"api": up}))
    with Client(gw.port) as c:
        for sent, seen in [("/v1/users/7", "/users/7"), ("/v1/users/7?x=1&y=%20z", "/users/7?x=1&y=%20z"),
                           ("/v1", "/"), ("/v1?q=1", "/?q=1"), ("/plain/a/b?c=d", "/plain/a/b?c=d")]:
            r = c.request("GET", sent)
            assert r.status == 200, (sent, r)
            assert up.last().target == seen, (sent, up.last().target)


def test_error_request_id_matches_header_and_client_id(gateway, upstream):
    up = upstream("api")
    gw = gateway(gateway_config([route("r", "/r", "api")], {"api": up}))
    r = request(gw.port, "GET", "/missing", [("X-Request-Id", "client-id-1")])
    doc = assert_json_error(r, 404, "not_found")
    assert doc["request_id"] == "client-id-1" and r.header("X-Request-Id") == "client-id-1"


def test_debug_headers_off(gateway, upstream):
    up = upstream("api")
    gw = gateway(gateway_config([route("r", "/r", "api", methods=["GET"]),
                                 route("down", "/down", "dead")],
                                {"api": up, "dead": {"endpoints": [free_port()], "connect_timeout": "200ms",
                                                     "retries": {"attempts": 0}}},
                                server={"debug_headers": False}))
    with Client(gw.port) as c:
        r = c.request("GET", "/r")
        assert r.status == 200, r
        r405 = c.request("POST", "/r", body=b"")
        assert r405.status == 405, r405
        r502 = c.request("GET", "/down")
        assert r502.status == 502, r502
    for resp in (r, r405, r502):
        assert not resp.has_header("X-Apigw-Route"), resp
        assert not resp.has_header("X-Apigw-Upstream"), resp
        assert resp.header("X-Request-Id"), resp


def test_debug_headers_on_5xx_of_matched_route(gateway, upstream):
    gw = gateway(gateway_config([route("down", "/down", "dead")],
                                {"dead": {"endpoints": [free_port()], "connect_timeout": "200ms",
                                          "retries": {"attempts": 0}}}))
    r = request(gw.port, "GET", "/down")
    assert_json_error(r, 502, "bad_gateway")
    assert r.header("X-Apigw-Route") == "down" and r.header("X-Apigw-Upstream") == "dead", r


def test_absolute_form_target_is_routed(gateway, upstream):
    up = upstream("api")
    gw = gateway(gateway_config([route("users", "/users/:id", "api")], {"api": up}))
    with Client(gw.port) as c:
        c.send(build_request("GET", "http://api.example.test/users/1?x=2", host="api.example.test"))
        r = c.read_response()
    assert r.status == 200 and r.header("X-Apigw-Route") == "users", r
    assert up.last().path == "/users/1" and up.last().query == "x=2", up.last().target
