"""The migration's synchronous split, end to end: two recording upstreams (the old side and the new side), many
affinity keys, and the property the migration relies on — a numeric key lands in `key mod buckets`, the share
served by the new side is exactly the keys below the threshold, raising the percent by reload only adds keys, and
a key is served by the same side for every request. Beta users are always on the new side; requests without a key
draw their side at random."""

import copy
import random
import signal

from apigw_harness import gateway_config, redis_sessions, route, wait_until, write_config
from rawhttp import Client, request

DEVICE = "X-Device-Id"
MASK = (1 << 64) - 1


def bucket_of(key, buckets=10000):
    """The bucket apigw puts `key` in: a numeric key's value, else FNV-1a 64 then MurmurHash3's fmix64; mod buckets."""
    if key.isdigit() and len(key) <= 19:
        return int(key) % buckets
    h = 14695981039346656037
    for byte in key.encode():
        h = ((h ^ byte) * 1099511628211) & MASK
    h ^= h >> 33
    h = (h * 0xff51afd7ed558ccd) & MASK
    h ^= h >> 33
    h = (h * 0xc4ceb9fe1a85ec53) & MASK
    h ^= h >> 33
    return h % buckets


def split_config(old, new, percent, routes=None, **migration):
    r = route("users", "/users/*rest", "old")
    r["split"] = {"upstream": "new", "percent": percent}
    cfg = gateway_config(routes or [r], {"old": old, "new": new}, server={"workers": 2})
    cfg["migration"] = {"affinity": [f"header:{DEVICE}"], **migration}
    return cfg


def side(gw, key=None, path="/users/1", headers=()):
    """Which upstream served one request ("old" or "new"), from the upstream's own tag."""
    hs = list(headers) + ([(DEVICE, key)] if key is not None else [])
    r = request(gw.port, "GET", path, hs)
    assert r.status == 200, r
    served_by = r.header("X-Upstream-Name")
    assert r.header("X-Apigw-Upstream") == served_by, r
    return served_by


def reload_and_wait(gw, cfg):
    before = gw.metric("apigw_config_generation")
    write_config(gw.config_path, cfg)
    gw.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: gw.metric("apigw_config_generation") == before + 1, timeout=5), gw.log()


def test_numeric_keys_land_in_key_mod_buckets_and_the_share_is_exact(gateway, upstream):
    old, new = upstream("old"), upstream("new")
    gw = gateway(split_config(old, new, 25))
    rng = random.Random(7)
    keys = [str(rng.randrange(10**12)) for _ in range(400)]
    moved = 0
    for key in keys:
        expected = "new" if int(key) % 10000 < 2500 else "old"
        assert side(gw, key) == expected, key
        moved += expected == "new"
    assert 60 < moved < 140  # about a quarter, so both sides were exercised
    assert gw.metric('apigw_migration_split_requests_total{route="users",side="split"}') == moved
    assert gw.metric('apigw_migration_split_requests_total{route="users",side="route"}') == len(keys) - moved


def test_other_keys_are_hashed_and_the_fraction_matches_the_percent(gateway, upstream):
    old, new = upstream("old"), upstream("new")
    gw = gateway(split_config(old, new, 10))
    keys = [f"device-{i}" for i in range(2000)]
    with Client(gw.port) as c:
        sides = [c.request("GET", "/users/1", [(DEVICE, k)]).header("X-Upstream-Name") for k in keys]
    assert sides == ["new" if bucket_of(k) < 1000 else "old" for k in keys]
    share = sides.count("new") / len(keys)
    assert 0.08 < share < 0.12, share  # 10 %, within sampling noise of a good hash
    # The same key is always served by the same side, on either worker.
    for key, first in list(zip(keys, sides))[:200]:
        assert side(gw, key) == first, key


def test_a_ramp_by_reload_only_adds_users_and_each_stays(gateway, upstream):
    old, new = upstream("old"), upstream("new")
    cfg = split_config(old, new, "0.01")
    gw = gateway(cfg)
    cfg = copy.deepcopy(gw.config)
    rng = random.Random(11)
    keys = [str(rng.randrange(10**9)) for _ in range(300)] + [f"d-{i}" for i in range(300)] + ["10000", "20000"]
    moved_before = set()
    for step, percent in enumerate(["0.01", "1", "25", "100"]):
        if step:
            cfg["routes"][0]["split"]["percent"] = percent
            reload_and_wait(gw, cfg)
        moved = {k for k in keys if side(gw, k) == "new"}
        assert moved_before <= moved, f"at {percent} % these keys went back: {sorted(moved_before - moved)[:5]}"
        # Each key keeps its side on a second request too.
        for k in rng.sample(keys, 40):
            assert side(gw, k) == ("new" if k in moved else "old"), (percent, k)
        moved_before = moved
    assert {"10000", "20000"} <= moved_before and moved_before == set(keys)  # 100 %: everyone
    # 0.01 % of 10000 buckets is bucket 0 alone: exactly the numeric keys that are multiples of 10000.
    cfg["routes"][0]["split"]["percent"] = "0.01"
    reload_and_wait(gw, cfg)
    assert {k for k in keys if side(gw, k) == "new"} == {k for k in keys if bucket_of(k) == 0} >= {"10000", "20000"}


def test_requests_without_a_key_draw_their_side(gateway, upstream):
    old, new = upstream("old"), upstream("new")
    gw = gateway(split_config(old, new, 50))
    with Client(gw.port) as c:
        sides = [c.request("GET", "/users/1").header("X-Upstream-Name") for _ in range(400)]
    assert 140 < sides.count("new") < 260, sides.count("new")


def test_affinity_sources_in_order_and_a_trusted_proxys_client(gateway, upstream):
    old, new = upstream("old"), upstream("new")
    cfg = split_config(old, new, 50, affinity=[f"header:{DEVICE}", "cookie:device", "client_ip"])
    cfg["server"]["trusted_proxies"] = ["127.0.0.1/32"]
    gw = gateway(cfg)
    # Pick keys on each side (numeric: side known from the formula).
    low, high = "4999", "5000"
    assert side(gw, low) == "new" and side(gw, high) == "old"
    assert side(gw, headers=[("Cookie", f"a=1; device={low}")]) == "new"
    assert side(gw, high, headers=[("Cookie", f"device={low}")]) == "old"  # the header comes first
    # client_ip: the address the trusted proxy in front names, every time the same side.
    ip_side = {side(gw, headers=[("X-Real-IP", "203.0.113.7")]) for _ in range(20)}
    assert len(ip_side) == 1
    xff_side = {side(gw, headers=[("X-Forwarded-For", "198.51.100.1, 203.0.113.7")]) for _ in range(20)}
    assert xff_side == ip_side


def test_routes_without_split_and_split_off(gateway, upstream):
    old, new = upstream("old"), upstream("new")
    plain = route("plain", "/plain", "old")
    off = route("off", "/off", "old")
    off["split"] = "off"
    cfg = split_config(old, new, 100, routes=[plain, off])
    cfg["migration"]["split"] = {"upstream": "new", "percent": 100}  # the default for every route
    gw = gateway(cfg)
    assert side(gw, "1", path="/plain") == "new"  # the section's default
    assert side(gw, "1", path="/off") == "old"


def test_beta_users_are_always_moved(gateway, upstream, redis):
    old, new = upstream("old"), upstream("new")
    r = route("users", "/users/*rest", "old")
    r["auth"] = "required"
    r["split"] = {"upstream": "new", "percent": 0}
    cfg = gateway_config([r], {"old": old, "new": new})
    cfg["auth"] = redis_sessions(redis(), {"tok-beta": "1001", "tok-other": "1002"})
    cfg["migration"] = {"beta_users": ["1001"]}
    gw = gateway(cfg)
    assert side(gw, headers=[("Authorization", "Bearer tok-beta")]) == "new"
    assert side(gw, headers=[("Authorization", "Bearer tok-other")]) == "old"
    assert new.last().header("X-User-Id") == "1001"


def test_a_split_route_names_its_side_without_debug_headers(gateway, upstream):
    old, new = upstream("old"), upstream("new")
    plain = route("plain", "/plain", "old")
    cfg = split_config(old, new, 50, routes=[route("users", "/users/*rest", "old"), plain])
    cfg["routes"][0]["split"] = {"upstream": "new", "percent": 50}
    cfg["server"]["debug_headers"] = False
    gw = gateway(cfg)
    for key, expected in (("4999", "new"), ("5000", "old")):
        r = request(gw.port, "GET", "/users/1", [(DEVICE, key)])
        assert r.header("X-Apigw-Upstream") == expected == r.header("X-Upstream-Name"), r
        assert r.header("X-Apigw-Route") is None, r
    r = request(gw.port, "GET", "/plain", [(DEVICE, "4999")])
    assert r.header("X-Apigw-Upstream") is None and r.header("X-Apigw-Route") is None, r

