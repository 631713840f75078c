"""Fixtures for apigw's end-to-end tests: gateways and recording upstreams, stopped by PID at teardown,
with the gateway's log (and the upstreams' event logs) attached to the report of a failed test."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from apigw_harness import Apigw  # noqa: E402
from memcached_harness import MemcachedServer  # noqa: E402
from recording_upstream import Upstream  # noqa: E402
from redis_harness import RedisServer  # noqa: E402


def pytest_collection_modifyitems(config, items):
    # Skip only when no binary was given at all; a given but broken binary must fail, not skip.
    if os.environ.get("APIGW_BIN"):
        return
    skip = pytest.mark.skip(reason="APIGW_BIN is not set")
    for item in items:
        item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    for gw in getattr(item, "_apigw_gateways", []):
        text = gw.log()
        if len(text) > 30000:
            text = "...\n" + text[-30000:]
        rep.sections.append((f"apigw log [{gw.name}] pid {gw.proc.pid if gw.proc else '-'} ({rep.when})",
                             text or "(empty)"))
        rep.sections.append((f"apigw config [{gw.name}]", gw.config_text()))
    for up in getattr(item, "_apigw_upstreams", []):
        events = up.events[-200:]
        rep.sections.append((f"upstream {up.name or up.port} events", "\n".join(events) or "(none)"))


@pytest.fixture
def upstream(request):
    """Factory: upstream(name="a", default=Fixed(...)) → a started recording Upstream."""
    ups = []
    request.node._apigw_upstreams = ups

    def make(name: str = "", **kw) -> Upstream:
        up = Upstream(name=name or f"u{len(ups) + 1}", **kw)
        ups.append(up)
        return up

    yield make
    for up in reversed(ups):
        up.stop()


@pytest.fixture
def gateway(request, tmp_path, upstream):
    """Factory: gateway(config_dict_or_yaml, **Apigw kwargs) → a started Apigw. Stopped at teardown; a
    sanitizer report in its log or a gateway that ignored SIGTERM fails the test."""
    gws = []
    request.node._apigw_gateways = gws

    def start(config, **kw) -> Apigw:
        kw.setdefault("name", f"gw{len(gws) + 1}")
        gw = Apigw(config, workdir=tmp_path / kw["name"], start=False, **kw)
        gws.append(gw)
        gw.start()
        return gw

    yield start
    problems = []
    for gw in gws:
        gw.stop()
        if gw.killed:
            problems.append(f"{gw.name}: did not exit within 20s of SIGTERM (killed)")
        report = gw.sanitizer_report()
        if report:
            problems.append(f"{gw.name}: sanitizer report:\n{report}")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def _servers(kind):
    """A factory fixture's body: make(*args) starts a `kind` with those extra options; all are stopped by PID at
    teardown."""
    servers = []

    def make(*args):
        server = kind(args=args)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def redis():
    """Factory: redis(*args) → a started RedisServer on a free port."""
    yield from _servers(RedisServer)


@pytest.fixture
def memcached():
    """Factory: memcached(*args) → a started MemcachedServer on a free port."""
    yield from _servers(MemcachedServer)


@pytest.fixture
def pools(memcached):
    """The response cache's Memcached pools as in production: ([two primary servers], [one secondary server])."""
    return [memcached(), memcached()], [memcached()]

