"""TLS to the gateway's own backends: bearer tokens checked in a Redis that serves TLS (`auth.redis.tls`), and
the response cache in Memcached servers that speak only TLS (`cache.primary.tls`, `cache.secondary.tls`): misses
filled, hits answered and every write copied to the secondary, all over TLS. A Redis whose certificate does not
verify degrades as a Redis that cannot be reached does. The certificates are made with `openssl` for the test
session."""

import pytest

from apigw_harness import assert_json_error, cached_route, free_port, gateway_config, route, wait_until
from memcached_harness import MemcachedServer
from rawhttp import request
from recording_upstream import Fixed, serial
from tls_certs import make_certs

STORED = 'apigw_cache_stores_total{result="ok"}'


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


def tls_redis(redis, certs, client_certificates="no"):
    """A redis-server with a TLS port beside its plain one (the harness and the tests' own commands use the plain
    one; apigw is pointed at the TLS one). `client_certificates`: "yes" to require one issued by the test CA."""
    tls_port = free_port()
    server = redis("--tls-port", str(tls_port), "--tls-cert-file", str(certs.server), "--tls-key-file",
                   str(certs.server_key), "--tls-ca-cert-file", str(certs.ca), "--tls-auth-clients",
                   client_certificates)
    server.tls_port = tls_port
    return server


def auth_config(up, server, tls):
    cfg = gateway_config([{**route("me", "/me", "u"), "auth": "required"}], {"u": up})
    cfg["auth"] = {"redis": {"nodes": [f"127.0.0.1:{server.tls_port}"], "timeout": "500ms", "tls": tls}}
    return cfg


def test_tokens_are_checked_in_a_redis_reached_over_mutual_tls(gateway, upstream, redis, certs):
    server = tls_redis(redis, certs, client_certificates="yes")
    server.cli("SET", "session:tok-alice", "alice")
    up = upstream("u", default=Fixed(200, b"me"))
    tls = {"ca": str(certs.ca), "cert": str(certs.client), "key": str(certs.client_key)}
    gw = gateway(auth_config(up, server, tls))
    r = request(gw.port, "GET", "/me", [("Authorization", "Bearer tok-alice")])
    assert r.status == 200, r
    assert up.last().header("X-User-Id") == "alice"
    assert_json_error(request(gw.port, "GET", "/me", [("Authorization", "Bearer tok-nobody")]), 401, "unauthorized")
    # The commands reached Redis through its TLS port.
    clients = server.cli("CLIENT", "LIST")
    assert f"laddr=127.0.0.1:{server.tls_port}" in clients, clients
    assert gw.metric('apigw_tls_certificate_expiry_timestamp_seconds{use="auth.redis",file="%s"}' % certs.client) > 0


def test_a_redis_whose_certificate_does_not_verify_is_unavailable(gateway, upstream, redis, certs):
    server = tls_redis(redis, certs)
    server.cli("SET", "session:tok-alice", "alice")
    up = upstream("u")
    # The server's certificate names localhost and 127.0.0.1; a name it does not cover must fail the check.
    gw = gateway(auth_config(up, server, {"ca": str(certs.ca), "sni": "elsewhere.test"}))
    r = request(gw.port, "GET", "/me", [("Authorization", "Bearer tok-alice")])
    assert_json_error(r, 503, "auth_unavailable")
    assert up.recorded() == []
    assert wait_until(lambda: "redis 127.0.0.1:%d: TLS handshake failed: certificate verify failed" % server.tls_port
                      in gw.log()), gw.log()


def test_the_cache_fills_hits_and_double_writes_over_tls(gateway, upstream, certs):
    pair = (str(certs.server), str(certs.server_key))
    primary = [MemcachedServer(tls=pair), MemcachedServer(tls=pair)]
    secondary = [MemcachedServer(tls=pair)]
    try:
        up = upstream("u", default=serial(headers=[("Cache-Control", "public")]))
        cfg = gateway_config([cached_route("items", "/items/*rest", "u")], {"u": up})
        tls = {"ca": str(certs.ca)}
        cfg["cache"] = {
            "primary": {"servers": [s.address for s in primary], "timeout": "500ms", "tls": tls},
            "secondary": {"servers": [s.address for s in secondary], "timeout": "500ms", "tls": tls},
        }
        gw = gateway(cfg)
        first = request(gw.port, "GET", "/items/1")
        assert first.status == 200 and first.header("X-Cache") == "MISS", first
        assert wait_until(lambda: gw.metric(STORED) == 1), gw.log()
        hit = request(gw.port, "GET", "/items/1")
        assert hit.header("X-Cache") == "HIT" and hit.body == first.body, hit
        assert len(up.recorded()) == 1
        stored = sorted(k for s in primary for k in s.keys())
        assert len(stored) == 1, stored
        # The double-write reached the secondary, over TLS too.
        assert wait_until(lambda: secondary[0].keys() == stored), secondary[0].keys()
    finally:
        for server in primary + secondary:
            server.stop()
