"""Service manager notifications over $NOTIFY_SOCKET: READY=1 with a STATUS once serving, RELOADING=1 (with
MONOTONIC_USEC) then READY=1 around each SIGHUP reload, good or rejected, STOPPING=1 on SIGTERM, and WATCHDOG=1
every half of $WATCHDOG_USEC."""

import copy
import os
import shutil
import signal
import socket
import tempfile
import time

import pytest

from apigw_harness import gateway_config, route, write_config
from recording_upstream import Fixed


class NotifySocket:
    """A bound Unix datagram socket standing in for the service manager; collects what apigw sends."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="apigw-notify-")  # short: sun_path holds 107 bytes
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []  # (monotonic time received, text)

    def receive(self, timeout):
        """The next datagram within `timeout`, or None."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return None
        msg = (time.monotonic(), data.decode("utf-8", "replace"))
        self.messages.append(msg)
        return msg[1]

    def wait_for(self, predicate, timeout=5.0, skip_watchdog=True):
        """Reads datagrams until one satisfies `predicate`; returns it. Fails listing what arrived instead."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            text = self.receive(deadline - time.monotonic())
            if text is None:
                raise AssertionError(f"no matching notification within {timeout}s; received {seen}")
            if skip_watchdog and text == "WATCHDOG=1":
                continue
            seen.append(text)
            if predicate(text):
                return text

    def collect(self, seconds):
        deadline = time.monotonic() + seconds
        out = []
        while (left := deadline - time.monotonic()) > 0:
            text = self.receive(left)
            if text is not None:
                out.append((self.messages[-1][0], text))
        return out

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def notify():
    n = NotifySocket()
    yield n
    n.close()


def fields(text):
    """KEY=VALUE lines of one notification as a dict."""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def start(gateway, upstream, notify, **env):
    up = upstream("a", default=Fixed(200, b"A"))
    cfg = gateway_config([route("r", "/r", "a")], {"a": up})
    return gateway(cfg, env={"NOTIFY_SOCKET": notify.path, **env})


def test_ready_on_start_and_stopping_on_sigterm(gateway, upstream, notify):
    """Once listening apigw sends READY=1 with STATUS "serving config generation 1"; on SIGTERM it sends
    STOPPING=1, then exits 0."""
    gw = start(gateway, upstream, notify)
    ready = notify.wait_for(lambda t: "READY=1" in t.splitlines())
    assert fields(ready).get("STATUS", "").startswith("serving config generation 1"), ready
    os.kill(gw.pid, signal.SIGTERM)
    stopping = notify.wait_for(lambda t: "STOPPING=1" in t.splitlines())
    assert "READY=1" not in stopping.splitlines(), stopping
    assert gw.proc.wait(timeout=10) == 0, gw.log()


def test_reload_is_announced_before_and_after(gateway, upstream, notify):
    """SIGHUP with a changed valid config: RELOADING=1 with the current MONOTONIC_USEC, then READY=1 naming
    generation 2; SIGHUP with a broken config: RELOADING=1, then READY=1 whose STATUS says the last reload was
    rejected (still generation 2)."""
    gw = start(gateway, upstream, notify)
    notify.wait_for(lambda t: "READY=1" in t.splitlines())

    cfg = copy.deepcopy(gw.config)
    cfg["routes"].append(route("added", "/added", "a"))
    write_config(gw.config_path, cfg)
    os.kill(gw.pid, signal.SIGHUP)
    reloading = notify.wait_for(lambda t: "READY=1" in t.splitlines() or "RELOADING=1" in t.splitlines())
    assert "RELOADING=1" in reloading.splitlines(), f"READY before RELOADING: {reloading!r}"
    usec = fields(reloading).get("MONOTONIC_USEC", "")
    assert usec.isdigit(), reloading
    now = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert abs(now - int(usec)) < 5_000_000, f"MONOTONIC_USEC={usec} is not CLOCK_MONOTONIC now ({now})"
    ready = notify.wait_for(lambda t: "READY=1" in t.splitlines())
    status = fields(ready).get("STATUS", "")
    assert "generation 2" in status and "rejected" not in status, ready

    write_config(gw.config_path, "routes: [\n")
    os.kill(gw.pid, signal.SIGHUP)
    reloading = notify.wait_for(lambda t: "READY=1" in t.splitlines() or "RELOADING=1" in t.splitlines())
    assert "RELOADING=1" in reloading.splitlines(), f"READY before RELOADING: {reloading!r}"
    assert fields(reloading).get("MONOTONIC_USEC", "").isdigit(), reloading
    ready = notify.wait_for(lambda t: "READY=1" in t.splitlines())
    status = fields(ready).get("STATUS", "")
    assert "last reload rejected" in status and "generation 2" in status, ready


def test_watchdog_pings_every_half_interval(gateway, upstream, notify):
    """With WATCHDOG_USEC=400000 (and no WATCHDOG_PID), WATCHDOG=1 arrives about every 200 ms: at least 3 in
    1.5 s, never more than the 400 ms deadline apart, and not flooding."""
    if "WATCHDOG_PID" in os.environ:
        pytest.skip("the test runner's own WATCHDOG_PID would be inherited")
    start(gateway, upstream, notify, WATCHDOG_USEC="400000")
    notify.wait_for(lambda t: "READY=1" in t.splitlines())
    pings = [t for t, text in notify.collect(1.5) if text == "WATCHDOG=1"]
    assert len(pings) >= 3, f"{len(pings)} WATCHDOG=1 in 1.5 s: {notify.messages}"
    assert len(pings) <= 12, f"{len(pings)} WATCHDOG=1 in 1.5 s"
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert max(gaps) < 0.4, f"watchdog gaps {gaps}"
    assert min(gaps) > 0.1, f"watchdog gaps {gaps}"


def test_watchdog_for_another_pid_sends_no_pings(gateway, upstream, notify):
    """WATCHDOG_PID naming another process means the watchdog is not apigw's: no WATCHDOG=1 is sent."""
    start(gateway, upstream, notify, WATCHDOG_USEC="400000", WATCHDOG_PID=str(os.getpid()))
    notify.wait_for(lambda t: "READY=1" in t.splitlines())
    pings = [text for _, text in notify.collect(0.8) if text == "WATCHDOG=1"]
    assert not pings, f"{len(pings)} WATCHDOG=1 with WATCHDOG_PID={os.getpid()} (not apigw's pid)"
