"""Fleet-wide rate limits through the real binary against a real redis-server: 429 with Retry-After and the RateLimit
fields (never forwarded), the headers on allowed answers, bursts, per-user keys that never touch another user,
shadow limits that never refuse, Redis stopped (on_error allow and deny) and back, a limit changed by reload, and
three instances sharing one limit at three times its rate."""

import copy
import signal
import threading
import time

from apigw_harness import Apigw, assert_json_error, gateway_config, route, wait_until, write_config
from rawhttp import Client, request
from recording_upstream import Fixed

USERS = {"tok-a": "alice", "tok-b": "bob"}


def limits_config(upstream, redis_server, limits, on_error="allow", auth=False, **route_extra):
    r = {**route("search", "/search", "u"), "rate_limit": limits, **route_extra}
    cfg = gateway_config([r, route("free", "/free", "u")], {"u": upstream})
    cfg["rate_limits"] = {"redis": {"nodes": [f"127.0.0.1:{redis_server.port}"], "timeout": "200ms"},
                          "on_error": on_error}
    if auth:
        for token, user in USERS.items():
            redis_server.cli("SET", f"session:{token}", user)
        cfg["auth"] = {"redis": {"nodes": [f"127.0.0.1:{redis_server.port}"], "timeout": "200ms"}}
        r["auth"] = "optional"
    return cfg


def statuses(port, n, target="/search", headers=()):
    out = []
    with Client(port) as c:
        for _ in range(n):
            out.append(c.request("GET", target, headers=list(headers)))
    return out


def series(result, key="route", route_name="search"):
    return f'apigw_rate_limit_requests_total{{route="{route_name}",key="{key}",result="{result}"}}'


def test_over_the_limit_is_refused_with_429_and_never_forwarded(gateway, upstream, redis):
    up = upstream("u", default=Fixed(200, b"ok"))
    server = redis()
    gw = gateway(limits_config(up, server, [{"key": "route", "rate": "5/m"}]))
    answers = statuses(gw.port, 7)
    assert [r.status for r in answers] == [200] * 5 + [429] * 2, answers
    assert len(up.recorded("/search")) == 5
    first = answers[0]
    assert first.header("RateLimit-Policy") == '"route";q=5;w=60'
    assert first.header("RateLimit").startswith('"route";r=')
    refused = answers[-1]
    doc = assert_json_error(refused, 429, "rate_limited")
    assert doc["request_id"] == refused.header("X-Request-Id")
    assert "at most 5 requests per minute by route on route search" in doc["message"], doc
    wait = int(refused.header("Retry-After"))
    assert 1 <= wait <= 12, refused  # one token every 12 s
    assert refused.header("RateLimit") == f'"route";r=0;t={wait}'
    assert refused.header("RateLimit-Policy") == '"route";q=5;w=60'
    assert refused.header("Cache-Control") == "no-store"
    # Other routes are not limited, and carry no RateLimit fields.
    free = request(gw.port, "GET", "/free")
    assert free.status == 200 and free.header("RateLimit") is None
    assert gw.metric(series("allowed")) == 5
    assert gw.metric(series("limited")) == 2
    # The bucket lives in Redis, under the route's hash tag.
    assert server.cli("KEYS", "apigw:rl:{search}:0:route:*").strip()


def test_burst_then_the_rate(gateway, upstream, redis):
    up = upstream("u", default=Fixed(200, b"ok"))
    server = redis()
    gw = gateway(limits_config(up, server, [{"key": "route", "rate": "10/s", "burst": 20}]))
    # The burst, and the tokens that came back while it was asked (one every 100 ms; a loaded machine is slower).
    started = time.monotonic()
    burst = statuses(gw.port, 30)
    back = int((time.monotonic() - started) * 10)
    assert sum(r.status == 200 for r in burst) in range(20, 23 + back), [r.status for r in burst]
    # Then one every 100 ms: over 1.5 s of steady asking, about 15 more.
    started = time.monotonic()
    allowed = asked = 0
    with Client(gw.port) as c:
        while time.monotonic() < started + 1.5:
            asked += 1
            allowed += c.request("GET", "/search").status == 200
            time.sleep(0.01)
    rate_gave = (time.monotonic() - started) * 10
    assert min(asked, rate_gave) - 3 <= allowed <= rate_gave + 3, (allowed, asked, rate_gave)


def test_per_user_keys_never_touch_another_user(gateway, upstream, redis):
    up = upstream("u", default=Fixed(200, b"ok"))
    server = redis()
    gw = gateway(limits_config(up, server, [{"key": "user", "rate": "3/m"}], auth=True))
    alice = statuses(gw.port, 5, headers=[("Authorization", "Bearer tok-a")])
    assert [r.status for r in alice] == [200, 200, 200, 429, 429]
    bob = statuses(gw.port, 3, headers=[("Authorization", "Bearer tok-b")])
    assert [r.status for r in bob] == [200, 200, 200]
    # Anonymous requests count by the client's address, apart from every user.
    anonymous = statuses(gw.port, 4)
    assert [r.status for r in anonymous] == [200, 200, 200, 429]
    assert gw.metric(series("limited", key="user")) == 3


def test_shadow_limit_never_refuses(gateway, upstream, redis):
    up = upstream("u", default=Fixed(200, b"ok"))
    server = redis()
    gw = gateway(limits_config(up, server, [{"key": "client_ip", "rate": "2/m", "shadow": True}]))
    answers = statuses(gw.port, 6)
    assert [r.status for r in answers] == [200] * 6
    assert len(up.recorded("/search")) == 6
    assert answers[0].header("RateLimit") is None  # a shadow limit is not advertised
    assert gw.metric(series("allowed", key="client_ip")) == 2
    assert gw.metric(series("shadow_limited", key="client_ip")) == 4
    assert gw.wait_log("rate limit (shadow) exceeded: route search, key client_ip")


def test_redis_down_allow_counts_and_recovers(gateway, upstream, redis):
    up = upstream("u", default=Fixed(200, b"ok"))
    server = redis()
    gw = gateway(limits_config(up, server, [{"key": "route", "rate": "2/m"}]))
    assert request(gw.port, "GET", "/search").status == 200  # the bucket has one more
    server.stop()
    started = time.monotonic()
    assert [r.status for r in statuses(gw.port, 5)] == [200] * 5  # on_error: allow
    assert time.monotonic() - started < 2.0  # one timeout at most, then the back-off answers at once
    assert gw.metric(series("error_allowed")) == 5
    assert gw.metric('apigw_rate_limit_redis_calls_total{result="error"}') >= 1
    server.start()
    # The bucket was in the stopped Redis (no persistence): back, the limit holds again from a full bucket.
    assert wait_until(lambda: request(gw.port, "GET", "/search").status == 429, timeout=10)


def test_redis_down_deny_answers_503(gateway, upstream, redis):
    up = upstream("u", default=Fixed(200, b"ok"))
    server = redis()
    gw = gateway(limits_config(up, server, [{"key": "route", "rate": "100/s"}], on_error="deny"))
    assert request(gw.port, "GET", "/search").status == 200
    server.stop()
    answers = statuses(gw.port, 20)  # past the tokens this worker held
    refused = [r for r in answers if r.status == 503]
    assert refused, [r.status for r in answers]
    assert_json_error(refused[0], 503, "rate_limit_unavailable")
    assert refused[0].header("Retry-After") == "1"
    assert gw.metric(series("error_denied")) == len(refused)
    server.start()
    assert wait_until(lambda: request(gw.port, "GET", "/search").status == 200, timeout=10)


def test_reload_changes_a_limit(gateway, upstream, redis):
    up = upstream("u", default=Fixed(200, b"ok"))
    server = redis()
    cfg = limits_config(up, server, [{"key": "route", "rate": "2/m"}])
    gw = gateway(cfg)
    assert [r.status for r in statuses(gw.port, 3)] == [200, 200, 429]
    cfg = copy.deepcopy(gw.config)  # with the listen addresses the harness gave it
    cfg["routes"][0]["rate_limit"] = [{"key": "client_ip", "rate": "100/m"}]
    write_config(gw.config_path, cfg)
    gw.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: request(gw.port, "GET", "/search").status == 200, timeout=5), gw.log()
    answer = request(gw.port, "GET", "/search")
    assert answer.header("RateLimit-Policy") == '"client_ip";q=100;w=60'


def test_three_instances_hold_one_limit(tmp_path, upstream, redis):
    """A limit of 100/s under 300 requests a second spread over three instances lets 100/s through in total."""
    up = upstream("u", default=Fixed(200, b"ok"))
    server = redis()
    rate, seconds = 100, 6
    cfg = limits_config(up, server, [{"key": "route", "rate": f"{rate}/s", "burst": 10}])
    cfg.setdefault("server", {})["workers"] = 2
    gws = [Apigw(cfg, workdir=tmp_path / f"gw{i}", name=f"gw{i}") for i in range(3)]
    try:
        allowed = [0] * 6  # per load thread: two per instance
        sent = [0] * 6
        stop = time.monotonic() + seconds + 1
        measure_from = time.monotonic() + 1  # the burst is spent in the first second

        def load(thread):
            # 50 requests a second per thread, two threads per instance: three times the limit in all.
            interval = 0.02
            with Client(gws[thread // 2].port) as c:
                next_at = time.monotonic()
                while time.monotonic() < stop:
                    status = c.request("GET", "/search").status
                    if measure_from <= time.monotonic() < stop:
                        sent[thread] += 1
                        allowed[thread] += status == 200
                    next_at += interval
                    time.sleep(max(0.0, next_at - time.monotonic()))

        threads = [threading.Thread(target=load, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        total = sum(allowed)
        expected = rate * seconds
        assert sum(sent) >= 2.5 * expected, sent  # about three times the rate was asked for
        assert abs(total - expected) <= 0.1 * expected, (total, expected, allowed, sent)
        # No instance is starved: each gets at least a tenth of what passed (a third would be an even share).
        assert all(allowed[2 * i] + allowed[2 * i + 1] >= 0.1 * total for i in range(3)), allowed
        calls = sum(gw.metric('apigw_rate_limit_redis_calls_total{result="ok"}') for gw in gws)
        print(f"three instances: {total} allowed of {sum(sent)} in {seconds} s (limit {expected}; by load thread "
              f"{allowed}); "
              f"{calls:.0f} Redis calls")
    finally:
        for gw in gws:
            gw.stop()
