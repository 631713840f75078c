"""Retries and load balancing: a refused connect is always safe to retry; a request that reached an
upstream is retried only when idempotent; attempts: 0 disables retries; round_robin spreads evenly."""

import time

from apigw_harness import assert_json_error, free_port, gateway_config, route
from rawhttp import Client, request
from recording_upstream import Dynamic, Fixed, Reset


def make(gateway, endpoints, attempts, **extra):
    cfg = {"endpoints": endpoints, "connect_timeout": "200ms", "timeout": "1s", "retries": {"attempts": attempts},
           **extra}
    return gateway(gateway_config([route("r", "/*rest", "back")], {"back": cfg}))


def total_recorded(*ups):
    time.sleep(0.2)  # a retry would already have happened before the client got its answer; be generous
    return sum(len(u.recorded()) for u in ups)


def test_get_retried_after_refused_connect(gateway, upstream):
    up = upstream("good")
    gw = make(gateway, [free_port(), up], attempts=1)
    with Client(gw.port) as c:
        for i in range(6):
            r = c.request("GET", f"/g{i}")
            assert r.status == 200 and r.body == b"ok", (i, r)
    assert sorted(q.path for q in up.recorded()) == sorted(f"/g{i}" for i in range(6))


def test_post_retried_after_refused_connect(gateway, upstream):
    up = upstream("good")
    gw = make(gateway, [free_port(), up], attempts=1)
    with Client(gw.port) as c:
        for i in range(6):
            r = c.request("POST", f"/p{i}", body=f"body{i}".encode())
            assert r.status == 200, (i, r)
    assert sorted((q.path, q.body) for q in up.recorded()) == sorted((f"/p{i}", f"body{i}".encode()) for i in range(6))


def test_get_retried_once_when_both_endpoints_reset(gateway, upstream):
    a, b = upstream("a", default=Reset()), upstream("b", default=Reset())
    gw = make(gateway, [a, b], attempts=1)
    r = request(gw.port, "GET", "/idem")
    assert_json_error(r, 502, "bad_gateway")
    assert total_recorded(a, b) == 2, (len(a.recorded()), len(b.recorded()))
    assert len(a.recorded()) == 1 and len(b.recorded()) == 1, "the retry should go to the other endpoint"


def test_post_not_retried_after_upstream_read_it(gateway, upstream):
    a, b = upstream("a", default=Reset()), upstream("b", default=Reset())
    gw = make(gateway, [a, b], attempts=1)
    r = request(gw.port, "POST", "/once", body=b"payload")
    assert_json_error(r, 502, "bad_gateway")
    assert total_recorded(a, b) == 1, (len(a.recorded()), len(b.recorded()))


def test_post_to_resetting_endpoint_not_retried_on_working_one(gateway, upstream):
    bad, good = upstream("bad", default=Reset()), upstream("good")
    gw = make(gateway, [bad, good], attempts=1)
    statuses = []
    for i in range(4):
        r = request(gw.port, "POST", f"/p{i}", body=b"x")
        assert r.status in (200, 502), r
        statuses.append(r.status)
    time.sleep(0.2)
    assert statuses.count(502) >= 1 and statuses.count(200) >= 1, statuses
    ok_paths = sorted(f"/p{i}" for i, s in enumerate(statuses) if s == 200)
    failed_paths = sorted(f"/p{i}" for i, s in enumerate(statuses) if s == 502)
    assert sorted(q.path for q in good.recorded()) == ok_paths, "a POST that reached an upstream was retried"
    assert sorted(q.path for q in bad.recorded()) == failed_paths


def test_attempts_zero_means_no_retry(gateway, upstream):
    a, b = upstream("a", default=Reset()), upstream("b", default=Reset())
    gw = make(gateway, [a, b], attempts=0)
    r = request(gw.port, "GET", "/idem")
    assert_json_error(r, 502, "bad_gateway")
    assert total_recorded(a, b) == 1


def test_attempts_zero_refused_connect_fails(gateway, upstream):
    up = upstream("good")
    gw = make(gateway, [free_port(), up], attempts=0)
    statuses = [request(gw.port, "GET", f"/z{i}").status for i in range(4)]
    assert set(statuses) <= {200, 502}, statuses
    assert 502 in statuses, f"with attempts: 0 the refused endpoint never showed: {statuses}"
    assert len(up.recorded()) == statuses.count(200)


def test_round_robin_spreads_evenly(gateway, upstream):
    a, b = upstream("a"), upstream("b")
    for u in (a, b):
        u.default = Dynamic(lambda req, name=u.name: Fixed(200, name.encode()))
    gw = make(gateway, [a, b], attempts=0, balance="round_robin")
    with Client(gw.port) as c:
        answers = [c.request("GET", f"/rr{i}").body for i in range(100)]
    assert set(answers) == {b"a", b"b"}
    na, nb = len(a.recorded()), len(b.recorded())
    assert na + nb == 100
    assert 40 <= na <= 60 and 40 <= nb <= 60, (na, nb)


def test_single_endpoint_upstream_retry_after_reset_reaches_same_endpoint(gateway, upstream):
    # one endpoint resetting only the first time: an idempotent GET is retried and succeeds
    up = upstream("flaky")
    state = {"n": 0}

    def flaky(req):
        state["n"] += 1
        return Reset() if state["n"] == 1 else Fixed(200, b"second try")

    up.default = Dynamic(flaky)
    gw = make(gateway, [up], attempts=1)
    r = request(gw.port, "GET", "/flaky")
    assert r.status == 200 and r.body == b"second try", r
    assert len(up.recorded()) == 2
