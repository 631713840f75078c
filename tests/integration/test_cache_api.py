"""The cache API on the admin listener (/_cache), end to end against real memcached processes: raw values written,
read and deleted with their flags and TTL, each write and delete copied to the secondary pool, keys percent-decoded
and checked, bad headers, oversized values and missing tokens refused, purge of a route's entry by the parts of its
request, a corrupt value put at a route's key answered as a miss, the primary pool down (503), and key placement
agreeing with libmemcached's ketama both ways (through tests/tools/memc_ketama)."""

import json
import os
import re
import time
from urllib.parse import quote

import pytest

from apigw_harness import assert_api_error, cached_route, gateway_config, route, wait_until
from memcached_harness import memc_ketama
from rawhttp import request
from recording_upstream import serial

TOKEN = "cache-api-token-0123456789"
STORED = 'apigw_cache_stores_total{result="ok"}'
SECONDARY_OK = 'apigw_cache_secondary_writes_total{result="ok"}'
KEY_RE = re.compile(r"apigw:v2:(?P<route>[A-Za-z0-9_.-]+):[0-9a-f]{64}")  # an entry: one variant of a URL
RESOURCE_RE = re.compile(r"apigw:r2:(?P<route>[A-Za-z0-9_.-]+):[0-9a-f]{64}")  # a URL's resource version


# --- helpers -----------------------------------------------------------------------------------------------

def cache_config(upstream, primary, secondary=(), routes=None, api=True, timeout="500ms", **section):
    routes = routes or [cached_route("items", "/items/*rest", vary=["Accept-Language"]), route("plain", "/plain", "u")]
    cfg = gateway_config(routes, {"u": upstream})
    cache = {"primary": {"servers": [s.address for s in primary], "timeout": timeout, "connections": 2}}
    if secondary:
        cache["secondary"] = {"servers": [s.address for s in secondary], "timeout": "500ms", "queue": 1000}
    if api:
        cache["api"] = {"token": TOKEN}
    cache.update(section)
    cfg["cache"] = cache
    return cfg


def api(gw, method, key, body=None, headers=(), token=TOKEN):
    """One call to /_cache/<key> (`key` as it goes on the wire: percent-encode it yourself)."""
    hs = list(headers)
    if token is not None:
        hs.append(("Authorization", f"Bearer {token}"))
    return request(gw.admin_port, method, f"/_cache/{key}", hs, body)


def purge(gw, doc, token=TOKEN):
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return api(gw, "POST", "purge", body, [("Content-Type", "application/json")], token=token)




def where(servers, key):
    """Indexes of the servers holding `key`."""
    return [i for i, s in enumerate(servers) if s.get(key) is not None]


def value_of(servers, key):
    found = [v for v in (s.get(key) for s in servers) if v is not None]
    assert len(found) <= 1, f"{key} is on {len(found)} servers"
    return found[0] if found else None


def get(gw, target, headers=()):
    return request(gw.port, "GET", target, headers)


def wait_stored(gw, n, timeout=5.0):
    assert wait_until(lambda: gw.metric(STORED) >= n, timeout=timeout), \
        f"{gw.metric(STORED)} fills stored within {timeout}s, expected {n}"
    assert gw.metric(STORED) == n


# --- raw values ---------------------------------------------------------------------------------------------

def test_put_get_delete_raw_values_and_every_write_reaches_the_secondary(gateway, upstream, pools):
    primary, secondary = pools
    gw = gateway(cache_config(upstream(), primary, secondary))
    value = bytes(range(256)) + b"\r\nEND\r\nVALUE x 0 1\r\n"

    r = api(gw, "PUT", "monolith:page:1", value, [("X-Cache-Flags", "42")])
    assert r.status == 204 and r.body == b"", r
    # Stored as sent, under the key as given (no prefix, no record), on exactly one primary server.
    assert len(where(primary, "monolith:page:1")) == 1
    assert [s.item("monolith:page:1") for s in primary if s.get("monolith:page:1")] == [(value, 42)]

    r = api(gw, "GET", "monolith:page:1")
    assert r.status == 200 and r.body == value, r
    assert r.header("X-Cache-Flags") == "42" and not r.has_header("X-Cache-TTL"), r

    # The copy on the secondary: value and flags.
    assert wait_until(lambda: secondary[0].item("monolith:page:1") == (value, 42), timeout=5), \
        secondary[0].item("monolith:page:1")

    # A TTL: reported as seconds left, and kept on the copy.
    r = api(gw, "PUT", "monolith:page:1", b"v2", [("X-Cache-TTL", "100"), ("X-Cache-Flags", "4294967295")])
    assert r.status == 204, r
    r = api(gw, "GET", "monolith:page:1")
    assert r.status == 200 and r.body == b"v2" and r.header("X-Cache-Flags") == "4294967295", r
    assert 95 <= int(r.header("X-Cache-TTL")) <= 101, r  # memcached counts from its own clock, whole seconds
    assert wait_until(lambda: secondary[0].item("monolith:page:1") == (b"v2", 4294967295), timeout=5)
    (copy,) = [i for i in secondary[0].metadump() if i["key"] == "monolith:page:1"]
    assert 90 <= copy["exp"] - time.time() <= 101, copy

    # Beyond 30 days memcached reads an expiration time as a date: a longer TTL must still mean seconds from now.
    month_and_more = 40 * 24 * 3600
    assert api(gw, "PUT", "monolith:long", b"v", [("X-Cache-TTL", str(month_and_more))]).status == 204
    r = api(gw, "GET", "monolith:long")
    assert r.status == 200 and month_and_more - 10 <= int(r.header("X-Cache-TTL")) <= month_and_more + 1, r

    # An empty value is a value.
    assert api(gw, "PUT", "monolith:empty", b"").status == 204
    r = api(gw, "GET", "monolith:empty")
    assert r.status == 200 and r.body == b"" and r.header("X-Cache-Flags") == "0", r

    r = api(gw, "DELETE", "monolith:page:1")
    assert r.status == 204, r
    assert where(primary, "monolith:page:1") == []
    assert_api_error(api(gw, "GET", "monolith:page:1"), 404)
    assert api(gw, "DELETE", "monolith:page:1").status == 204, "deleting an absent key is not an error"
    assert wait_until(lambda: secondary[0].get("monolith:page:1") is None, timeout=5), "the delete was not copied"
    assert secondary[0].get("monolith:empty") == b""

    # Four PUTs and two DELETEs, each copied once.
    assert wait_until(lambda: gw.metric(SECONDARY_OK) == 6, timeout=5), gw.metric(SECONDARY_OK)
    assert gw.metric('apigw_memcached_duration_seconds_count{pool="primary"}') >= 7


def test_keys_are_percent_decoded_and_checked(gateway, upstream, pools):
    primary, _ = pools
    gw = gateway(cache_config(upstream(), primary))

    good = {
        "a%2Fb%3Fc%3Dd%26e": "a/b?c=d&e",
        "%41%42c": "ABc",
        "k" * 250: "k" * 250,
        "%6B" * 250: "k" * 250,
    }
    for wire, key in good.items():
        r = api(gw, "PUT", wire, key.encode())
        assert r.status == 204, (wire, r)
        assert value_of(primary, key) == key.encode(), wire
        r = api(gw, "GET", wire)
        assert r.status == 200 and r.body == key.encode(), (wire, r)
    stored = sum(s.curr_items() for s in primary)
    assert stored == 3

    bad = ["k" * 251, "%6B" * 251, "a%20b", "a%0Ab", "a%0Db", "a%00b", "a%09b", "a%7Fb", "%zz", "a%2", ""]
    for wire in bad:
        for method, body in (("PUT", b"v"), ("GET", None), ("DELETE", None)):
            assert_api_error(api(gw, method, wire, body), 400)
    assert sum(s.curr_items() for s in primary) == stored


def test_bad_ttl_and_flags_and_oversized_values_are_refused(gateway, upstream, pools):
    primary, _ = pools
    gw = gateway(cache_config(upstream(), primary, max_item_bytes="4KiB"))

    for ttl in ("abc", "-1", "1.5", "", "10s", " 5x", "99999999999999999999999"):
        assert_api_error(api(gw, "PUT", "k", b"v", [("X-Cache-TTL", ttl)]), 400)
    for flags in ("x", "-1", "4294967296", "1.0", "", "0x10"):
        assert_api_error(api(gw, "PUT", "k", b"v", [("X-Cache-Flags", flags)]), 400)
    assert_api_error(api(gw, "PUT", "big", b"x" * 4097), 413)
    assert_api_error(api(gw, "PUT", "big", b"x" * 100_000), 413)
    assert sum(s.curr_items() for s in primary) == 0, "a refused PUT wrote something"

    assert api(gw, "PUT", "fits", b"x" * 4096).status == 204
    assert api(gw, "GET", "fits").body == b"x" * 4096
    # The admin listener still serves after the refusals.
    assert request(gw.admin_port, "GET", "/readyz").status == 200


def test_the_token_is_required_and_never_logged(gateway, upstream, pools):
    primary, _ = pools
    gw = gateway(cache_config(upstream(), primary, routes=[cached_route("items", "/items/*rest")]))
    assert api(gw, "PUT", "k", b"v").status == 204

    def refused(r):
        assert_api_error(r, 401)
        assert (r.header("WWW-Authenticate") or "").startswith("Bearer"), r

    for headers in ([], [("Authorization", f"Bearer {TOKEN}x")], [("Authorization", f"Bearer {TOKEN[:-1]}")],
                    [("Authorization", "Bearer wrong-token-0123456789")], [("Authorization", f"Basic {TOKEN}")],
                    [("Authorization", TOKEN)], [("Authorization", "Bearer ")]):
        refused(api(gw, "GET", "k", headers=headers, token=None))
        refused(api(gw, "PUT", "k", b"other", headers=headers, token=None))
        refused(api(gw, "DELETE", "k", headers=headers, token=None))
        refused(request(gw.admin_port, "POST", "/_cache/purge", headers,
                        json.dumps({"route": "items", "path": "/items/1", "host": "127.0.0.1"}).encode()))
    assert value_of(primary, "k") == b"v", "a refused call changed the value"
    assert TOKEN not in gw.log()


def test_no_cache_api_without_its_section(gateway, upstream, memcached):
    primary = memcached()
    up = upstream()
    without_api = gateway(cache_config(up, [primary], api=False))
    assert_api_error(api(without_api, "GET", "k"), 404)
    assert_api_error(api(without_api, "PUT", "k", b"v"), 404)
    assert primary.curr_items() == 0

    no_cache = gateway_config([route("plain", "/plain", "u")], {"u": up})
    without_cache = gateway(no_cache)
    assert_api_error(api(without_cache, "GET", "k"), 404)
    assert request(without_cache.admin_port, "GET", "/readyz").status == 200


# --- purge ----------------------------------------------------------------------------------------------

def test_purge_deletes_the_entry_a_request_was_stored_under_on_both_pools(gateway, upstream, pools):
    primary, secondary = pools
    up = upstream(default=serial())
    gw = gateway(cache_config(up, primary, secondary))
    target, lang = "/items/42?b=2&a=1", [("Accept-Language", "fr")]

    assert get(gw, target, lang).header("X-Cache") == "MISS"
    assert get(gw, "/items/42?a=1&b=2", [("Accept-Language", "de")]).header("X-Cache") == "MISS"
    wait_stored(gw, 2)
    # Two variants of one URL: two entries and the one resource key they share, copied to the secondary.
    assert wait_until(lambda: secondary[0].curr_items() == 3, timeout=5)
    all_stored = sorted(k for s in primary for k in s.keys())
    stored_keys = [k for k in all_stored if KEY_RE.fullmatch(k)]
    stored_resources = [k for k in all_stored if RESOURCE_RE.fullmatch(k)]
    assert len(stored_keys) == 2 and len(stored_resources) == 1 and len(all_stored) == 3, all_stored

    doc = {"route": "items", "path": "/items/42", "query": "a=1&b=2", "host": "127.0.0.1",
           "headers": {"Accept-Language": "fr"}}
    r = purge(gw, doc)
    assert r.status == 200, r
    answer = r.json()
    assert answer.get("deleted") is True, answer
    key, resource = answer["key"], answer["resource"]
    assert KEY_RE.fullmatch(key) and KEY_RE.fullmatch(key)["route"] == "items", key
    assert RESOURCE_RE.fullmatch(resource) and RESOURCE_RE.fullmatch(resource)["route"] == "items", resource
    assert key in stored_keys, f"purge computed {key}, the request was stored under one of {stored_keys}"
    assert [resource] == stored_resources, f"purge computed {resource}, the resource is {stored_resources}"
    # The resource's version and the named variant's entry are deleted, on both pools.
    assert value_of(primary, key) is None and value_of(primary, resource) is None
    assert wait_until(lambda: secondary[0].get(key) is None and secondary[0].get(resource) is None, timeout=5), \
        "the purge was not copied"
    # The other variant's entry stays in Memcached, but its version is gone: it is no longer served.
    (other,) = [k for k in stored_keys if k != key]
    assert value_of(primary, other) is not None and secondary[0].get(other) is not None

    r = get(gw, target, lang)
    assert r.header("X-Cache") == "MISS" and r.json()["n"] == 3, r
    r = get(gw, "/items/42?a=1&b=2", [("Accept-Language", "de")])
    assert r.header("X-Cache") == "MISS" and r.json()["n"] == 4, r
    wait_stored(gw, 4)
    r = get(gw, target, lang)
    assert r.header("X-Cache") == "HIT" and r.json()["n"] == 3, r
    r = get(gw, "/items/42?a=1&b=2", [("Accept-Language", "de")])
    assert r.header("X-Cache") == "HIT" and r.json()["n"] == 4, r

    # The key is the request's: query order does not matter, each other part does. The resource is the URL's:
    # the same for every variant (vary headers), another for another query, path or host.
    def keys_of(**over):
        r = purge(gw, {**doc, **over})
        assert r.status == 200, (over, r)
        return r.json()["key"], r.json()["resource"]

    assert keys_of(query="b=2&a=1") == (key, resource)
    variants = [keys_of(headers={"Accept-Language": "de"}), keys_of(headers={})]
    urls = [keys_of(query="a=1&b=3"), keys_of(path="/items/43"), keys_of(host="api.example.com"), keys_of(query="")]
    others = [k for k, _ in variants + urls]
    assert key not in others and len(set(others)) == len(others), others
    assert keys_of(headers={"Accept-Language": "de"})[0] == other
    assert all(r == resource for _, r in variants), variants
    url_resources = [r for _, r in urls]
    assert resource not in url_resources and len(set(url_resources)) == len(url_resources), url_resources


def test_purge_refuses_bad_bodies_and_unknown_routes(gateway, upstream, pools):
    primary, _ = pools
    gw = gateway(cache_config(upstream(), primary))
    bodies = [b"", b"not json", b"[1, 2]", b'"items"', b'{"route": "items"', {"path": "/items/1"}, {"route": "items"},
              {"route": 7, "path": "/items/1"}, {"route": "items", "path": "/items/1", "headers": ["Accept-Language"]}]
    for body in bodies:
        assert_api_error(purge(gw, body), 400)
    assert_api_error(purge(gw, {"route": "nowhere", "path": "/x", "host": "127.0.0.1"}), 404)
    assert_api_error(purge(gw, {"route": "plain", "path": "/plain", "host": "127.0.0.1"}), 404)


def test_purge_of_a_user_scoped_entry(gateway, upstream, pools, redis):
    primary, _ = pools
    redis_server = redis()
    redis_server.cli("SET", "session:tok-alice", "alice")
    redis_server.cli("SET", "session:tok-bob", "1002")
    up = upstream(default=serial())
    routes = [{**cached_route("me", "/me", scope="user"), "auth": "required"},
              {**cached_route("host", "/h", scope="shared"), "match": {"path": "/h", "host": "api.example.com"}}]
    cfg = cache_config(up, primary, routes=routes)
    cfg["auth"] = {"redis": {"nodes": [f"127.0.0.1:{redis_server.port}"], "timeout": "500ms"}}
    gw = gateway(cfg)
    for token in ("tok-alice", "tok-bob"):
        assert get(gw, "/me", [("Authorization", f"Bearer {token}")]).header("X-Cache") == "MISS"
    wait_stored(gw, 2)

    r = purge(gw, {"route": "me", "path": "/me", "host": "127.0.0.1", "user_id": "alice"})
    assert r.status == 200, r
    assert KEY_RE.fullmatch(r.json()["key"])["route"] == "me"
    # The user is part of the resource: purging alice's leaves bob's version (and entry) served.
    assert RESOURCE_RE.fullmatch(r.json()["resource"])["route"] == "me"
    r = get(gw, "/me", [("Authorization", "Bearer tok-alice")])
    assert r.header("X-Cache") == "MISS" and r.json()["user"] == "alice", r
    r = get(gw, "/me", [("Authorization", "Bearer tok-bob")])
    assert r.header("X-Cache") == "HIT" and r.json()["user"] == "1002", r
    anonymous = purge(gw, {"route": "me", "path": "/me", "host": "127.0.0.1"}).json()
    bob = purge(gw, {"route": "me", "path": "/me", "host": "127.0.0.1", "user_id": "1002"}).json()
    assert anonymous["key"] != bob["key"] and anonymous["resource"] != bob["resource"]
    assert get(gw, "/me", [("Authorization", "Bearer tok-bob")]).header("X-Cache") == "MISS"

    # Without "host", a route's match.host is the host.
    assert get(gw, "/h", [("Host", "api.example.com")]).header("X-Cache") == "MISS"
    wait_stored(gw, 5)  # alice, bob, alice again, bob again, /h
    keys_before = {k for s in primary for k in s.keys()}
    r = purge(gw, {"route": "host", "path": "/h"})
    assert r.status == 200, r
    assert r.json()["key"] in keys_before and r.json()["resource"] in keys_before
    again = purge(gw, {"route": "host", "path": "/h", "host": "api.example.com"}).json()
    assert (again["key"], again["resource"]) == (r.json()["key"], r.json()["resource"])
    assert get(gw, "/h", [("Host", "api.example.com")]).header("X-Cache") == "MISS"


# --- faults ------------------------------------------------------------------------------------------------

def test_garbage_put_at_a_route_key_is_a_miss(gateway, upstream, memcached):
    # One primary server: the API places a raw key by its own hash, apigw places an entry by its resource key, so
    # only on a single server is a PUT at an entry key sure to land where apigw reads the entry.
    primary = memcached()
    up = upstream(default=serial())
    gw = gateway(cache_config(up, [primary]))
    assert get(gw, "/items/7").header("X-Cache") == "MISS"
    wait_stored(gw, 1)

    answer = purge(gw, {"route": "items", "path": "/items/7", "host": "127.0.0.1"}).json()
    key, resource = answer["key"], answer["resource"]
    # The purge invalidated the URL; filled again, it has a version, so that below only the garbage makes a miss.
    r = get(gw, "/items/7")
    assert r.header("X-Cache") == "MISS" and r.json()["n"] == 2, r
    wait_stored(gw, 2)
    assert get(gw, "/items/7").header("X-Cache") == "HIT"
    version = api(gw, "GET", quote(resource, safe=""))
    assert version.status == 200 and re.fullmatch(rb"[0-9a-f]{16}", version.body), version

    garbage_values = [b"garbage, not a record", b"AGWC\x01\x00\x00garbage", b"AGWC\x02\x00\x00garbage", b"\x00" * 64]
    for i, garbage in enumerate(garbage_values, start=3):
        assert api(gw, "PUT", quote(key, safe=""), garbage).status == 204
        assert api(gw, "GET", quote(key, safe="")).body == garbage
        r = get(gw, "/items/7")
        assert r.status == 200 and r.header("X-Cache") == "MISS", (garbage, r)
        assert r.json() == {"n": i, "target": "/items/7", "user": None, "lang": None}, r.body
        assert gw.alive()
        wait_stored(gw, i)
        hit = get(gw, "/items/7")
        assert hit.header("X-Cache") == "HIT" and hit.json()["n"] == i, hit
        # What the fill wrote back is an apigw record, readable through the API as raw bytes, under the same
        # resource version (the miss was the garbage's, not an invalidation's).
        assert api(gw, "GET", key).body.startswith(b"AGWC")
        assert api(gw, "GET", quote(resource, safe="")).body == version.body


def test_primary_down_answers_503_and_recovers(gateway, upstream, memcached):
    primary = memcached()
    gw = gateway(cache_config(upstream(), [primary], timeout="200ms"))
    assert api(gw, "PUT", "k", b"v").status == 204

    primary.stop()
    start = time.monotonic()
    assert_api_error(api(gw, "PUT", "k", b"v2"), 503)
    assert_api_error(api(gw, "GET", "k"), 503)
    assert_api_error(api(gw, "DELETE", "k"), 503)
    assert_api_error(purge(gw, {"route": "items", "path": "/items/1", "host": "127.0.0.1"}), 503)
    assert time.monotonic() - start < 4.0

    primary.start()  # empty
    assert wait_until(lambda: api(gw, "PUT", "k", b"v3").status == 204, timeout=6, interval=0.2)
    assert wait_until(lambda: api(gw, "GET", "k").body == b"v3", timeout=5, interval=0.1)
    assert primary.get("k") == b"v3"


# --- libmemcached agreement ---------------------------------------------------------------------------------

def test_keys_are_placed_as_libmemcached_ketama_places_them(gateway, upstream, memcached):
    if not os.environ.get("MEMC_KETAMA_BIN"):
        pytest.skip("MEMC_KETAMA_BIN is not set (CTest sets it to the memc_ketama it built)")
    primary = [memcached(), memcached()]
    secondary = [memcached(), memcached()]
    gw = gateway(cache_config(upstream(), primary, secondary))
    legacy = {f"legacy:user:{i}": f"from libmemcached {i}".encode() for i in range(50)}
    ours = {f"apigw/page?id={i}": f"through apigw {i}".encode() for i in range(50)}

    def servers_of(servers, keys):
        """The server index `memc_ketama server` names for each key."""
        r = memc_ketama(servers, "server", *keys)
        assert r.returncode == 0, r
        indexes = [int(line) for line in r.stdout.split()]
        assert len(indexes) == len(keys) and set(indexes) <= set(range(len(servers))), r
        return dict(zip(keys, indexes))

    def each_only_where_libmemcached_puts_it(servers, values):
        placed = servers_of(servers, list(values))
        for key, value in values.items():
            assert [s.get(key) for s in servers] == \
                [value if i == placed[key] else None for i in range(len(servers))], (key, placed[key])
        # Both servers hold a fair share, so a wrong placement could not pass unnoticed.
        per_server = [list(placed.values()).count(i) for i in range(len(servers))]
        assert min(per_server) >= len(values) // 5, per_server

    # Written by libmemcached, read through apigw.
    for i, (key, value) in enumerate(legacy.items()):
        r = memc_ketama(primary, "set", key, value.decode(), "0", str(i))
        assert r.returncode == 0, r
        got = api(gw, "GET", quote(key, safe=""))
        assert got.status == 200 and got.body == value and got.header("X-Cache-Flags") == str(i), (key, got)
    each_only_where_libmemcached_puts_it(primary, legacy)

    # Written through apigw, read by libmemcached, on the primary pool and (copied) on the secondary one.
    for i, (key, value) in enumerate(ours.items()):
        assert api(gw, "PUT", quote(key, safe=""), value, [("X-Cache-Flags", str(1000 + i))]).status == 204
        r = memc_ketama(primary, "get", key)
        assert r.returncode == 0 and r.stdout == value, (key, r)
        if i % 10 == 0:
            assert memc_ketama(primary, "flags", key).stdout == f"{1000 + i}\n".encode()
    each_only_where_libmemcached_puts_it(primary, ours)

    assert wait_until(lambda: gw.metric(SECONDARY_OK) >= len(ours), timeout=10), gw.metric(SECONDARY_OK)
    for key, value in list(ours.items())[:10]:
        r = memc_ketama(secondary, "get", key)
        assert r.returncode == 0 and r.stdout == value, (key, r)
    each_only_where_libmemcached_puts_it(secondary, ours)

    # A delete through libmemcached is seen by apigw, and one through apigw by libmemcached.
    assert memc_ketama(primary, "delete", "legacy:user:3").returncode == 0
    assert_api_error(api(gw, "GET", "legacy%3Auser%3A3"), 404)
    assert api(gw, "DELETE", quote("apigw/page?id=3", safe="")).status == 204
    assert memc_ketama(primary, "get", "apigw/page?id=3").returncode == 1
