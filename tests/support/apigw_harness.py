"""Process harness for apigw's end-to-end tests: free ports, config files, and the apigw process by PID.

Every process is started here and stopped by its own PID (SIGTERM, wait, SIGKILL on timeout); nothing is
ever stopped by name. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

from rawhttp import Client, request  # noqa: F401  (re-exported for tests)
from recording_upstream import Upstream  # noqa: F401

HOST = "127.0.0.1"
STOP_TIMEOUT = 20.0
START_TIMEOUT = 30.0   # generous: the ASan build starts slowly on a loaded 2-core machine

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer", "SUMMARY: UndefinedBehaviorSanitizer")


def executable_from_env(variable: str) -> str:
    """The executable file named by $`variable`. Raises if unset, missing or not executable."""
    path = os.environ.get(variable)
    if not path:
        raise RuntimeError(f"{variable} is not set")
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise RuntimeError(f"{variable}={path!r} is not an executable file")
    return path


def apigw_bin() -> str:
    """The binary under test, from $APIGW_BIN."""
    return executable_from_env("APIGW_BIN")


_port_choice = random.Random()  # seeded from the OS
_LOWEST_PORT = 10000
_PORT_LOCKS = Path(tempfile.gettempdir()) / f"apigw-test-ports-{os.getuid()}"  # per user: each can create its files
_claimed_ports: dict[int, int] = {}  # port -> descriptor holding its lock until this process exits


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for the local ports of outgoing connections (ip_local_port_range)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[:2]
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
            return True
        except OSError:
            return False


def claim_port(port: int) -> bool:
    """Reserves `port` for this process against every other test process of this user (the C++ test servers
    take the same locks): an exclusive lock on a file named after it, held until this process exits. False if
    another process, or this one, holds it already, or if the port is not bindable now."""
    if port in _claimed_ports:
        return False
    _PORT_LOCKS.mkdir(exist_ok=True)
    fd = os.open(_PORT_LOCKS / str(port), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        claimed = bindable(port)
    except OSError:
        claimed = False
    if not claimed:
        os.close(fd)
        return False
    _claimed_ports[port] = fd
    return True


def free_port(below: Optional[int] = None) -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago and is now claimed by this process (`claim_port`), so
    no other test process, running side by side, and no other caller here gets it.

    It is drawn at random below the kernel's ephemeral range (and below `below`): a port the kernel hands out
    for bind(0) is one it may give, before the test's server binds it, to the local end of some other test's
    outgoing connection."""
    ceiling = min(ephemeral_range()[0], below or 65536)
    if ceiling - _LOWEST_PORT >= 1000:
        for _ in range(1000):
            port = _port_choice.randrange(_LOWEST_PORT, ceiling)
            if claim_port(port):
                return port
    for _ in range(100):  # an ephemeral range that leaves no room below it: the kernel's choice
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if (below is None or port < below) and claim_port(port):
            return port
    raise RuntimeError("no free port that no test process has claimed")


def wait_for_port(port: int, timeout: float = START_TIMEOUT, proc: Optional[subprocess.Popen] = None,
                  probe: Optional[Callable[[socket.socket], bool]] = None) -> None:
    """Waits until 127.0.0.1:port accepts a connection (and `probe`, given the connected socket, returns true);
    raises TimeoutError, or RuntimeError if `proc` exits first."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.pid} exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5) as s:
                if probe is None or probe(s):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing {'ready' if probe else 'accepted'} on {HOST}:{port} within {timeout}s")
        time.sleep(0.02)


# --- YAML -----------------------------------------------------------------------------------------------

_PLAIN = re.compile(r"^[A-Za-z0-9_./-][A-Za-z0-9_./:-]*$")
_YAML_SPECIAL = {"true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"}


def _scalar(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return str(v)
    s = str(v)
    if _PLAIN.match(s) and s.lower() not in _YAML_SPECIAL and not re.match(r"^[-+]?[0-9.]", s):
        return s
    return json.dumps(s)  # a JSON string is a valid YAML double-quoted scalar


def to_yaml(obj, indent: int = 0) -> str:
    """Block-style YAML for dicts/lists/scalars (enough for apigw's config)."""
    pad = " " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, dict) and v:
                out.append(f"{pad}{k}:\n" + to_yaml(v, indent + 2))
            elif isinstance(v, list) and v and any(isinstance(x, (dict, list)) for x in v):
                out.append(f"{pad}{k}:\n" + to_yaml(v, indent + 2))
            elif isinstance(v, list):
                out.append(f"{pad}{k}: [" + ", ".join(_scalar(x) for x in v) + "]\n")
            elif isinstance(v, dict):
                out.append(f"{pad}{k}: {{}}\n")
            else:
                out.append(f"{pad}{k}: {_scalar(v)}\n")
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, (dict, list)) and item:
                body = to_yaml(item, indent + 2)
                out.append(pad + "- " + body[indent + 2:])
            else:
                out.append(f"{pad}- {_scalar(item)}\n")
    else:
        out.append(pad + _scalar(obj) + "\n")
    return "".join(out)


def endpoint_of(x) -> str:
    """'127.0.0.1:PORT' for an Upstream, a port number, or a string as is."""
    if isinstance(x, Upstream):
        return x.endpoint
    if isinstance(x, int):
        return f"{HOST}:{x}"
    return str(x)


def gateway_config(routes: list[dict], upstreams: dict[str, Union[dict, list, Upstream]],
                   server: Optional[dict] = None, log: Optional[dict] = None, limits: Optional[dict] = None) -> dict:
    """A config dict. Upstream values may be an Upstream, a list of them/endpoints, or a full dict whose
    `endpoints` may hold Upstream objects."""
    ups = {}
    for name, u in upstreams.items():
        if isinstance(u, dict):
            u = dict(u)
            u["endpoints"] = [endpoint_of(e) for e in u.get("endpoints", [])]
        else:
            u = {"endpoints": [endpoint_of(e) for e in (u if isinstance(u, list) else [u])]}
        ups[name] = u
    srv = dict(server or {})
    if limits:
        srv["limits"] = {**srv.get("limits", {}), **limits}
    cfg = {"server": srv, "log": dict(log or {}), "upstreams": ups, "routes": routes}
    if not cfg["log"]:
        del cfg["log"]
    return cfg


def route(name: str, path: str, upstream: str, methods: Optional[list[str]] = None, host: Optional[str] = None,
          strip_prefix: Optional[str] = None) -> dict:
    match = {"path": path}
    if methods is not None:
        match["methods"] = methods
    if host is not None:
        match["host"] = host
    r = {"name": name, "match": match, "upstream": upstream}
    if strip_prefix is not None:
        r["rewrite"] = {"strip_prefix": strip_prefix}
    return r


def redis_sessions(server, sessions: dict[str, str]) -> dict:
    """Stores `sessions` (token → user id) in a test Redis server under auth's default key template; returns the
    `auth` section that checks tokens there."""
    for token, user in sessions.items():
        server.cli("SET", f"session:{token}", user)
    return {"redis": {"nodes": [f"127.0.0.1:{server.port}"], "timeout": "500ms"}}


def cached_route(name: str, path: str, upstream: str = "u", ttl: str = "30s", **cache) -> dict:
    """A route with a `cache` key (ttl, plus vary, scope, statuses as given)."""
    r = route(name, path, upstream)
    r["cache"] = {"ttl": ttl, **cache}
    return r


# --- running the binary ---------------------------------------------------------------------------------

@dataclass
class RunResult:
    rc: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_apigw(args: list[str], timeout: float = 60.0, cwd: Optional[str] = None) -> RunResult:
    """Runs `$APIGW_BIN args...` to completion (for -t, --version, --help). Killed by PID on timeout."""
    proc = subprocess.Popen([apigw_bin()] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd,
                            stdin=subprocess.DEVNULL)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise TimeoutError(f"apigw {' '.join(args)} did not exit within {timeout}s; output: {out!r} {err!r}")
    return RunResult(proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


def check_config(path: Union[str, Path]) -> tuple[int, str]:
    """`apigw -t -c FILE` → (exit code, stdout+stderr)."""
    r = run_apigw(["-t", "-c", str(path)])
    return r.rc, r.output


def write_config(path: Union[str, Path], config: Union[dict, str]) -> Path:
    path = Path(path)
    path.write_text(config if isinstance(config, str) else to_yaml(config))
    return path


class Apigw:
    """One apigw process. `config` is a dict (server.listen and server.workers get defaults) or YAML text
    (then pass `port`, the port its server.listen uses)."""

    def __init__(self, config: Union[dict, str], workdir: Optional[Union[str, Path]] = None,
                 port: Optional[int] = None, name: str = "apigw", env: Optional[dict] = None, start: bool = True,
                 start_timeout: float = START_TIMEOUT, listen_socket: Optional[socket.socket] = None):
        """`listen_socket`: a listening socket handed to apigw as the service manager does (socket activation:
        descriptor 3, LISTEN_FDS=1, LISTEN_PID)."""
        self.name = name
        self.listen_socket = listen_socket
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="apigw-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        if isinstance(config, dict):
            config = json.loads(json.dumps(config))  # a deep copy we may fill in
            server = config.setdefault("server", {})
            if "listen" not in server:
                server["listen"] = f"{HOST}:{port or free_port()}"
            server.setdefault("workers", 1)
            port = int(str(server["listen"]).rsplit(":", 1)[1])
            # The admin listener defaults to a fixed port; tests running side by side each get their own.
            admin = config.setdefault("admin", {})
            admin.setdefault("listen", f"{HOST}:{free_port()}")
            self.admin_port = None if admin["listen"] == "off" else int(str(admin["listen"]).rsplit(":", 1)[1])
        elif port is None:
            raise ValueError("YAML text config needs the port it listens on")
        else:
            self.admin_port = None
            if not re.search(r"^admin:", config, re.M):
                self.admin_port = free_port()
                config = config.rstrip("\n") + f"\nadmin:\n  listen: {HOST}:{self.admin_port}\n"
        self.port = port
        self.config = config
        self.config_path = write_config(self.workdir / "apigw.yaml", config)
        self.log_path = self.workdir / "apigw.log"
        self.env = dict(os.environ, **(env or {}))
        self.start_timeout = start_timeout
        self.proc: Optional[subprocess.Popen] = None
        self.returncode: Optional[int] = None
        self.killed = False
        if start:
            self.start()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def url(self, path: str = "/") -> str:
        return f"http://{HOST}:{self.port}{path}"

    def admin_url(self, path: str = "/") -> str:
        assert self.admin_port is not None, "this apigw has no admin listener"
        return f"http://{HOST}:{self.admin_port}{path}"

    def start(self) -> "Apigw":
        log = open(self.log_path, "ab")
        try:
            args = [apigw_bin(), "-c", str(self.config_path)]
            pass_fds = ()
            if self.listen_socket is not None:
                # The wrapper's PID is apigw's after exec, as LISTEN_PID must be.
                fd = self.listen_socket.fileno()
                launcher = ("import os, sys; os.dup2(%d, 3); os.environ['LISTEN_FDS'] = '1'; "
                            "os.environ['LISTEN_PID'] = str(os.getpid()); os.execv(sys.argv[1], sys.argv[1:])" % fd)
                args = [sys.executable, "-c", launcher] + args
                pass_fds = (fd,)
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=self.env, cwd=str(self.workdir), pass_fds=pass_fds)
        finally:
            log.close()
        try:
            if self.listen_socket is None:
                wait_for_port(self.port, self.start_timeout, self.proc)
            if self.admin_port is not None:
                # The listen socket accepts (into its queue) before apigw is ready, a passed one even before
                # apigw runs: readiness is the admin listener's to tell.
                self.wait_ready(self.start_timeout)
        except Exception as e:
            self.stop()
            raise RuntimeError(f"apigw did not start: {e}\n--- config ---\n{self.config_text()}"
                               f"--- log ---\n{self.log()}") from None
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Waits until the admin listener's /readyz answers 200."""
        def ready(s: socket.socket) -> bool:
            s.sendall(b"GET /readyz HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
        wait_for_port(self.admin_port, timeout, self.proc, probe=ready)

    def metric(self, series: str) -> float:
        """The value of one series from the admin listener's /metrics, written exactly as exposed (labels in
        their documented order), e.g. 'apigw_auth_lookups_total{result="hit"}'; 0 when it is not there."""
        text = request(self.admin_port, "GET", "/metrics", timeout=5).body.decode()
        for line in text.splitlines():
            if line.startswith(series + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def config_text(self) -> str:
        return self.config_path.read_text()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> Optional[int]:
        """SIGTERM by PID, wait up to `timeout`, then SIGKILL. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.killed = True
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.returncode = self.proc.returncode
        return self.returncode

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def sanitizer_report(self) -> Optional[str]:
        text = self.log()
        for marker in SANITIZER_MARKERS:
            idx = text.find(marker)
            if idx >= 0:
                return text[max(0, idx - 200): idx + 6000]
        return None

    def _status_kib(self, field: str) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise KeyError(field)

    def rss_kib(self) -> int:
        return self._status_kib("VmRSS")

    def hwm_kib(self) -> int:
        """Peak resident set size so far (VmHWM)."""
        return self._status_kib("VmHWM")

    def wait_log(self, needle: str, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log():
                return True
            time.sleep(0.05)
        return needle in self.log()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Stops a process the test started, by its PID: `sig`, then SIGKILL when it has not exited within `timeout`."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


# The primary pool's successful stores, from /metrics.
CACHE_STORED = 'apigw_cache_stores_total{result="ok"}'


def xcache(resp):
    """The cache result apigw reports for a response (X-Cache: HIT, MISS or BYPASS)."""
    return resp.header("X-Cache")


def wait_stored(gw, n, timeout=5.0):
    """Waits until exactly `n` fills were stored in the primary pool (fills are written in the background)."""
    assert wait_until(lambda: gw.metric(CACHE_STORED) >= n, timeout=timeout), \
        f"{gw.metric(CACHE_STORED)} fills stored within {timeout}s, expected {n}"
    assert gw.metric(CACHE_STORED) == n, f"{gw.metric(CACHE_STORED)} fills stored, expected {n}"


CACHE_API_TOKEN = "cache-api-token-0123456789"


def cache_gateway_config(upstreams, primary, secondary=(), routes=None, server=None, timeout="500ms",
                         **section) -> dict:
    """A gateway config with a `cache` section (and the cache API, token CACHE_API_TOKEN) over these
    MemcachedServers; `upstreams`: an Upstream for "u", or a dict of them. The timeout is generous by default so
    that a loaded machine never turns an expected hit into a bypass; fault tests pass their own."""
    ups = upstreams if isinstance(upstreams, dict) else {"u": upstreams}
    cfg = gateway_config(routes or [cached_route("items", "/items/*rest")], ups, server=server)
    cache = {"primary": {"servers": [s.address for s in primary], "timeout": timeout, "connections": 2}}
    if secondary:
        cache["secondary"] = {"servers": [s.address for s in secondary], "timeout": "500ms", "queue": 1000}
    cache["api"] = {"token": CACHE_API_TOKEN}
    cache.update(section)
    cfg["cache"] = cache
    return cfg


def concurrent_gets(gws, target: str, n: int) -> list:
    """n GETs of `target`, each on its own connection, spread over `gws` (one Apigw or a list) in turn and sent
    together; → responses in the order of the clients."""
    gws = gws if isinstance(gws, (list, tuple)) else [gws]
    clients = [Client(gws[i % len(gws)].port, timeout=30) for i in range(n)]
    barrier = threading.Barrier(n)
    results = [None] * n

    def run(i):
        try:
            barrier.wait(timeout=10)
            results[i] = clients[i].request("GET", target)
        except Exception as e:  # reported by the assertion below
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=40)
    for c in clients:
        c.close()
    errors = [r for r in results if not hasattr(r, "status")]
    assert not errors, errors
    return results


def assert_api_error(resp, status: int) -> dict:
    """The admin APIs' errors: the status and a JSON object with a non-empty string "error"."""
    assert resp.status == status, f"expected {status}, got {resp!r}"
    ctype = (resp.header("Content-Type") or "").split(";")[0].strip().lower()
    assert ctype == "application/json", resp
    doc = resp.json()
    assert isinstance(doc, dict) and isinstance(doc.get("error"), str) and doc["error"], doc
    return doc


def is_uuid_like(s: Optional[str]) -> bool:
    return bool(s) and re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", s) is not None


def assert_json_error(resp, status: int, code: str) -> dict:
    """The gateway's error contract: status, application/json, {error, message, request_id}, and the same id
    in X-Request-Id."""
    assert resp.status == status, f"expected {status}, got {resp!r}"
    ctype = resp.header("Content-Type") or ""
    assert ctype.split(";")[0].strip().lower() == "application/json", f"Content-Type {ctype!r} in {resp!r}"
    try:
        doc = resp.json()
    except ValueError:
        raise AssertionError(f"error body is not JSON: {resp.body!r}") from None
    assert isinstance(doc, dict), doc
    assert doc.get("error") == code, f"error code {doc.get('error')!r} != {code!r}: {doc}"
    assert isinstance(doc.get("message"), str) and doc["message"].strip(), f"empty message: {doc}"
    rid = resp.header("X-Request-Id")
    assert rid, f"no X-Request-Id on error response {resp!r}"
    assert doc.get("request_id") == rid, f"body request_id {doc.get('request_id')!r} != header {rid!r}"
    return doc
