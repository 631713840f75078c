"""Self-test of the Redis harness alone (no apigw): one server's lifetime by PID, and a cluster's routing and
failover, in the clear and over TLS only. Run: python3 -m pytest -q -p no:cacheprovider
tests/support/test_redis_harness_selftest.py
"""

import os
import socket
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from redis_harness import RedisCluster, RedisServer, RedisTLS  # noqa: E402
from tls_certs import make_certs  # noqa: E402


def ping_answered(port: int, timeout: float) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"PING\r\n")
        try:
            return s.recv(16).startswith(b"+PONG")
        except socket.timeout:
            return False


def answered_in_the_clear(port: int) -> bool:
    try:
        return ping_answered(port, 1.0)
    except OSError:  # reset: a TLS port drops a client that does not speak TLS
        return False


def test_server_stop_start_pause_and_cleanup():
    with RedisServer(args=["--requirepass", "pw"]) as server:
        workdir = server.workdir
        assert server.cli("--no-auth-warning", "-a", "pw", "SET", "k", "v") == "OK"
        assert server.cli("--no-auth-warning", "-a", "pw", "GET", "k") == "v"
        assert server.cli("GET", "k").startswith("NOAUTH")
        pid = server.pid
        server.stop()
        assert not server.alive() and not workdir.exists()
        assert "Ready to accept connections" in server.log()
        with pytest.raises(RuntimeError):
            server.cli("PING")
        server.start()
        assert server.pid != pid
        assert server.cli("--no-auth-warning", "-a", "pw", "GET", "k") == ""  # nothing was persisted
        server.pause()
        assert not ping_answered(server.port, 0.3)
        server.resume()
        assert server.cli("--no-auth-warning", "-a", "pw", "PING") == "PONG"
    assert not workdir.exists()


def test_cluster_routing_and_failover(tmp_path):
    with RedisCluster(masters=3, replicas=1, tmpdir=tmp_path) as cluster:
        assert len(cluster.seed_addresses()) == 6
        assert len(cluster.masters()) == 3
        owners = set()
        for i in range(12):
            key = f"key-{i}"
            assert cluster.cli_cluster("SET", key, f"v{i}") == "OK"
            master = cluster.master_for_key(key)
            owners.add(master.port)
            assert master.cli("GET", key) == f"v{i}"  # served there, not redirected
        assert len(owners) == 3

        victim = cluster.master_for_key("key-0")
        assert victim.cli("WAIT", "1", "2000") in ("0", "1")
        cluster.kill(victim)
        promoted = cluster.wait_failover(victim, timeout=15)
        assert promoted.port != victim.port
        assert cluster.master_for_key("key-0").port == promoted.port
        assert promoted.cli("GET", "key-0") == "v0"
        victim.start()
        cluster.wait_ok(30)
        assert victim.cli("ROLE").startswith("slave")
        nodes = cluster.nodes
    assert all(not n.alive() for n in nodes)
    assert list(tmp_path.glob("nodes-*.conf"))  # the caller's directory is left to its owner


def test_tls_cluster_routing_resharding_and_failover(tmp_path):
    certs = make_certs(tmp_path / "certs")
    # Clients must present a certificate too: the harness's own commands do.
    tls = RedisTLS.from_certs(certs, auth_clients=True)
    with RedisCluster(masters=3, replicas=1, tmpdir=tmp_path / "nodes", tls=tls) as cluster:
        for node in cluster.nodes:
            assert node.cli("CONFIG", "GET", "port").split()[-1] == "0"  # no plain port
            assert not answered_in_the_clear(node.port)
        owners = set()
        for i in range(12):
            key = f"key-{i}"
            assert cluster.cli_cluster("SET", key, f"v{i}") == "OK"
            owners.add(cluster.master_for_key(key).port)
        assert len(owners) == 3

        # Resharding: MIGRATE from node to node over TLS.
        source = cluster.master_for_key("key-1")
        target = next(m for m in cluster.masters() if m.port != source.port)
        cluster.move_slot(cluster.keyslot("key-1"), target)
        assert cluster.master_for_key("key-1").port == target.port
        assert target.cli("GET", "key-1") == "v1"
        assert source.cli("GET", "key-1").startswith("MOVED")

        # Replication and failover over TLS.
        victim = cluster.master_for_key("key-0")
        assert victim.cli("WAIT", "1", "2000") == "1"
        cluster.kill(victim)
        promoted = cluster.wait_failover(victim, timeout=15)
        assert promoted.port != victim.port
        assert promoted.cli("GET", "key-0") == "v0"
