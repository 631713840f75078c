"""The response cache in Memcached, end to end against real memcached processes (two primary servers and a secondary
one unless a test needs fewer): miss then hit without the upstream, HEAD from the GET entry, what a request can ask
(no-cache, no-store, POST), what is never stored, TTL and max-age expiry, vary headers, query and host in the key,
user-scoped entries that never leak between users and never get past authentication, coalesced misses, the copy of
every fill on the secondary pool (and what a stalled secondary drops), and each Memcached fault (down, paused,
refusing a fill, corrupt values, servers of both pools killed and restarted mid-run) answered from the upstream
without a restart."""

import copy
import hashlib
import itertools
import re
import signal
import threading
import time

from apigw_harness import (CACHE_API_TOKEN, CACHE_STORED, cache_gateway_config, cached_route, concurrent_gets,
                           free_port, route, wait_stored, wait_until, write_config, xcache)
from rawhttp import Client, request
from recording_upstream import Fixed, Generate, pattern_sha256, serial

API_TOKEN = CACHE_API_TOKEN
HITS = 'apigw_cache_requests_total{result="hit"}'
MISSES = 'apigw_cache_requests_total{result="miss"}'
BYPASSES = 'apigw_cache_requests_total{result="bypass"}'
SECONDARY_OK = 'apigw_cache_secondary_writes_total{result="ok"}'
SECONDARY_FAILED = 'apigw_cache_secondary_writes_total{result="failed"}'


# --- helpers -----------------------------------------------------------------------------------------------



def get(gw, target, headers=(), method="GET", body=None):
    return request(gw.port, method, target, headers, body)


def n_of(resp):
    return resp.json()["n"]


def all_keys(servers):
    return sorted(k for s in servers for k in s.keys())


def value_of(servers, key):
    """The value of `key` on whichever server holds it (asserting that only one does)."""
    found = [v for v in (s.get(key) for s in servers) if v is not None]
    assert len(found) <= 1, f"{key} is on {len(found)} servers"
    return found[0] if found else None


def key_pattern(route_name, prefix="apigw:"):
    """An entry's key: one variant of one URL."""
    return re.compile(re.escape(f"{prefix}v2:{route_name}:") + r"[0-9a-f]{64}")


def resource_pattern(route_name, prefix="apigw:"):
    """A resource's key: the URL whatever its variant, holding the version its entries must carry."""
    return re.compile(re.escape(f"{prefix}r2:{route_name}:") + r"[0-9a-f]{64}")


def entry_keys(servers, prefix="apigw:"):
    return [k for k in all_keys(servers) if k.startswith(f"{prefix}v2:")]


def resource_keys(servers, prefix="apigw:"):
    return [k for k in all_keys(servers) if k.startswith(f"{prefix}r2:")]


def where(servers, key):
    """Indexes of the servers holding `key`."""
    return [i for i, s in enumerate(servers) if s.get(key) is not None]


# The record's head (include/apigw/cache/cached_response.h): magic, version, checksum, stored_at, ttl, initial age,
# then the resource version at bytes 29-36.
RECORD_VERSION = 3
RESOURCE_VERSION_AT = slice(29, 37)


def bearer(token):
    return [("Authorization", f"Bearer {token}")]


def timed(fn):
    start = time.monotonic()
    result = fn()
    return result, time.monotonic() - start


# --- hits and misses ---------------------------------------------------------------------------------------

def test_miss_is_proxied_and_stored_then_hits_skip_the_upstream(gateway, upstream, pools):
    primary, secondary = pools
    up = upstream(default=serial(headers=[("Cache-Control", "public"), ("X-Custom", "kept")]))
    routes = [cached_route("items", "/items/*rest"), route("plain", "/plain", "u")]
    gw = gateway(cache_gateway_config(up, primary, secondary, routes))

    first = get(gw, "/items/1")
    assert first.status == 200 and xcache(first) == "MISS", first
    assert n_of(first) == 1
    wait_stored(gw, 1)

    # One entry, under <prefix>v2:<route>:<sha256 hex>, holding an apigw record, and its resource's key,
    # <prefix>r2:<route>:<sha256 hex>, holding the resource's version (16 hex digits), which the record carries.
    keys = all_keys(primary)
    assert len(keys) == 2, keys
    entries = [k for k in keys if key_pattern("items").fullmatch(k)]
    resources = [k for k in keys if resource_pattern("items").fullmatch(k)]
    assert len(entries) == 1 and len(resources) == 1, keys
    record, version = value_of(primary, entries[0]), value_of(primary, resources[0])
    assert record.startswith(b"AGWC") and record[4] == RECORD_VERSION, record[:16]
    assert re.fullmatch(rb"[0-9a-f]{16}", version), version
    assert record[RESOURCE_VERSION_AT] == bytes.fromhex(version.decode()), (record[:45], version)
    # The entry is placed on the server of its resource key.
    assert where(primary, entries[0]) == where(primary, resources[0])

    hit = get(gw, "/items/1", [("X-Request-Id", "trace-cache-1")])
    assert hit.status == 200 and xcache(hit) == "HIT", hit
    assert hit.body == first.body
    # The upstream's Date, stored with the response, not a fresh one.
    assert first.header("Date") and hit.header("Date") == first.header("Date"), (first, hit)
    assert hit.header("Age") is not None and hit.header("Age").isdigit() and int(hit.header("Age")) <= 30, hit
    # The request's own id and route, never the ones of the request that filled the entry.
    assert hit.header("X-Request-Id") == "trace-cache-1", hit
    assert hit.header("X-Apigw-Route") == "items", hit
    assert hit.header("Content-Type") == "application/json" and hit.header("X-Custom") == "kept", hit
    assert hit.header("Content-Length") == str(len(first.body)), hit

    again = get(gw, "/items/1")
    assert xcache(again) == "HIT" and again.body == first.body
    assert again.header("X-Request-Id") and again.header("X-Request-Id") != first.header("X-Request-Id")

    # HEAD is answered from the GET entry: the same head, no body.
    head = get(gw, "/items/1", method="HEAD")
    assert head.status == 200 and xcache(head) == "HIT", head
    assert head.header("Content-Length") == str(len(first.body)) and head.body == b"", head
    assert len(up.recorded()) == 1, "a hit must not reach the upstream"

    other = get(gw, "/items/2")
    assert xcache(other) == "MISS" and n_of(other) == 2

    # A route without `cache` says nothing about the cache.
    plain = get(gw, "/plain")
    assert plain.status == 200 and not plain.has_header("X-Cache"), plain

    assert gw.metric(HITS) == 3
    assert gw.metric(MISSES) == 2
    assert gw.metric(BYPASSES) == 0
    assert gw.metric('apigw_memcached_duration_seconds_count{pool="primary"}') >= 3


def test_conditional_requests_on_a_hit_get_304(gateway, upstream, pools):
    primary, secondary = pools
    last_modified = "Mon, 23 Nov 2026 10:00:00 GMT"
    up = upstream(default=Fixed(200, b'{"v": 7}', headers=[("Content-Type", "application/json"), ("ETag", '"v7"'),
                                                           ("Last-Modified", last_modified),
                                                           ("Cache-Control", "max-age=60")]))
    gw = gateway(cache_gateway_config(up, primary, secondary))
    assert xcache(get(gw, "/items/1")) == "MISS"
    wait_stored(gw, 1)

    for conditions in ([("If-None-Match", '"v7"')], [("If-None-Match", 'W/"v7", "other"')], [("If-None-Match", "*")],
                       [("If-Modified-Since", last_modified)]):
        r = get(gw, "/items/1", conditions)
        assert r.status == 304 and xcache(r) == "HIT", (conditions, r)
        assert r.body == b"" and r.header("Content-Length") is None, r
        assert r.header("ETag") == '"v7"' and r.header("Cache-Control") == "max-age=60", r
        assert r.header("Content-Type") is None, r  # not a header a 304 carries
    # Conditions the stored version does not meet get it whole.
    for conditions in ([("If-None-Match", '"v6"')], [("If-Modified-Since", "Sun, 22 Nov 2026 10:00:00 GMT")],
                       [("If-None-Match", '"v6"'), ("If-Modified-Since", last_modified)]):
        r = get(gw, "/items/1", conditions)
        assert r.status == 200 and xcache(r) == "HIT" and r.body == b'{"v": 7}', (conditions, r)
    assert len(up.recorded()) == 1


def test_errors_on_a_cached_route_say_what_the_cache_did(gateway, pools):
    primary, _ = pools
    gw = gateway(cache_gateway_config([free_port()], primary))  # nothing listens there
    r = get(gw, "/items/1")
    assert r.status == 502 and xcache(r) == "MISS" and r.json()["error"] == "bad_gateway", r
    r = get(gw, "/items/1", [("Cache-Control", "no-store")])
    assert r.status == 502 and xcache(r) == "BYPASS", r
    assert gw.metric(CACHE_STORED) == 0


def test_request_no_cache_refetches_and_stores_the_fresh_response(gateway, upstream, pools):
    primary, _ = pools
    up = upstream(default=serial())
    gw = gateway(cache_gateway_config(up, primary))

    assert xcache(get(gw, "/items/a")) == "MISS"
    wait_stored(gw, 1)
    assert n_of(get(gw, "/items/a")) == 1

    for i, header in enumerate([("Cache-Control", "no-cache"), ("Pragma", "no-cache")], start=2):
        fresh = get(gw, "/items/a", [header])
        assert fresh.status == 200 and xcache(fresh) == "MISS", (header, fresh)
        assert n_of(fresh) == i, "no-cache must be answered by the upstream"
        wait_stored(gw, i)
        hit = get(gw, "/items/a")
        assert xcache(hit) == "HIT" and n_of(hit) == i, (header, hit)
    assert len(up.recorded()) == 3


def test_no_store_requests_and_posts_bypass_and_are_never_stored(gateway, upstream, pools):
    primary, _ = pools
    up = upstream(default=serial())
    gw = gateway(cache_gateway_config(up, primary))
    no_store = [("Cache-Control", "no-store")]

    r = get(gw, "/items/a", no_store)
    assert r.status == 200 and xcache(r) == "BYPASS" and n_of(r) == 1, r
    r = get(gw, "/items/a", [("Content-Type", "text/plain")], method="POST", body=b"payload")
    assert r.status == 200 and xcache(r) == "BYPASS" and n_of(r) == 2, r
    assert up.last().method == "POST" and up.last().body == b"payload"

    # Neither was stored: the next GET misses, and its fill is the only one.
    r = get(gw, "/items/a")
    assert xcache(r) == "MISS" and n_of(r) == 3, r
    wait_stored(gw, 1)
    assert n_of(get(gw, "/items/a")) == 3

    # With an entry there, no-store neither reads it nor replaces it.
    r = get(gw, "/items/a", no_store)
    assert xcache(r) == "BYPASS" and n_of(r) == 4, r
    hit = get(gw, "/items/a")
    assert xcache(hit) == "HIT" and n_of(hit) == 3, hit
    # A successful POST to the URL is not stored either, but invalidates the entry (RFC 9111 §4.4): the next GET
    # misses and is answered by the upstream, not with the POST's response.
    r = get(gw, "/items/a", method="POST", body=b"x")
    assert xcache(r) == "BYPASS" and n_of(r) == 5, r
    r = get(gw, "/items/a")
    assert xcache(r) == "MISS" and n_of(r) == 6, r
    wait_stored(gw, 2)
    hit = get(gw, "/items/a")
    assert xcache(hit) == "HIT" and n_of(hit) == 6, hit

    assert gw.metric(BYPASSES) == 4
    assert gw.metric(CACHE_STORED) == 2
    # Both POSTs were answered 200, so both invalidated (the first one a URL with nothing stored yet).
    assert wait_until(lambda: gw.metric('apigw_cache_invalidations_total{result="ok"}') == 2, timeout=5), \
        gw.metric('apigw_cache_invalidations_total{result="ok"}')
    # One entry and its resource's key.
    assert sum(s.curr_items() for s in primary) == 2
    assert len(entry_keys(primary)) == 1 and len(resource_keys(primary)) == 1, all_keys(primary)


def test_uncacheable_responses_are_proxied_but_never_stored(gateway, upstream, pools):
    primary, _ = pools
    up = upstream(default=serial())
    never = {
        "/items/cookie": serial(headers=lambda n: [("Set-Cookie", f"session=s{n}")]),
        "/items/no-store": serial(headers=[("Cache-Control", "no-store")]),
        "/items/no-cache": serial(headers=[("Cache-Control", "public, no-cache")]),
        "/items/private": serial(headers=[("Cache-Control", "private, max-age=60")]),
        "/items/max-age-0": serial(headers=[("Cache-Control", "max-age=0")]),
        "/items/error": serial(status=500),
        "/items/created": serial(status=201),
    }
    for path, behaviour in never.items():
        up.on(path, behaviour)
    up.on("/items/missing", serial(status=404))
    gw = gateway(cache_gateway_config(up, primary, routes=[cached_route("items", "/items/*rest", statuses=[200, 404])]))

    for path in list(never) + ["/items/missing", "/items/ok"]:
        r = get(gw, path)
        assert xcache(r) == "MISS" and n_of(r) == 1, (path, r)
    # Only the 404 (listed in `statuses`) and the plain 200 are stored; waiting for them lets any wrong fill of the
    # others land too.
    wait_stored(gw, 2)

    for path in never:
        r = get(gw, path)
        assert xcache(r) == "MISS" and n_of(r) == 2, (path, r)
    cookie = get(gw, "/items/cookie")
    assert cookie.header("Set-Cookie") == "session=s3", "a Set-Cookie must never be replayed"
    missing = get(gw, "/items/missing")
    assert missing.status == 404 and xcache(missing) == "HIT" and n_of(missing) == 1, missing
    ok = get(gw, "/items/ok")
    assert xcache(ok) == "HIT" and n_of(ok) == 1, ok

    assert gw.metric(CACHE_STORED) == 2
    # Two entries; besides them only resource keys (a URL gets its version when it misses, stored or not).
    assert len(entry_keys(primary)) == 2, all_keys(primary)
    assert sum(s.curr_items() for s in primary) == 2 + len(resource_keys(primary)), all_keys(primary)


def test_responses_over_max_item_bytes_stream_through_and_are_not_stored(gateway, upstream, pools):
    primary, _ = pools
    up = upstream(default=serial())
    up.on("/items/big", Generate(8192))
    up.on("/items/big-chunked", Generate(8192, chunked=True))
    up.on("/items/small-chunked", Generate(1000, chunked=True))
    gw = gateway(cache_gateway_config(up, primary, max_item_bytes="4KiB"))

    for path, size in [("/items/big", 8192), ("/items/big-chunked", 8192), ("/items/small-chunked", 1000)]:
        r = get(gw, path)
        assert r.status == 200 and xcache(r) == "MISS", (path, r)
        assert len(r.body) == size and hashlib.sha256(r.body).hexdigest() == pattern_sha256(size)
    wait_stored(gw, 1)

    for path in ("/items/big", "/items/big-chunked"):
        r = get(gw, path)
        assert xcache(r) == "MISS" and len(r.body) == 8192, (path, r)
    small = get(gw, "/items/small-chunked")
    assert xcache(small) == "HIT" and small.header("Content-Length") == "1000", small
    assert hashlib.sha256(small.body).hexdigest() == pattern_sha256(1000)
    assert len(up.recorded("/items/big")) == 2 and len(up.recorded("/items/small-chunked")) == 1
    assert gw.metric(CACHE_STORED) == 1


# --- expiry ------------------------------------------------------------------------------------------------

def test_route_ttl_and_shorter_max_age_expire_entries(gateway, upstream, pools):
    primary, _ = pools
    up = upstream(default=serial())
    up.on("/items/max-age", serial(headers=[("Cache-Control", "public, max-age=1")]))
    up.on("/items/s-maxage", serial(headers=[("Cache-Control", "public, s-maxage=1, max-age=600")]))
    routes = [cached_route("short", "/short", ttl="1s"), cached_route("items", "/items/*rest", ttl="30s")]
    gw = gateway(cache_gateway_config(up, primary, routes=routes))

    short_lived = ["/short", "/items/max-age", "/items/s-maxage"]
    for path in short_lived:
        assert xcache(get(gw, path)) == "MISS", path
    first_long = get(gw, "/items/long")
    assert xcache(first_long) == "MISS", first_long
    wait_stored(gw, 4)  # every one was stored: a later miss is an expiry, not a refusal
    stored_at = time.monotonic()

    for path in short_lived:
        assert wait_until(lambda: xcache(get(gw, path)) == "MISS", timeout=5, interval=0.2), \
            f"{path} still served from the cache 5 s after a 1 s lifetime"

    time.sleep(max(0.0, 1.2 - (time.monotonic() - stored_at)))
    long = get(gw, "/items/long")
    assert xcache(long) == "HIT" and long.body == first_long.body, long
    assert int(long.header("Age")) >= 1, long
    assert len(up.recorded("/items/long")) == 1


# --- what is in the key ------------------------------------------------------------------------------------

def test_key_covers_vary_headers_query_and_host(gateway, upstream, pools):
    primary, _ = pools
    up = upstream(default=serial())
    routes = [cached_route("items", "/items/*rest", vary=["Accept-Language"])]
    gw = gateway(cache_gateway_config(up, primary, routes=routes))

    fr = get(gw, "/items/v", [("Accept-Language", "fr")])
    de = get(gw, "/items/v", [("Accept-Language", "de")])
    none = get(gw, "/items/v")
    assert [xcache(r) for r in (fr, de, none)] == ["MISS"] * 3
    wait_stored(gw, 3)

    r = get(gw, "/items/v", [("Accept-Language", "fr")])
    assert xcache(r) == "HIT" and r.json()["lang"] == "fr" and n_of(r) == n_of(fr), r
    r = get(gw, "/items/v", [("accept-language", "de")])
    assert xcache(r) == "HIT" and r.json()["lang"] == "de" and n_of(r) == n_of(de), r
    r = get(gw, "/items/v")
    assert xcache(r) == "HIT" and r.json()["lang"] is None, r
    r = get(gw, "/items/v", [("Accept-Language", "en")])
    assert xcache(r) == "MISS" and r.json()["lang"] == "en", r
    wait_stored(gw, 4)

    # The query is keyed with its parameters sorted; another value is another entry.
    assert xcache(get(gw, "/items/q?a=1&b=2")) == "MISS"
    wait_stored(gw, 5)
    r = get(gw, "/items/q?b=2&a=1")
    assert xcache(r) == "HIT" and r.json()["target"] == "/items/q?a=1&b=2", r
    assert xcache(get(gw, "/items/q?a=1&b=3")) == "MISS"
    assert xcache(get(gw, "/items/q")) == "MISS"

    # So is the host.
    r = get(gw, "/items/v", [("Host", "other.example"), ("Accept-Language", "fr")])
    assert xcache(r) == "MISS" and n_of(r) == n_of(fr) + 7, r
    # Eight fills, each under a key of its own (none replaced another), of five resources: the four variants of
    # /items/v share one, the three queries and the other host have one each.
    wait_stored(gw, 8)
    assert len(entry_keys(primary)) == 8, all_keys(primary)
    assert len(resource_keys(primary)) == 5, all_keys(primary)
    assert len(all_keys(primary)) == 13, all_keys(primary)


# --- users -------------------------------------------------------------------------------------------------

def auth_config(up, primary, redis_server, routes):
    cfg = cache_gateway_config(up, primary, routes=routes)
    cfg["auth"] = {"redis": {"nodes": [f"127.0.0.1:{redis_server.port}"], "timeout": "500ms"},
                   "cache": {"ttl": "0s", "negative_ttl": "0s"}}
    return cfg


def seed(redis_server):
    redis_server.cli("SET", "session:tok-alice", "alice")
    redis_server.cli("SET", "session:tok-bob", "1002")


def test_user_scope_never_serves_one_users_entry_to_another(gateway, upstream, pools, redis):
    primary, _ = pools
    server = redis()
    seed(server)
    up = upstream(default=serial(headers=[("Cache-Control", "private, max-age=60")]))
    routes = [{**cached_route("me", "/me", scope="user"), "auth": "required"},
              {**cached_route("maybe", "/maybe", scope="user"), "auth": "optional"}]
    gw = gateway(auth_config(up, primary, server, routes))
    alice, bob = bearer("tok-alice"), bearer("tok-bob")

    r = get(gw, "/me", alice)
    assert xcache(r) == "MISS" and r.json()["user"] == "alice", r
    wait_stored(gw, 1)  # `private` is stored on a user-scoped route
    r = get(gw, "/me", bob)
    assert xcache(r) == "MISS" and r.json()["user"] == "1002", f"bob got another user's entry: {r!r}"
    wait_stored(gw, 2)
    for who, user in ((alice, "alice"), (bob, "1002"), (alice, "alice")):
        r = get(gw, "/me", who)
        assert xcache(r) == "HIT" and r.json()["user"] == user, (user, r)
    assert len(up.recorded("/me")) == 2

    # On an optional route the anonymous requests share an entry of their own.
    r = get(gw, "/maybe")
    assert xcache(r) == "MISS" and r.json()["user"] is None, r
    wait_stored(gw, 3)
    r = get(gw, "/maybe", alice)
    assert xcache(r) == "MISS" and r.json()["user"] == "alice", r
    wait_stored(gw, 4)
    r = get(gw, "/maybe")
    assert xcache(r) == "HIT" and r.json()["user"] is None, r
    r = get(gw, "/maybe", bob)
    assert xcache(r) == "MISS" and r.json()["user"] == "1002", r


def test_the_cache_never_answers_past_authentication_and_401s_are_not_stored(gateway, upstream, pools, redis):
    primary, _ = pools
    server = redis()
    seed(server)
    up = upstream(default=serial())
    # share_authorized: a shared route storing responses to requests with Authorization (RFC 9111 §3.5 would not
    # store them otherwise), so that there is an entry for an unauthenticated request to get past.
    routes = [{**cached_route("shared", "/shared", share_authorized=True), "auth": "required"}]
    gw = gateway(auth_config(up, primary, server, routes))

    assert get(gw, "/shared").status == 401
    assert get(gw, "/shared", bearer("tok-nobody")).status == 401
    r = get(gw, "/shared", bearer("tok-alice"))
    assert r.status == 200 and xcache(r) == "MISS", "a 401 was stored and served to a valid user"
    wait_stored(gw, 1)
    r = get(gw, "/shared", bearer("tok-bob"))
    assert r.status == 200 and xcache(r) == "HIT" and n_of(r) == 1, r  # shared: one entry for every user
    # With the entry there, a request without a valid token is still refused.
    assert get(gw, "/shared").status == 401
    assert get(gw, "/shared", bearer("tok-nobody")).status == 401
    assert len(up.recorded()) == 1
    assert gw.metric(CACHE_STORED) == 1


# --- coalescing --------------------------------------------------------------------------------------------



def test_concurrent_misses_on_one_worker_make_one_upstream_request(gateway, upstream, pools):
    primary, _ = pools
    up = upstream(default=serial(delay=0.5))
    up.on("/items/cookie", serial(delay=0.5, headers=lambda n: [("Set-Cookie", f"session=s{n}")]))
    gw = gateway(cache_gateway_config(up, primary, server={"workers": 1}))

    responses = concurrent_gets(gw, "/items/slow", 20)
    assert len(up.recorded("/items/slow")) == 1, f"{len(up.recorded('/items/slow'))} upstream requests"
    assert all(r.status == 200 for r in responses), responses
    assert len({r.body for r in responses}) == 1, {r.body for r in responses}
    verdicts = sorted(xcache(r) for r in responses)
    assert verdicts == ["HIT"] * 19 + ["MISS"], verdicts
    assert 1 <= gw.metric("apigw_cache_coalesced_total") <= 19
    assert xcache(get(gw, "/items/slow")) == "HIT"

    # A response that may not be stored is not shared: each waiting request is proxied on its own, and no client
    # gets another's cookie.
    responses = concurrent_gets(gw, "/items/cookie", 5)
    assert all(r.status == 200 for r in responses), responses
    assert len(up.recorded("/items/cookie")) == 5
    cookies = [r.header("Set-Cookie") for r in responses]
    assert sorted(cookies) == sorted(f"session=s{n_of(r)}" for r in responses), cookies
    assert len(set(cookies)) == 5, cookies


# --- double-write ------------------------------------------------------------------------------------------

def test_every_fill_is_copied_to_the_secondary_pool(gateway, upstream, pools):
    primary, secondary = pools
    up = upstream(default=serial())
    gw = gateway(cache_gateway_config(up, primary, secondary))

    paths = [f"/items/{i}" for i in range(16)]
    for path in paths:
        assert xcache(get(gw, path)) == "MISS"
    wait_stored(gw, len(paths))
    # Each path's new resource version and its fill: two copies, two keys.
    assert wait_until(lambda: secondary[0].curr_items() == 2 * len(paths), timeout=5), secondary[0].stats()
    assert wait_until(lambda: gw.metric(SECONDARY_OK) == 2 * len(paths), timeout=5), gw.metric(SECONDARY_OK)

    keys = all_keys(primary)
    assert len(entry_keys(primary)) == len(paths) and len(resource_keys(primary)) == len(paths), keys
    assert len(keys) == 2 * len(paths)
    assert all(s.curr_items() > 0 for s in primary), "sixteen keys spread over both primary servers"
    for key in keys:
        assert secondary[0].get(key) == value_of(primary, key), key

    metrics = request(gw.admin_port, "GET", "/metrics").body.decode()
    assert re.search(r"^apigw_cache_secondary_queue_depth 0(\.0+)?$", metrics, re.M), "queue depth gauge"
    assert gw.metric('apigw_memcached_duration_seconds_count{pool="secondary"}') >= len(paths)
    assert gw.metric('apigw_cache_secondary_writes_total{result="failed"}') == 0
    assert gw.metric('apigw_cache_secondary_writes_total{result="dropped"}') == 0

    # The secondary is never read: emptied, the primary still answers.
    for key in keys:
        secondary[0].delete(key)
    for path in paths:
        assert xcache(get(gw, path)) == "HIT", path
    assert len(up.recorded()) == len(paths)


# --- faults ------------------------------------------------------------------------------------------------

def test_primary_down_bypasses_at_once_and_caching_resumes_without_a_restart(gateway, upstream, memcached):
    primary = memcached()
    up = upstream(default=serial())
    gw = gateway(cache_gateway_config(up, [primary], timeout="200ms"))
    pid = gw.pid

    assert xcache(get(gw, "/items/a")) == "MISS"
    wait_stored(gw, 1)
    assert xcache(get(gw, "/items/a")) == "HIT"

    primary.stop()
    for i, path in enumerate(["/items/a", "/items/a", "/items/b", "/items/a"], start=2):
        r, took = timed(lambda: get(gw, path))
        assert r.status == 200 and xcache(r) == "BYPASS" and n_of(r) == i, r
        assert took < 1.0, f"a bypass took {took:.3f}s with the primary down"
    assert gw.metric(BYPASSES) == 4

    primary.start()  # on the same port, empty
    assert wait_until(lambda: xcache(get(gw, "/items/a")) == "MISS", timeout=6, interval=0.2), \
        "lookups did not resume after the primary came back"
    assert wait_until(lambda: xcache(get(gw, "/items/a")) == "HIT", timeout=5, interval=0.1)
    assert gw.alive() and gw.pid == pid
    # The entry and its resource's version.
    assert primary.curr_items() == 2
    assert len(entry_keys([primary])) == 1 and len(resource_keys([primary])) == 1, primary.keys()


def test_paused_primary_bypasses_within_the_timeout(gateway, upstream, memcached):
    primary = memcached()
    up = upstream(default=serial())
    gw = gateway(cache_gateway_config(up, [primary], timeout="100ms"))
    assert xcache(get(gw, "/items/a")) == "MISS"
    wait_stored(gw, 1)
    assert xcache(get(gw, "/items/a")) == "HIT"

    primary.pause()
    try:
        for path in ("/items/a", "/items/b", "/items/a"):
            r, took = timed(lambda: get(gw, path))
            assert r.status == 200 and xcache(r) == "BYPASS", r
            assert took < 1.0, f"a 100ms timeout answered after {took:.3f}s"
    finally:
        primary.resume()
    # The entry outlived the pause: once reconnected (each connection after its own backoff), it is a hit again,
    # with the first body (bypasses stored nothing meanwhile).

    def first_entry_hit():
        r = get(gw, "/items/a")
        return xcache(r) == "HIT" and n_of(r) == 1

    assert wait_until(first_entry_hit, timeout=6, interval=0.2), "caching did not resume after the pause"
    assert gw.metric(BYPASSES) >= 3


def test_secondary_down_never_touches_clients_and_writes_resume(gateway, upstream, memcached):
    primary, secondary = memcached(), memcached()
    up = upstream(default=serial())
    gw = gateway(cache_gateway_config(up, [primary], [secondary]))

    secondary.stop()
    r, took = timed(lambda: get(gw, "/items/a"))
    assert r.status == 200 and xcache(r) == "MISS" and took < 1.0, (r, took)
    wait_stored(gw, 1)
    assert xcache(get(gw, "/items/a")) == "HIT"
    assert wait_until(lambda: gw.metric(SECONDARY_FAILED) >= 1, timeout=5), "a failed copy was not counted"
    ok_before = gw.metric(SECONDARY_OK)

    secondary.start()  # on the same port, empty
    fills = itertools.count()

    def fill_and_check():
        r = get(gw, f"/items/after-{next(fills)}")
        assert r.status == 200 and xcache(r) == "MISS", r
        return gw.metric(SECONDARY_OK) > ok_before

    assert wait_until(fill_and_check, timeout=8, interval=0.3), "copies did not resume after the secondary came back"
    assert wait_until(lambda: secondary.curr_items() >= 1, timeout=5)
    assert gw.alive()


def test_corrupt_or_foreign_values_are_misses(gateway, upstream, memcached):
    primary = memcached()
    up = upstream(default=serial())
    gw = gateway(cache_gateway_config(up, [primary], key_prefix="edge."))
    assert xcache(get(gw, "/items/c")) == "MISS"
    wait_stored(gw, 1)
    (key,) = entry_keys([primary], prefix="edge.")
    assert key_pattern("items", prefix="edge.").fullmatch(key), key
    (resource,) = resource_keys([primary], prefix="edge.")
    assert resource_pattern("items", prefix="edge.").fullmatch(resource), resource
    good = primary.get(key)
    assert good.startswith(b"AGWC") and len(good) > 55, good

    def with_checksum(record):
        """The record with its checksum recomputed: the first 8 bytes of SHA-256 over bytes 13 to the end."""
        return record[:5] + hashlib.sha256(record[13:]).digest()[:8] + record[13:]

    assert with_checksum(good) == good, "the record is not laid out as this test reads it"
    assert good[RESOURCE_VERSION_AT] == bytes.fromhex(primary.get(resource).decode())
    flipped_end = good[:-1] + bytes([good[-1] ^ 0x01])
    flipped_version = good[:4] + bytes([good[4] ^ 0xFF]) + good[5:]
    # Intact, but of another version of its resource (as after an invalidation).
    other_resource_version = with_checksum(good[:29] + bytes([good[29] ^ 0x01]) + good[30:])
    bad_values = [b"a value some other program wrote", b"", b"AGWC", good[: len(good) // 2], flipped_end,
                  flipped_version, b"AGWC" + b"\xff" * 64, other_resource_version]
    for i, bad in enumerate(bad_values, start=2):
        primary.set(key, bad)
        r = get(gw, "/items/c")
        assert r.status == 200 and xcache(r) == "MISS", (bad, r)
        assert r.json() == {"n": i, "target": "/items/c", "user": None, "lang": None}, (bad, r.body)
        assert gw.alive(), f"apigw died on the value {bad!r}"
        wait_stored(gw, i)  # the fresh response replaces the bad value
        hit = get(gw, "/items/c")
        assert xcache(hit) == "HIT" and n_of(hit) == i, (bad, hit)
    assert primary.get(key).startswith(b"AGWC")


def test_servers_of_both_pools_killed_and_restarted_mid_run(gateway, upstream, pools):
    primary, secondary = pools
    up = upstream(default=serial())
    gw = gateway(cache_gateway_config(up, primary, secondary, timeout="200ms"))
    paths = [f"/items/{i}" for i in range(16)]
    seen = []          # (path, status, X-Cache, body target)
    errors = []
    stop = threading.Event()

    def traffic():
        for i in itertools.count():
            if stop.is_set():
                return
            path = paths[i % len(paths)]
            # Every fifth request revalidates, so there are fills (and copies) all along.
            headers = [("Cache-Control", "no-cache")] if i % 5 == 4 else []
            try:
                r = get(gw, path, headers)
                seen.append((path, r.status, xcache(r), r.json()["target"] if r.status == 200 else None))
            except Exception as e:
                errors.append(f"{path}: {e!r}")
            time.sleep(0.005)

    def requests_after(count):
        start = len(seen)
        assert wait_until(lambda: len(seen) >= start + count or errors, timeout=20), "traffic stalled"

    def recovered():
        """The last round over every path went through the cache (no bypass)."""
        requests_after(len(paths))
        return all(s[2] != "BYPASS" for s in seen[-len(paths):])

    thread = threading.Thread(target=traffic, daemon=True)
    thread.start()
    try:
        requests_after(2 * len(paths))
        for server in primary:
            server.stop()
            requests_after(30)
            server.start()  # on the same port, empty
            assert wait_until(recovered, timeout=10, interval=0), f"no recovery after restarting {server}"
        failed = gw.metric(SECONDARY_FAILED)
        secondary[0].stop()
        assert wait_until(lambda: gw.metric(SECONDARY_FAILED) > failed, timeout=5), "copies did not fail"
        requests_after(30)
        secondary[0].start()
        ok = gw.metric(SECONDARY_OK)
        assert wait_until(lambda: gw.metric(SECONDARY_OK) > ok, timeout=8), "copies did not resume"
        requests_after(30)
    finally:
        stop.set()
        thread.join(timeout=20)

    assert not errors, errors[:5]
    bad = [s for s in seen if s[1] != 200 or s[3] != s[0]]
    assert not bad, bad[:5]
    verdicts = {s[2] for s in seen}
    assert {"BYPASS", "HIT", "MISS"} <= verdicts, verdicts
    # Both primary servers hold entries again, and the restarted secondary got copies.
    assert all(s.curr_items() > 0 for s in primary), [s.curr_items() for s in primary]
    assert secondary[0].curr_items() > 0
    assert gw.alive()


def test_fills_memcached_refuses_are_counted_and_harmless(gateway, upstream, memcached):
    # The server's own item limit (2 KiB) below max_item_bytes: memcached refuses the larger fills.
    primary = memcached("-I", "2k", "-o", "slab_chunk_max=1024")
    up = upstream(default=serial())
    up.on("/items/big", Generate(4000))
    gw = gateway(cache_gateway_config(up, [primary], max_item_bytes="8KiB"))

    for _ in range(2):
        r = get(gw, "/items/big")
        assert r.status == 200 and xcache(r) == "MISS" and len(r.body) == 4000, r
    assert wait_until(lambda: gw.metric('apigw_cache_stores_total{result="failed"}') >= 1, timeout=5)
    assert len(up.recorded("/items/big")) == 2
    # The pool is still used for what fits.
    assert xcache(get(gw, "/items/small")) == "MISS"
    wait_stored(gw, 1)
    assert xcache(get(gw, "/items/small")) == "HIT"
    assert gw.alive()


def test_a_stalled_secondary_drops_copies_beyond_its_queue(gateway, upstream, memcached):
    primary, secondary = memcached(), memcached()
    up = upstream(default=serial())
    cfg = cache_gateway_config(up, [primary], [secondary])
    cfg["cache"]["secondary"].update(queue=1, timeout="3s")
    gw = gateway(cfg)
    assert xcache(get(gw, "/items/warm")) == "MISS"
    # Two copies per fill: its resource's new version, and the entry.
    assert wait_until(lambda: gw.metric(SECONDARY_OK) == 2, timeout=5)

    # While the secondary answers nothing, a burst of fills: far more copies than a queue of one (and whatever is
    # in flight) can hold. Clients never wait for them.
    fills = 80
    secondary.pause()
    try:
        with Client(gw.port) as client:
            for i in range(fills):
                r, took = timed(lambda: client.request("GET", f"/items/{i}"))
                assert r.status == 200 and xcache(r) == "MISS" and took < 1.0, (r, took)
        wait_stored(gw, fills + 1)
        assert wait_until(lambda: gw.metric('apigw_cache_secondary_writes_total{result="dropped"}') >= 1,
                          timeout=5), "a full queue dropped nothing"
        assert gw.metric("apigw_cache_secondary_queue_depth") <= 1
    finally:
        secondary.resume()

    def accounted():
        results = ("ok", "failed", "dropped")
        return sum(gw.metric(f'apigw_cache_secondary_writes_total{{result="{r}"}}') for r in results)

    assert wait_until(lambda: accounted() == 2 * (fills + 1), timeout=8), f"{accounted()} copies accounted for"
    assert gw.metric("apigw_cache_secondary_queue_depth") == 0
    assert secondary.curr_items() >= gw.metric(SECONDARY_OK)  # a copy that timed out may still have landed


def reload_and_wait(gw, cfg):
    """Writes `cfg` and reloads; waits until the next generation serves (a rejected reload fails the wait)."""
    before = gw.metric("apigw_config_generation")
    write_config(gw.config_path, cfg)
    gw.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: gw.metric("apigw_config_generation") == before + 1, timeout=5), gw.log()


def test_reloads_keep_or_move_the_pools_without_a_failed_request(gateway, upstream, memcached):
    old, new = memcached(), memcached()
    up = upstream(default=serial())
    gw = gateway(cache_gateway_config(up, [old], server={"workers": 1}))
    cfg = copy.deepcopy(gw.config)  # with the ports the gateway was given
    assert xcache(get(gw, "/items/1")) == "MISS"
    wait_stored(gw, 1)
    connections = int(old.stats()["curr_connections"])

    # Traffic throughout every reload below: each request is answered, and from the cache once it can be.
    failures, stop = [], threading.Event()

    def traffic():
        while not stop.is_set():
            r = get(gw, "/items/1")
            if r.status != 200:
                failures.append(r)

    runner = threading.Thread(target=traffic)
    runner.start()
    try:
        # Routes change, the cache section does not: its connections (and entries) stay.
        cfg["routes"].append(route("plain", "/plain", "u"))
        reload_and_wait(gw, cfg)
        assert xcache(get(gw, "/items/1")) == "HIT"
        assert int(old.stats()["curr_connections"]) == connections

        # Another primary pool: new fills go there; the old pool is let go.
        moved = copy.deepcopy(cfg)
        moved["cache"]["primary"]["servers"] = [new.address]
        reload_and_wait(gw, moved)
        assert wait_until(lambda: xcache(get(gw, "/items/2")) == "HIT", timeout=5)
        assert any(key_pattern("items").fullmatch(k) for k in new.keys())
        assert any(resource_pattern("items").fullmatch(k) for k in new.keys())
        assert len(old.keys()) == 2  # /items/1's entry and resource version, untouched
        assert wait_until(lambda: int(old.stats()["curr_connections"]) < connections, timeout=5)

        # A bad cache section is refused and the running one kept.
        broken = dict(moved, cache={**moved["cache"], "max_item_bytes": "1B"})
        write_config(gw.config_path, broken)
        gw.proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: gw.metric("apigw_config_last_reload_successful") == 0, timeout=5)
        assert "max_item_bytes" in gw.log()
        assert xcache(get(gw, "/items/2")) == "HIT"
    finally:
        stop.set()
        runner.join()
    assert not failures, failures[:3]

