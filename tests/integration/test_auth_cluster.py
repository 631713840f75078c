"""Token lookups against a real Redis Cluster (3 masters, 3 replicas, created with redis-cli --cluster create):
keys are found on whichever master holds their slot, a resharded slot (MOVED) and a slot in migration (ASK) are
followed, and a killed master answers per on_error until its replica is promoted, then recovers without a
restart. The cluster is shared by the tests of this file, which run in order (the last one kills a master)."""

import time

import pytest

from apigw_harness import assert_json_error, gateway_config, route, wait_until
from rawhttp import request
from recording_upstream import Fixed
from redis_harness import RedisCluster

TOKENS = {f"tok-{i:03}": f"user-{i}" for i in range(60)}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = RedisCluster(masters=3, replicas=1, tmpdir=tmp_path_factory.mktemp("cluster"))
    for token, user in TOKENS.items():
        c.cli_cluster("SET", f"session:{token}", user)
    yield c
    c.stop()


def cluster_config(upstream, seeds, **auth_over):
    cfg = gateway_config([{**route("me", "/me", "u"), "auth": "required"}], {"u": upstream})
    # No local cache: every request asks the cluster, so each one shows where the lookup went.
    cfg["auth"] = {"redis": {"nodes": seeds, "cluster": True, "timeout": "200ms"}, "cache": {"max_entries": 0}}
    cfg["auth"].update(auth_over)
    return cfg


def user_of(gw, up, token):
    r = request(gw.port, "GET", "/me", [("Authorization", f"Bearer {token}")])
    if r.status != 200:
        return r.status
    return up.recorded()[-1].header("X-User-Id")


def slot_masters(cluster, key):
    """(slot, the master holding it, another master)."""
    slot = cluster.keyslot(key)
    source = cluster.master_for_key(key)
    target = next(m for m in cluster.masters() if m.port != source.port)
    return slot, source, target


def node_id(node):
    return node.cli("CLUSTER", "MYID").strip()


def start_migration(slot, source, target):
    target.cli("CLUSTER", "SETSLOT", str(slot), "IMPORTING", node_id(source))
    source.cli("CLUSTER", "SETSLOT", str(slot), "MIGRATING", node_id(target))


def finish_migration(cluster, slot, source, target):
    """Moves the rest of the slot's keys and gives the slot to `target` on every master."""
    for k in source.cli("CLUSTER", "GETKEYSINSLOT", str(slot), "1000").split():
        source.cli("MIGRATE", "127.0.0.1", str(target.port), k, "0", "5000")
    for master in cluster.masters():
        master.cli("CLUSTER", "SETSLOT", str(slot), "NODE", node_id(target))
    cluster.wait_ok()


def serving(cluster, gateway, upstream, token):
    """A gateway on the cluster that has looked `token` up once, so that it holds the slot map."""
    up = upstream(default=Fixed(200, b"ok"))
    gw = gateway(cluster_config(up, cluster.seed_addresses()))
    assert user_of(gw, up, token) == TOKENS[token]
    return gw, up


def test_every_master_serves_its_slots(cluster, gateway, upstream):
    up = upstream(default=Fixed(200, b"ok"))
    # The first seed is not a Redis at all: discovery goes on with the next.
    dead_seed = "127.0.0.1:1"
    gw = gateway(cluster_config(up, [dead_seed] + cluster.seed_addresses()[:2]))
    owners = {cluster.master_for_key(f"session:{t}").port for t in TOKENS}
    assert len(owners) == 3, "the tokens should spread over all masters"
    for token, user in TOKENS.items():
        assert user_of(gw, up, token) == user, token
    assert user_of(gw, up, "tok-none") == 401
    assert gw.metric("apigw_redis_cluster_map_refreshes_total") >= 1
    assert gw.metric('apigw_redis_redirects_total{kind="moved"}') == 0


def test_all_seeds_down_answers_503_quickly(gateway, upstream):
    up = upstream(default=Fixed(200, b"ok"))
    gw = gateway(cluster_config(up, ["127.0.0.1:1", "127.0.0.1:2"]))
    start = time.monotonic()
    r = request(gw.port, "GET", "/me", [("Authorization", "Bearer tok-001")])
    assert_json_error(r, 503, "auth_unavailable")
    assert time.monotonic() - start < 1.0


def test_resharded_slot_is_followed_through_moved(cluster, gateway, upstream):
    token = "tok-007"
    key = f"session:{token}"
    gw, up = serving(cluster, gateway, upstream, token)

    slot, source, target = slot_masters(cluster, key)
    start_migration(slot, source, target)
    finish_migration(cluster, slot, source, target)
    assert cluster.master_for_key(key).port == target.port

    assert user_of(gw, up, token) == TOKENS[token]
    assert gw.metric('apigw_redis_redirects_total{kind="moved"}') >= 1
    # The map was refreshed: later lookups go straight to the new owner.
    moved = gw.metric('apigw_redis_redirects_total{kind="moved"}')
    assert wait_until(lambda: gw.metric("apigw_redis_cluster_map_refreshes_total") >= 2, timeout=5)
    for _ in range(5):
        assert user_of(gw, up, token) == TOKENS[token]
    assert gw.metric('apigw_redis_redirects_total{kind="moved"}') == moved


def test_slot_in_migration_is_followed_through_ask(cluster, gateway, upstream):
    token = "tok-021"
    key = f"session:{token}"
    gw, up = serving(cluster, gateway, upstream, token)

    slot, source, target = slot_masters(cluster, key)
    start_migration(slot, source, target)
    try:
        source.cli("MIGRATE", "127.0.0.1", str(target.port), key, "0", "5000")
        # The source no longer has the key and answers ASK; the target serves it only after ASKING.
        assert user_of(gw, up, token) == TOKENS[token]
        assert gw.metric('apigw_redis_redirects_total{kind="ask"}') >= 1
    finally:
        finish_migration(cluster, slot, source, target)
    assert user_of(gw, up, token) == TOKENS[token]


def test_killed_master_fails_fast_then_its_replica_takes_over(cluster, gateway, upstream):
    token = "tok-042"
    key = f"session:{token}"
    gw, up = serving(cluster, gateway, upstream, token)
    master = cluster.master_for_key(key)
    others = [t for t in TOKENS if cluster.master_for_key(f"session:{t}").port != master.port]

    cluster.kill(master)
    start = time.monotonic()
    r = request(gw.port, "GET", "/me", [("Authorization", f"Bearer {token}")])
    assert_json_error(r, 503, "auth_unavailable")
    assert time.monotonic() - start < 1.0
    # Keys on the other masters are not affected.
    assert user_of(gw, up, others[0]) == TOKENS[others[0]]

    cluster.wait_failover(master)
    assert wait_until(lambda: user_of(gw, up, token) == TOKENS[token], timeout=10), "no recovery after failover"
    for t in list(TOKENS)[:20]:
        assert user_of(gw, up, t) == TOKENS[t], t
