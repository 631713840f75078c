"""Real redis-server processes for apigw's end-to-end tests: one server, or a Redis Cluster of them.

Every server listens on a free 127.0.0.1 port, keeps nothing on disk (`--save "" --appendonly no`; a cluster node
only writes its nodes.conf) and is stopped by its own PID (SIGKILL, then wait); nothing is ever stopped by name.
With `tls=RedisTLS(...)` a server, or every node of a cluster, serves TLS only (see RedisTLS).
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

from apigw_harness import HOST, claim_port, ephemeral_range, free_port
from server_process import ServerProcess

SLOTS = 16384
CLI_TIMEOUT = 10.0


@dataclass(frozen=True)
class RedisTLS:
    """TLS for a redis-server that serves TLS only: no plain port (`--port 0`); clients, the cluster bus
    (`tls-cluster`), replication and MIGRATE (`tls-replication`) all speak TLS. The server presents `cert`/`key`,
    trusts `ca` for its peers, and presents `client_cert`/`client_key` when it connects out: to another node's
    cluster bus, to its master, to MIGRATE's target. Those must be valid client certificates (extended key usage
    clientAuth, issued by `ca`): the cluster bus demands a certificate from every peer whatever
    `tls-auth-clients` says, and refuses one made for serverAuth only ("unsupported certificate"), which is what
    a node presents when it has no `tls-client-cert-file`; its peers then never join the cluster. `auth_clients`:
    whether ordinary clients (apigw) must present one too (`tls-auth-clients yes`).

    The harness's own redis-cli and readiness probe present `client_cert` and do not verify the server (apigw's
    side is what tests verify)."""

    ca: Path
    cert: Path
    key: Path
    client_cert: Path
    client_key: Path
    auth_clients: bool = False

    @classmethod
    def from_certs(cls, certs, auth_clients: bool = False) -> "RedisTLS":
        """From tls_certs.make_certs(): its server and client certificates, both issued by its CA."""
        return cls(ca=certs.ca, cert=certs.server, key=certs.server_key, client_cert=certs.client,
                   client_key=certs.client_key, auth_clients=auth_clients)

    def server_args(self, port: int) -> list[str]:
        return ["--port", "0", "--tls-port", str(port), "--tls-cert-file", str(self.cert), "--tls-key-file",
                str(self.key), "--tls-client-cert-file", str(self.client_cert), "--tls-client-key-file",
                str(self.client_key), "--tls-ca-cert-file", str(self.ca), "--tls-auth-clients",
                "yes" if self.auth_clients else "no", "--tls-cluster", "yes", "--tls-replication", "yes"]

    def cli_args(self) -> list[str]:
        # --cacert although nothing is verified: without it redis-cli loads the system's trust store, which
        # makes every call several times slower.
        return ["--tls", "--insecure", "--cacert", str(self.ca), "--cert", str(self.client_cert), "--key",
                str(self.client_key)]

    def wrap(self, s: socket.socket) -> ssl.SSLSocket:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.load_cert_chain(str(self.client_cert), str(self.client_key))
        return context.wrap_socket(s)


def redis_cli(port: int, *args, cluster: bool = False, timeout: float = CLI_TIMEOUT,
              tls: Optional[RedisTLS] = None) -> str:
    """`redis-cli -p port [-c] args...` (over TLS with `tls`) → its output without the trailing newline. Raises
    RuntimeError when redis-cli fails (the server cannot be reached); a Redis error reply is returned as text
    ("ERR ...")."""
    argv = (["redis-cli"] + (tls.cli_args() if tls else []) + ["-h", HOST, "-p", str(port)]
            + (["-c"] if cluster else []) + [str(a) for a in args])
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                          timeout=timeout)
    text = done.stdout.decode("utf-8", "replace")
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {done.returncode}: {text.strip()}")
    return text[:-1] if text.endswith("\n") else text


class RedisServer(ServerProcess):
    """One redis-server on 127.0.0.1. `args` are extra redis-server options. Its working directory (and log file,
    `.log_path`) is `workdir`, or else a temporary directory of its own, removed whenever the server stops (log()
    still returns the last run's log). With `tls`, `port` is its TLS port and it has no plain one."""

    name = "redis-server"

    def __init__(self, port: Optional[int] = None, args: Sequence[str] = (),
                 workdir: Optional[Union[str, Path]] = None, start: bool = True, start_timeout: float = 10.0,
                 tls: Optional[RedisTLS] = None):
        super().__init__(port, args, start_timeout)
        self.tls = tls
        self._own_dir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="apigw-redis-"))
        self.log_path = self.workdir / f"redis-{self.port}.log"
        self._last_log = ""
        if start:
            self.start()

    def command(self) -> list[str]:
        ports = self.tls.server_args(self.port) if self.tls else ["--port", str(self.port)]
        return ["redis-server"] + ports + ["--bind", HOST, "--save", "", "--appendonly", "no",
                                           "--daemonize", "no", "--loglevel", "notice", "--dir", str(self.workdir),
                                           "--logfile", str(self.log_path)] + self.args

    def answers(self, s: socket.socket) -> bool:
        if self.tls is None:
            return self._pong(s)
        with self.tls.wrap(s) as tls_socket:
            return self._pong(tls_socket)

    @staticmethod
    def _pong(s: socket.socket) -> bool:
        s.sendall(b"PING\r\n")
        reply = s.recv(64)
        return reply.startswith(b"+PONG") or reply.startswith(b"-NOAUTH")

    def prepare(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)

    def stopped(self) -> None:
        if self._own_dir and self.workdir.exists():
            self._last_log = self.log()
            shutil.rmtree(self.workdir, ignore_errors=True)

    def startup_report(self) -> str:
        return self.log()

    def cli(self, *args, timeout: float = CLI_TIMEOUT) -> str:
        return redis_cli(self.port, *args, timeout=timeout, tls=self.tls)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return self._last_log


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too, both claimed (`claim_port`), and below
    the ephemeral range if there is room. (With `tls-cluster yes` the bus is at the TLS port + 10000, and the TLS
    port is the one a node announces.)"""
    bus_ceiling = ephemeral_range()[0] if ephemeral_range()[0] >= 21000 else 65536
    for _ in range(1000):
        port = free_port(below=bus_ceiling - 10000)
        if claim_port(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _port_of(address: str) -> int:
    """The port in CLUSTER NODES' "ip:port@cport[,hostname]"."""
    return int(address.split("@")[0].rsplit(":", 1)[1])


def slot_owners(port: int, tls: Optional[RedisTLS] = None) -> list[int]:
    """Slot → port of its master (0: none), as the node on `port` sees it in CLUSTER NODES. Failed masters
    serve nothing; slots being migrated count for their current owner."""
    owners = [0] * SLOTS
    for line in redis_cli(port, "CLUSTER", "NODES", tls=tls).splitlines():
        fields = line.split()
        if len(fields) < 8 or "master" not in fields[2] or "fail" in fields[2]:
            continue
        node_port = _port_of(fields[1])
        for item in fields[8:]:
            if item.startswith("["):
                continue
            first, _, last = item.partition("-")
            for slot in range(int(first), int(last or first) + 1):
                owners[slot] = node_port
    return owners


class RedisCluster:
    """A Redis Cluster on 127.0.0.1: `masters` masters with `replicas` replicas each (node timeout
    `node_timeout_ms`), node files in `tmpdir` (a temporary directory removed by stop() when not given). With
    `tls`, every node serves TLS only, its cluster bus and replication included (see RedisTLS); node ports are TLS
    ports. Returns once the cluster has settled (see wait_ok)."""

    def __init__(self, masters: int = 3, replicas: int = 1, tmpdir: Optional[Union[str, Path]] = None,
                 node_timeout_ms: int = 1000, start_timeout: float = 30.0, tls: Optional[RedisTLS] = None):
        self.tls = tls
        self._own_dir = tmpdir is None
        self.tmpdir = Path(tmpdir) if tmpdir is not None else Path(tempfile.mkdtemp(prefix="apigw-redis-cluster-"))
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        self.nodes: list[RedisServer] = []
        try:
            for _ in range(masters * (1 + replicas)):
                port = _cluster_port()
                args = ["--cluster-enabled", "yes", "--cluster-config-file", str(self.tmpdir / f"nodes-{port}.conf"),
                        "--cluster-node-timeout", str(node_timeout_ms), "--repl-diskless-sync-delay", "0"]
                self.nodes.append(RedisServer(port, args, workdir=self.tmpdir, tls=tls))
            create = subprocess.run(["redis-cli"] + (tls.cli_args() if tls else []) + ["--cluster", "create"]
                                    + self.seed_addresses()
                                    + ["--cluster-replicas", str(replicas), "--cluster-yes"],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    timeout=start_timeout)
            if create.returncode != 0:
                raise RuntimeError("redis-cli --cluster create failed:\n" + create.stdout.decode(errors="replace"))
            self.wait_ok(start_timeout)
        except BaseException:
            self.stop()
            raise

    def seed_addresses(self) -> list[str]:
        """Every node as "127.0.0.1:port", the way apigw's config lists cluster seeds."""
        return [n.address for n in self.nodes]

    def live(self) -> RedisServer:
        for n in self.nodes:
            if n.alive():
                return n
        raise RuntimeError("no cluster node is running")

    def node(self, port: int) -> RedisServer:
        for n in self.nodes:
            if n.port == port:
                return n
        raise KeyError(port)

    def owners(self) -> list[int]:
        return slot_owners(self.live().port, self.tls)

    def masters(self) -> list[RedisServer]:
        return [self.node(p) for p in sorted(set(self.owners()) - {0})]

    def keyslot(self, key: str) -> int:
        return int(self.live().cli("CLUSTER", "KEYSLOT", key))

    def master_for_key(self, key: str) -> RedisServer:
        return self.node(self.owners()[self.keyslot(key)])

    def cli_cluster(self, *args, timeout: float = CLI_TIMEOUT) -> str:
        """A command through `redis-cli -c` (it follows MOVED and ASK), sent to a live node."""
        return redis_cli(self.live().port, *args, cluster=True, timeout=timeout, tls=self.tls)

    @staticmethod
    def node_id(node: RedisServer) -> str:
        return node.cli("CLUSTER", "MYID").strip()

    def start_migration(self, slot: int, source: RedisServer, target: RedisServer) -> None:
        """Marks `slot` as migrating from `source` to `target`: `source` answers ASK for its keys that are gone."""
        target.cli("CLUSTER", "SETSLOT", slot, "IMPORTING", self.node_id(source))
        source.cli("CLUSTER", "SETSLOT", slot, "MIGRATING", self.node_id(target))

    def finish_migration(self, slot: int, source: RedisServer, target: RedisServer) -> None:
        """After start_migration(): MIGRATEs the slot's remaining keys (node to node, over TLS for a TLS cluster),
        gives the slot to `target` on every master, and waits until the cluster has settled."""
        for key in source.cli("CLUSTER", "GETKEYSINSLOT", slot, "1000").split():
            reply = source.cli("MIGRATE", HOST, target.port, key, "0", "5000")
            if reply != "OK":
                raise RuntimeError(f"MIGRATE {key} from {source.address} to {target.address}: {reply}")
        for master in self.masters():
            master.cli("CLUSTER", "SETSLOT", slot, "NODE", self.node_id(target))
        self.wait_ok()

    def move_slot(self, slot: int, target: RedisServer) -> None:
        """Moves `slot` and its keys to the master `target` (a resharding: clients holding the old map get MOVED)."""
        source = self.node(self.owners()[slot])
        self.start_migration(slot, source, target)
        self.finish_migration(slot, source, target)

    def kill(self, node: RedisServer) -> None:
        """SIGKILL by PID: its replica takes over after the node timeout. node.start() brings it back (as a
        replica of whoever took over); wait_ok() then waits for the cluster to agree again."""
        node.stop()

    def wait_failover(self, dead: RedisServer, timeout: float = 15.0) -> RedisServer:
        """After kill(dead): waits until a replica serves its slots and the cluster has settled; returns one of
        the masters now serving them."""
        slots = [slot for slot, port in enumerate(self.owners()) if port == dead.port]
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.settled():
                    owners = self.owners()
                    if dead.port not in owners and 0 not in owners:
                        return self.node(owners[slots[0]]) if slots else self.live()
            except RuntimeError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"no replica took over from {dead.address} within {timeout}s")
            time.sleep(0.05)

    def settled(self) -> bool:
        agreed = None
        running = {n.port for n in self.nodes if n.alive()}
        try:
            for n in self.nodes:
                if not n.alive():
                    continue
                if "cluster_state:ok" not in n.cli("CLUSTER", "INFO"):
                    return False
                replication = n.cli("INFO", "replication")
                if "role:slave" in replication and "master_link_status:up" not in replication:
                    return False
                for line in n.cli("CLUSTER", "NODES").splitlines():
                    fields = line.split()
                    # A killed node stays flagged as failed; a running one must not be.
                    if len(fields) > 2 and "fail" in fields[2] and _port_of(fields[1]) in running:
                        return False
                seen = slot_owners(n.port, self.tls)
                if 0 in seen or (agreed is not None and seen != agreed):
                    return False
                agreed = seen
        except (RuntimeError, subprocess.TimeoutExpired):
            return False  # a node still loading, or paused
        return agreed is not None

    def wait_ok(self, timeout: float = 20.0) -> None:
        """Waits until every running node reports cluster_state:ok, sees no running node as failed, and all agree
        on every slot's master, and every running replica is in sync with its master; raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while not self.settled():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cluster did not settle within {timeout}s")
            time.sleep(0.05)

    def stop(self) -> None:
        for n in self.nodes:
            n.close()
        if self._own_dir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self) -> "RedisCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
