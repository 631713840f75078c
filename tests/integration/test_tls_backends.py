"""TLS to the gateway's own backends: bearer tokens checked in a Redis that serves TLS (`auth.redis.tls`), and in
a Redis Cluster that serves TLS only (its seeds, the masters its slot map names and the nodes MOVED and ASK lead to
are all reached over TLS), and the response cache in Memcached servers that speak only TLS (`cache.primary.tls`,
`cache.secondary.tls`): misses filled, hits answered and every write copied to the secondary, all over TLS; and the
migration audit's records posted to an https:// collector (`migration.audit.tls`, with a client certificate). A
Redis, or a cluster, whose certificate does not verify degrades as one that cannot be reached does; a collector
that does not verify costs its records, never a request. The certificates are
made with `openssl` for the test session."""

import json
import time

import pytest

from apigw_harness import assert_json_error, cached_route, check_config, free_port, gateway_config, route, \
    run_apigw, wait_until, write_config
from memcached_harness import MemcachedServer
from rawhttp import request
from recording_upstream import Fixed, serial, tls_server_context
from redis_harness import RedisCluster, RedisTLS
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


@pytest.fixture(scope="module")
def tls_cluster(certs, tmp_path_factory):
    """Three masters (no replicas) that serve TLS only: no plain port, the cluster bus and MIGRATE over TLS too."""
    with RedisCluster(masters=3, replicas=0, tmpdir=tmp_path_factory.mktemp("tls-cluster"),
                      tls=RedisTLS.from_certs(certs)) as cluster:
        yield cluster


def cluster_auth_config(up, seeds, tls):
    cfg = gateway_config([{**route("me", "/me", "u"), "auth": "required"}], {"u": up})
    # No local cache: every request asks the cluster.
    cfg["auth"] = {"redis": {"nodes": seeds, "cluster": True, "timeout": "500ms", "tls": tls},
                   "cache": {"max_entries": 0}}
    return cfg


def user_of(gw, up, token):
    r = request(gw.port, "GET", "/me", [("Authorization", f"Bearer {token}")])
    if r.status != 200:
        return r.status
    return up.last().header("X-User-Id")


def test_tokens_are_checked_in_a_redis_cluster_served_over_tls(gateway, upstream, tls_cluster, certs):
    cluster = tls_cluster
    assert all(n.cli("CONFIG", "GET", "port").split()[-1] == "0" for n in cluster.nodes), "a node has a plain port"
    owners = cluster.owners()
    users = {}
    on = {}  # master port -> its tokens
    for i in range(12):
        token, user = f"tok-tls-{i:02}", f"user-tls-{i}"
        master = owners[cluster.keyslot(f"session:{token}")]
        assert cluster.node(master).cli("SET", f"session:{token}", user) == "OK"
        users[token] = user
        on.setdefault(master, []).append(token)
    assert len(on) == 3 and all(len(tokens) >= 2 for tokens in on.values()), on
    seed, other, last = cluster.masters()

    # One seed: the slot map comes from it; the other masters are first reached when a lookup needs them.
    up = upstream("u", default=Fixed(200, b"me"))
    gw = gateway(cluster_auth_config(up, [seed.address], {"ca": str(certs.ca)}))
    assert user_of(gw, up, on[seed.port][0]) == users[on[seed.port][0]]
    assert gw.metric('apigw_redis_redirects_total{kind="moved"}') == 0

    # MOVED: a slot of the seed's goes to a master apigw has not connected to yet; the redirection opens TLS there.
    moved = on[seed.port][1]
    cluster.move_slot(cluster.keyslot(f"session:{moved}"), last)
    assert "cmd=get" not in last.cli("CLIENT", "LIST")
    assert user_of(gw, up, moved) == users[moved]
    assert "cmd=get" in last.cli("CLIENT", "LIST")
    assert gw.metric('apigw_redis_redirects_total{kind="moved"}') == 1

    # ASK: a slot in migration whose key is already on the importing master.
    asked = on[other.port][0]
    slot = cluster.keyslot(f"session:{asked}")
    cluster.start_migration(slot, other, last)
    try:
        assert other.cli("MIGRATE", "127.0.0.1", last.port, f"session:{asked}", "0", "5000") == "OK"
        assert user_of(gw, up, asked) == users[asked]
        assert gw.metric('apigw_redis_redirects_total{kind="ask"}') == 1
    finally:
        cluster.finish_migration(slot, other, last)

    # Tokens on every master, then one on none.
    for token, user in users.items():
        assert user_of(gw, up, token) == user, token
    assert_json_error(request(gw.port, "GET", "/me", [("Authorization", "Bearer tok-tls-nobody")]), 401,
                      "unauthorized")
    for master in cluster.masters():
        assert "cmd=get" in master.cli("CLIENT", "LIST"), f"apigw never asked {master.address}"
    assert "TLS handshake failed" not in gw.log()


def test_fleet_control_keeps_its_state_in_a_redis_cluster_served_over_tls(gateway, upstream, tls_cluster, certs):
    old, new = upstream("old"), upstream("new")
    users = route("users", "/users/*rest", "old")
    users["split"] = {"upstream": "new", "percent": "0"}
    cfg = gateway_config([users], {"old": old, "new": new})
    cfg["migration"] = {"affinity": ["header:X-User-Key"]}
    cfg["control"] = {"redis": {"nodes": tls_cluster.seed_addresses(), "cluster": True, "timeout": "500ms",
                                "tls": {"ca": str(certs.ca)}},
                      "fleet": "tls-fleet", "delay": "200ms", "poll": "1s"}
    gws = [gateway(cfg, name=f"gw{i}") for i in range(2)]
    r = run_apigw(["ctl", "-c", str(gws[0].config_path), "set", "users", "split", "100", "--wait", "--json"])
    assert r.rc == 0, r.output
    state = json.loads(r.stdout)["state"]
    for gw in gws:
        view = json.loads(request(gw.admin_port, "GET", "/control").body)
        assert view["version"] == state["version"] and view["redis"] == "ok", view
        assert request(gw.port, "GET", "/users/1", [("X-User-Key", "9999")]).header("X-Upstream-Name") == "new"
    # Every key of the fleet is in one slot (hash tag {tls-fleet}): the state, its history, the heartbeats.
    master = tls_cluster.master_for_key("apigw:control:{tls-fleet}:state")
    assert '"version":%d' % state["version"] in master.cli("GET", "apigw:control:{tls-fleet}:state")
    assert int(master.cli("ZCARD", "apigw:control:{tls-fleet}:instances")) == 2
    status = json.loads(run_apigw(["ctl", "-c", str(gws[1].config_path), "status", "--json"]).stdout)
    assert len(status["instances"]) == 2
    assert gws[0].metric('apigw_tls_certificate_expiry_timestamp_seconds{use="control.redis",file="%s"}'
                         % certs.ca) == 0  # a CA alone: no client certificate to watch
    assert "TLS handshake failed" not in gws[0].log()


def test_a_redis_cluster_whose_certificates_do_not_verify_is_unavailable(gateway, upstream, tls_cluster, certs):
    cluster = tls_cluster
    cluster.cli_cluster("SET", "session:tok-tls-alice", "alice")
    up = upstream("u")
    # A CA that issued none of the nodes' certificates: no seed can be reached, as if none were up.
    seeds = cluster.seed_addresses()
    gw = gateway(cluster_auth_config(up, seeds, {"ca": str(certs.dir / "other-ca.pem")}))
    start = time.monotonic()
    r = request(gw.port, "GET", "/me", [("Authorization", "Bearer tok-tls-alice")])
    assert_json_error(r, 503, "auth_unavailable")
    assert time.monotonic() - start < 1.0
    assert up.recorded() == []
    for seed in seeds:
        assert wait_until(lambda: f"redis {seed}: TLS handshake failed: certificate verify failed" in gw.log()), \
            gw.log()
    assert "redis cluster: slot map refresh failed" in gw.log()
    assert gw.metric("apigw_redis_cluster_map_refreshes_total") == 0
    assert gw.metric('apigw_auth_requests_total{decision="unavailable"}') == 1


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
        # The entry and its resource's version.
        assert len(stored) == 2 and [k.split(":")[1] for k in stored] == ["r2", "v2"], stored
        # The double-write reached the secondary, over TLS too.
        assert wait_until(lambda: secondary[0].keys() == stored), secondary[0].keys()
    finally:
        for server in primary + secondary:
            server.stop()


# --- the migration audit's collector over HTTPS --------------------------------------------------------------

def audit_config(old, new, sink, tls=None):
    r = route("users", "/users/*rest", "old")
    r["shadow"] = {"upstream": "new", "percent": 100}
    cfg = gateway_config([r], {"old": old, "new": new})
    audit = {"sink": sink}
    if tls is not None:
        audit["tls"] = tls
    cfg["migration"] = {"affinity": ["header:X-Device-Id"], "audit": audit}
    return cfg


def settle(gw, series, value):
    assert wait_until(lambda: gw.metric(series) == value, timeout=5), (series, gw.metric(series), gw.log())


def test_audit_records_go_to_an_https_collector_that_requires_a_client_certificate(gateway, upstream, certs):
    old, new = upstream("old"), upstream("new")
    context = tls_server_context(certs.server, certs.server_key, certs.ca)
    sink = upstream("sink", default=Fixed(204), tls=context)
    tls = {"ca": str(certs.ca), "cert": str(certs.client), "key": str(certs.client_key), "sni": "localhost"}
    gw = gateway(audit_config(old, new, f"https://127.0.0.1:{sink.port}/audit/in", tls))
    ids = set()
    for batch in range(2):
        for i in range(10):
            r = request(gw.port, "GET", f"/users/{batch}-{i}", headers=[("X-Device-Id", str(i))])
            assert r.status == 200, r
            ids.add(r.header("X-Request-Id"))
        settle(gw, 'apigw_migration_audit_sink_records_total{outcome="written"}', 10 * (batch + 1))
    posts = sink.recorded()
    assert posts and all(p.method == "POST" and p.path == "/audit/in" for p in posts)
    assert all(p.tls_sni == "localhost" and p.tls_client_cn == "apigw-client" for p in posts), posts
    assert {json.loads(line)["request_id"] for p in posts for line in p.body.decode().splitlines()} == ids
    # Batches share the kept connection.
    assert sink.connections_accepted == 1
    assert gw.metric('apigw_migration_audit_sink_records_total{outcome="failed"}') == 0
    assert gw.metric('apigw_tls_certificate_expiry_timestamp_seconds{use="migration.audit",file="%s"}'
                     % certs.client) > time.time()


def test_an_https_collector_that_does_not_verify_costs_records_not_requests(gateway, upstream, certs):
    old, new = upstream("old"), upstream("new")
    sink = upstream("sink", default=Fixed(204), tls=tls_server_context(certs.server, certs.server_key, None))
    # No tls block: the system's trust anchors, which know nothing of the test CA.
    gw = gateway(audit_config(old, new, f"https://127.0.0.1:{sink.port}/audit/in"))
    for i in range(5):
        assert request(gw.port, "GET", f"/users/{i}", headers=[("X-Device-Id", str(i))]).status == 200
    settle(gw, 'apigw_migration_audit_sink_records_total{outcome="failed"}', 5)
    assert wait_until(lambda: f"audit sink https://127.0.0.1:{sink.port}/audit/in: TLS handshake with "
                              f"127.0.0.1:{sink.port} failed: certificate verify failed" in gw.log()), gw.log()
    assert sink.recorded() == []


def test_check_rejects_audit_tls_beside_a_sink_that_is_not_https(tmp_path, upstream, certs):
    old, new = upstream("old"), upstream("new")
    path = write_config(tmp_path / "apigw.yaml",
                        audit_config(old, new, f"file:{tmp_path}/audit.ndjson", {"ca": str(certs.ca)}))
    rc, out = check_config(path)
    assert rc != 0 and f"{path}:" in out and "migration.audit.tls: applies to an https:// sink only" in out, out
    path = write_config(tmp_path / "apigw.yaml", audit_config(old, new, "https://127.0.0.1/audit"))
    rc, out = check_config(path)
    assert rc != 0 and "an https sink is https://host:port/path" in out, out
