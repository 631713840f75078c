"""The response cache shared by a fleet, end to end against real memcached and redis-server processes and several
apigw instances on one Memcached pool: cache tags (from the route's templates and the upstream's Surrogate-Key)
invalidated through `POST /_cache/invalidate` on every instance, with the tag versions written to every server of
both pools; invalidation events from a Redis Stream read by the fleet as one consumer group (each handled once,
malformed ones acknowledged, replays harmless, an event left pending by a dead consumer claimed after
`claim_after`); stale-while-revalidate (a stale answer at once, one background refresh) and stale-if-error (a stale
answer instead of an upstream failure, within its window only); `tag_invalidation: stale`; the tag header kept from
clients; and one upstream fetch for the whole fleet on a cold key (`fill_lock`), also when the instance that won
the fill dies mid-fetch."""

import json
import os
import re
import signal
import threading
import time

from apigw_harness import (CACHE_API_TOKEN, assert_api_error, assert_json_error, cache_gateway_config, cached_route,
                           concurrent_gets, wait_stored, wait_until, xcache)
from rawhttp import request
from recording_upstream import Dynamic, Fixed, serial

API_TOKEN = CACHE_API_TOKEN
STORED = 'apigw_cache_stores_total{result="ok"}'
FILL_WAITS = "apigw_cache_fill_waits_total"
REFRESHED = 'apigw_cache_refreshes_total{result="ok"}'
STALE_ANSWERS = "apigw_cache_stale_total"
HANDLED = 'apigw_cache_events_total{result="handled"}'
MALFORMED = 'apigw_cache_events_total{result="malformed"}'
FAILED = 'apigw_cache_events_total{result="failed"}'
CLAIMED = "apigw_cache_events_claimed_total"
STREAM = "apigw:cache-events"
GROUP = "apigw"
VERSION = re.compile(rb"[0-9a-f]{16}")


# --- helpers -----------------------------------------------------------------------------------------------



def events_section(redis_server, **over):
    """`cache.events` on this redis-server, polled every 100 ms."""
    return {"redis": {"nodes": [redis_server.address]}, "stream": STREAM, "group": GROUP, "poll": "100ms", **over}


def get(gw, target, headers=()):
    return request(gw.port, "GET", target, headers)


def n_of(resp):
    return resp.json()["n"]




def invalidate(gw, doc, token=API_TOKEN):
    """POST /_cache/invalidate on the admin listener (`doc` a JSON-able object, or raw bytes)."""
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    headers = [("Content-Type", "application/json")]
    if token is not None:
        headers.append(("Authorization", f"Bearer {token}"))
    return request(gw.admin_port, "POST", "/_cache/invalidate", headers, body)






def total(gws, series):
    return sum(gw.metric(series) for gw in gws)


def entry_keys(servers, route_name, prefix="apigw:"):
    return sorted(k for s in servers for k in s.keys() if k.startswith(f"{prefix}v2:{route_name}:"))


def tag_key(tag, prefix="apigw:"):
    return f"{prefix}t:{tag}"


def timed(fn):
    start = time.monotonic()
    result = fn()
    return result, time.monotonic() - start


class Counting:
    """An upstream behaviour answering {"n": ..., "target": ...}, numbered from 1, whose status and delay the test
    changes as it goes. `headers` is a list, or a function of n giving one."""

    def __init__(self, headers=(), delay=0.0, status=200):
        self.headers, self.delay, self.status = headers, delay, status
        self.n = 0
        self._lock = threading.Lock()
        self.behaviour = Dynamic(self._answer)

    def _answer(self, req):
        with self._lock:
            self.n += 1
            n = self.n
        body = json.dumps({"n": n, "target": req.target}).encode()
        extra = self.headers(n) if callable(self.headers) else list(self.headers)
        return Fixed(self.status, body, [("Content-Type", "application/json")] + extra, delay=self.delay)


def per_target(headers=None):
    """An upstream behaviour answering {"n": ..., "target": ...}, n counted from 1 for each request target (path
    and query), with `headers` (path -> extra headers) added."""
    counts = {}
    lock = threading.Lock()

    def answer(req):
        with lock:
            counts[req.target] = n = counts.get(req.target, 0) + 1
        body = json.dumps({"n": n, "target": req.target}).encode()
        return Fixed(200, body, [("Content-Type", "application/json")] + list((headers or {}).get(req.path, [])))

    return Dynamic(answer)




# Redis: the stream and its consumer group, through redis-cli.

def group_exists(server):
    try:
        return GROUP in server.cli("XINFO", "GROUPS", STREAM).split("\n")
    except RuntimeError:
        return False


def pending_count(server):
    """How many events the group has read and not acknowledged (XPENDING's summary)."""
    return int(server.cli("XPENDING", STREAM, GROUP).split("\n")[0])


def add_event(server, *fields):
    event_id = server.cli("XADD", STREAM, "*", *fields)
    assert re.fullmatch(r"\d+-\d+", event_id), event_id
    return event_id


# --- tags and the invalidation API ---------------------------------------------------------------------------

def tag_routes():
    """Products filed under product:<id> and catalog; lists only under what their upstream's Surrogate-Key says."""
    return [cached_route("products", "/products/:id", tags=["product:{id}", "catalog"]),
            cached_route("lists", "/lists/:name")]


def tag_upstream(upstream):
    return upstream(default=per_target({"/lists/a": [("Surrogate-Key", "product:7 product:8")],
                                        "/lists/b": [("Surrogate-Key", "product:9")],
                                        "/lists/c": [("Surrogate-Key", "  product:7\tsale ")]}))


def test_invalidating_a_tag_misses_its_responses_on_every_instance_and_versions_every_server(gateway, upstream,
                                                                                            memcached):
    primary, secondary = [memcached(), memcached()], [memcached(), memcached()]
    up = tag_upstream(upstream)
    cfg = cache_gateway_config(up, primary, secondary, tag_routes())
    gw1, gw2 = gateway(cfg), gateway(cfg)

    paths = ["/products/7", "/products/7?view=full", "/products/8", "/lists/a", "/lists/b", "/lists/c"]
    for path in paths:
        r = get(gw1, path)
        assert r.status == 200 and xcache(r) == "MISS" and n_of(r) == 1, (path, r)
    wait_stored(gw1, len(paths))
    # The other instance shares the pool: every one is a hit there, the upstream is not asked.
    for path in paths:
        r = get(gw2, path)
        assert xcache(r) == "HIT" and n_of(r) == 1, (path, r)
    assert len(up.recorded()) == len(paths)
    tags_before = {s.address: s.get(tag_key("product:7")) for s in primary}
    assert any(v is not None for v in tags_before.values()), f"no version of product:7 on {tags_before}"

    r = invalidate(gw1, {"tags": ["product:7"]})
    assert r.status == 200 and r.json() == {"tags": 1, "keys": 0, "invalidated": True}, r

    # Every server of the primary pool holds the tag's new version (the same everywhere), a value none held before.
    versions = [s.get(tag_key("product:7")) for s in primary]
    assert all(v is not None and VERSION.fullmatch(v) for v in versions), versions
    assert len(set(versions)) == 1, versions
    assert versions[0] not in tags_before.values(), (versions, tags_before)
    # And, queued, every server of the secondary pool.
    assert wait_until(lambda: [s.get(tag_key("product:7")) for s in secondary] == versions[:1] * len(secondary),
                      timeout=5), [s.get(tag_key("product:7")) for s in secondary]

    # Everything filed under product:7, by the route's template or by the upstream's header, is a miss on both
    # instances (each checked on its own URLs: a refill on one would be a hit on the other).
    for gw, path in ((gw1, "/products/7"), (gw2, "/products/7?view=full"), (gw2, "/lists/a"), (gw1, "/lists/c")):
        r = get(gw, path)
        assert r.status == 200 and xcache(r) == "MISS" and n_of(r) == 2, (gw.name, path, r)
    # What is not filed under it stays a hit everywhere.
    for gw in (gw1, gw2):
        for path in ("/products/8", "/lists/b"):
            r = get(gw, path)
            assert xcache(r) == "HIT" and n_of(r) == 1, (gw.name, path, r)
    assert len(up.recorded()) == len(paths) + 4

    # The refills are filed under the new version: hits again, on both instances.
    assert wait_until(lambda: gw1.metric(STORED) + gw2.metric(STORED) == len(paths) + 4, timeout=5)
    for gw in (gw1, gw2):
        for path in ("/products/7", "/products/7?view=full", "/lists/a", "/lists/c"):
            r = get(gw, path)
            assert xcache(r) == "HIT" and n_of(r) == 2, (gw.name, path, r)

    # A tag every product has, through the other instance's API: every product, and nothing else.
    r = invalidate(gw2, {"tags": ["catalog"]})
    assert r.status == 200 and r.json() == {"tags": 1, "keys": 0, "invalidated": True}, r
    r = get(gw1, "/products/8")
    assert xcache(r) == "MISS" and n_of(r) == 2, r
    r = get(gw2, "/products/7")
    assert xcache(r) == "MISS" and n_of(r) == 3, r
    for path in ("/lists/a", "/lists/b"):
        r = get(gw1, path)
        assert xcache(r) == "HIT", (path, r)

    # Tags and exact keys in one call: a raw value the monolith wrote through the cache API is deleted from both
    # pools, and a tag the upstream sent (after the tabs and spaces it came with) invalidates /lists/c.
    put = request(gw1.admin_port, "PUT", "/_cache/monolith:page:1", [("Authorization", f"Bearer {API_TOKEN}")],
                  b"legacy page")
    assert put.status == 204, put
    assert wait_until(lambda: any(s.get("monolith:page:1") == b"legacy page" for s in secondary), timeout=5)
    r = invalidate(gw1, {"tags": ["sale"], "keys": ["monolith:page:1"]})
    assert r.status == 200 and r.json() == {"tags": 1, "keys": 1, "invalidated": True}, r
    assert all(s.get("monolith:page:1") is None for s in primary)
    assert wait_until(lambda: all(s.get("monolith:page:1") is None for s in secondary), timeout=5)
    r = get(gw2, "/lists/c")
    assert xcache(r) == "MISS" and n_of(r) == 3, r
    r = get(gw2, "/lists/a")
    assert xcache(r) == "HIT" and n_of(r) == 2, r
    assert gw1.metric('apigw_cache_tag_invalidations_total{result="ok"}') == 2
    assert gw2.metric('apigw_cache_tag_invalidations_total{result="ok"}') == 1

    # An entry key of apigw's own, on a pool of two: it lives on its resource's server, which the key does not
    # tell, so the key is deleted from every server.
    def holds(server, key):
        return b'"/lists/b"' in (server.get(key) or b"")
    (key,) = [k for k in entry_keys(primary, "lists") if any(holds(s, k) for s in primary)]
    r = invalidate(gw2, {"keys": [key]})
    assert r.status == 200 and r.json() == {"tags": 0, "keys": 1, "invalidated": True}, r
    assert all(s.get(key) is None for s in primary)
    r = get(gw1, "/lists/b")
    assert xcache(r) == "MISS" and n_of(r) == 2, r


def test_invalidate_refuses_bad_bodies_and_missing_tokens(gateway, upstream, memcached):
    primary = [memcached()]
    up = tag_upstream(upstream)
    gw = gateway(cache_gateway_config(up, primary, routes=tag_routes()))
    assert xcache(get(gw, "/products/7")) == "MISS"
    wait_stored(gw, 1)
    version = primary[0].get(tag_key("product:7"))
    assert version is not None and VERSION.fullmatch(version), version

    bad = [b"", b"not json", b"[1, 2]", b'"product:7"', b'{"tags": ["product:7"]', {}, {"tags": []},
           {"tags": "product:7"}, {"tags": [7]}, {"tags": ["product 7"]}, {"tags": [""]}, {"keys": ["a\tb"]},
           {"keys": "k"}, {"tags": None, "keys": None}, {"other": ["product:7"]}]
    for body in bad:
        assert_api_error(invalidate(gw, body), 400)
    for token in (None, "wrong-token-0123456789"):
        r = invalidate(gw, {"tags": ["product:7"]}, token=token)
        assert_api_error(r, 401)
    # Nothing was invalidated by any of them.
    assert primary[0].get(tag_key("product:7")) == version
    r = get(gw, "/products/7")
    assert xcache(r) == "HIT" and n_of(r) == 1, r
    assert gw.metric('apigw_cache_tag_invalidations_total{result="ok"}') == 0


# --- the tag header --------------------------------------------------------------------------------------------

def test_the_tag_header_files_the_entry_but_is_not_shown_to_clients(gateway, upstream, memcached):
    primary = [memcached()]
    up = upstream(default=serial())
    up.on("/products/1", serial(headers=[("Surrogate-Key", "brand:acme")]))
    up.on("/products/2", serial(headers=[("Surrogate-Key", "brand:acme")]))
    up.on("/pages/home", serial(headers=[("Cache-Tag", "campaign:spring"), ("Surrogate-Key", "kept:as-is")]))
    routes = [cached_route("products", "/products/:id", tags=["product:{id}"]),
              cached_route("pages", "/pages/:slug", tag_header="Cache-Tag")]
    quiet = gateway(cache_gateway_config(up, primary, routes=routes, server={"debug_headers": False}))

    miss = get(quiet, "/products/1")
    assert miss.status == 200 and xcache(miss) == "MISS", miss
    assert not miss.has_header("Surrogate-Key"), miss
    assert not miss.has_header("X-Apigw-Route"), "debug headers are off"
    page = get(quiet, "/pages/home")
    assert xcache(page) == "MISS" and not page.has_header("Cache-Tag"), page
    # Only the route's own tag header is taken: another one is an ordinary header, passed on and stored.
    assert page.header("Surrogate-Key") == "kept:as-is", page
    wait_stored(quiet, 2)
    hit = get(quiet, "/products/1")
    assert xcache(hit) == "HIT" and n_of(hit) == 1 and not hit.has_header("Surrogate-Key"), hit
    hit = get(quiet, "/pages/home")
    assert xcache(hit) == "HIT" and not hit.has_header("Cache-Tag"), hit
    assert hit.header("Surrogate-Key") == "kept:as-is", hit

    # The hidden header still filed the entries.
    r = invalidate(quiet, {"tags": ["brand:acme", "campaign:spring"]})
    assert r.status == 200 and r.json() == {"tags": 2, "keys": 0, "invalidated": True}, r
    r = get(quiet, "/products/1")
    assert xcache(r) == "MISS" and n_of(r) == 2 and not r.has_header("Surrogate-Key"), r
    r = get(quiet, "/pages/home")
    assert xcache(r) == "MISS" and n_of(r) == 2, r
    # kept:as-is was no tag of the page.
    wait_stored(quiet, 4)
    assert invalidate(quiet, {"tags": ["kept:as-is"]}).status == 200
    assert xcache(get(quiet, "/pages/home")) == "HIT"

    # With debug headers on (the harness's default, as apigw's), the client sees the tag header.
    verbose = gateway(cache_gateway_config(up, primary, routes=routes))
    r = get(verbose, "/products/2")
    assert xcache(r) == "MISS" and r.header("Surrogate-Key") == "brand:acme", r
    assert r.header("X-Apigw-Route") == "products", r


# --- events --------------------------------------------------------------------------------------------------

def test_stream_events_invalidate_on_every_instance_once(gateway, upstream, memcached, redis):
    primary = [memcached()]
    server = redis()
    up = tag_upstream(upstream)
    cfg = cache_gateway_config(up, primary, routes=tag_routes(), events=events_section(server))
    gws = [gateway(cfg), gateway(cfg)]
    gw1, gw2 = gws
    # apigw creates the group (events added before it would not be delivered to it).
    assert wait_until(lambda: group_exists(server), timeout=5), "apigw did not create the consumer group"

    paths = ["/products/7", "/products/7?view=full", "/products/8", "/lists/a", "/lists/b"]
    for path in paths:
        assert xcache(get(gw1, path)) == "MISS", path
    wait_stored(gw1, len(paths))
    for path in paths:
        assert xcache(get(gw2, path)) == "HIT", path

    added = time.monotonic()
    add_event(server, "tags", "product:7")
    assert wait_until(lambda: total(gws, HANDLED) == 1, timeout=3), total(gws, HANDLED)
    took = time.monotonic() - added
    assert took < 1.5, f"the event was handled {took:.2f}s after it was added (poll: 100ms)"
    for gw, path in ((gw1, "/products/7"), (gw2, "/products/7?view=full"), (gw2, "/lists/a")):
        r = get(gw, path)
        assert xcache(r) == "MISS" and n_of(r) == 2, (gw.name, path, r)
    for gw in gws:
        for path in ("/products/8", "/lists/b"):
            r = get(gw, path)
            assert xcache(r) == "HIT" and n_of(r) == 1, (gw.name, path, r)

    # An exact key: the entry of /products/8.
    (key,) = [k for k in entry_keys(primary, "products") if b'"/products/8"' in (primary[0].get(k) or b"")]
    add_event(server, "keys", key)
    assert wait_until(lambda: total(gws, HANDLED) == 2, timeout=3), total(gws, HANDLED)
    assert primary[0].get(key) is None
    r = get(gw2, "/products/8")
    assert xcache(r) == "MISS" and n_of(r) == 2, r

    # An entry that names nothing is acknowledged and counted, and changes nothing.
    add_event(server, "note", "nothing to do")
    assert wait_until(lambda: total(gws, MALFORMED) == 1, timeout=3), total(gws, MALFORMED)
    assert wait_until(lambda: pending_count(server) == 0, timeout=3), server.cli("XPENDING", STREAM, GROUP)
    r = get(gw1, "/lists/b")
    assert xcache(r) == "HIT" and n_of(r) == 1, r

    # A replayed event does what it did once more: the refilled entries miss again, then are hits.
    fills = len(paths) + 4  # the first fills, the three refills after the tag, the one after the key
    assert wait_until(lambda: total(gws, STORED) == fills, timeout=5), total(gws, STORED)
    add_event(server, "tags", "product:7")
    assert wait_until(lambda: total(gws, HANDLED) == 3, timeout=3), total(gws, HANDLED)
    r = get(gw2, "/products/7")
    assert xcache(r) == "MISS" and n_of(r) == 3, r
    assert wait_until(lambda: total(gws, STORED) == fills + 1, timeout=5)
    r = get(gw1, "/products/7")
    assert xcache(r) == "HIT" and n_of(r) == 3, r

    # Each event was handled by exactly one instance, and none failed or was left pending.
    time.sleep(0.5)
    assert total(gws, HANDLED) == 3 and total(gws, MALFORMED) == 1 and total(gws, FAILED) == 0, \
        [(gw.metric(HANDLED), gw.metric(MALFORMED), gw.metric(FAILED)) for gw in gws]
    assert pending_count(server) == 0
    assert all(gw.alive() for gw in gws)
    for gw in gws:
        metrics = request(gw.admin_port, "GET", "/metrics").body.decode()
        for series in ("apigw_cache_events_lag", "apigw_cache_events_pending", CLAIMED):
            assert re.search(rf"^{series} \d", metrics, re.M), f"{series} missing from {gw.name}'s /metrics"
    # The gauges, refreshed every second: nothing unread, nothing pending.
    assert wait_until(lambda: all(gw.metric("apigw_cache_events_lag") == 0 and
                                  gw.metric("apigw_cache_events_pending") == 0 for gw in gws), timeout=3)


def claiming_consumer(gateway, up, primary, server):
    """An instance started with claim_after 1s, once it has taken over the one pending event and handled it."""
    consumer = gateway(cache_gateway_config(up, primary, routes=tag_routes(),
                                            events=events_section(server, claim_after="1s")))
    assert wait_until(lambda: consumer.metric(HANDLED) == 1, timeout=6), \
        (consumer.metric(HANDLED), consumer.metric(CLAIMED), server.cli("XPENDING", STREAM, GROUP))
    assert consumer.metric(CLAIMED) >= 1
    assert pending_count(server) == 0, server.cli("XPENDING", STREAM, GROUP)
    return consumer


def test_an_event_left_pending_by_a_dead_consumer_is_claimed(gateway, upstream, memcached, redis):
    """An instance that read an event and died before acknowledging it leaves it pending in the group, owned by a
    consumer that will never come back. Made deterministic here: the group exists before any apigw, and the event
    is read by the consumer "ghost" (redis-cli), never acknowledged. An instance started afterwards with
    claim_after 1s must take it over (XAUTOCLAIM), invalidate what it names, and acknowledge it."""
    primary = [memcached()]
    server = redis()
    up = tag_upstream(upstream)
    # An instance without events fills the entries.
    filler = gateway(cache_gateway_config(up, primary, routes=tag_routes()))
    for path in ("/products/7", "/products/8"):
        assert xcache(get(filler, path)) == "MISS"
    wait_stored(filler, 2)
    assert xcache(get(filler, "/products/7")) == "HIT"

    assert server.cli("XGROUP", "CREATE", STREAM, GROUP, "$", "MKSTREAM") == "OK"
    event_id = add_event(server, "tags", "product:7")
    read = server.cli("XREADGROUP", "GROUP", GROUP, "ghost", "COUNT", "1", "STREAMS", STREAM, ">")
    assert event_id in read, read
    assert pending_count(server) == 1
    time.sleep(0.2)
    # Still a hit: nobody handled the event.
    assert xcache(get(filler, "/products/7")) == "HIT"

    consumer = claiming_consumer(gateway, up, primary, server)
    r = get(filler, "/products/7")
    assert xcache(r) == "MISS" and n_of(r) == 2, r
    r = get(filler, "/products/8")
    assert xcache(r) == "HIT" and n_of(r) == 1, r
    # Handled once: claiming again finds nothing.
    time.sleep(1.2)
    assert consumer.metric(HANDLED) == 1 and consumer.metric(FAILED) == 0


def test_an_event_an_instance_read_and_died_with_is_handled_by_another(gateway, upstream, memcached, redis):
    """A real instance reads an event while its primary Memcached is paused (so it cannot handle it, and the event
    stays pending, owned by that instance) and is killed. Once Memcached is back, another instance takes the event
    over after claim_after and handles it."""
    primary = [memcached()]
    server = redis()
    up = tag_upstream(upstream)
    filler = gateway(cache_gateway_config(up, primary, routes=tag_routes()))
    assert xcache(get(filler, "/products/7")) == "MISS"
    wait_stored(filler, 1)
    assert xcache(get(filler, "/products/7")) == "HIT"

    doomed = gateway(cache_gateway_config(up, primary, routes=tag_routes(), timeout="200ms",
                                          events=events_section(server, claim_after="30s")))
    assert wait_until(lambda: group_exists(server), timeout=5), "apigw did not create the consumer group"
    primary[0].pause()
    try:
        add_event(server, "tags", "product:7")
        assert wait_until(lambda: pending_count(server) == 1, timeout=5), server.cli("XPENDING", STREAM, GROUP)
        owner = server.cli("XPENDING", STREAM, GROUP, "-", "+", "10")
        os.kill(doomed.pid, signal.SIGKILL)
        assert wait_until(lambda: not doomed.alive(), timeout=5)
    finally:
        primary[0].resume()
    assert pending_count(server) == 1, owner
    # The version the dead instance wrote may still have reached Memcached (its bytes waited in the socket while
    # Memcached was paused): whatever it did, the entry is made a hit again before the heir starts.
    if xcache(get(filler, "/products/7")) == "MISS":
        wait_stored(filler, 2)
    r = get(filler, "/products/7")
    assert xcache(r) == "HIT", r
    before = n_of(r)

    claiming_consumer(gateway, up, primary, server)
    r = get(filler, "/products/7")
    assert xcache(r) == "MISS" and n_of(r) == before + 1, r


# --- stale answers ---------------------------------------------------------------------------------------------

def test_stale_while_revalidate_answers_at_once_and_refreshes_once(gateway, upstream, memcached):
    primary = [memcached()]
    up = upstream(default=serial())
    # The first answer lives 1 s, the refreshed ones a minute (so that the hit after the refresh stays one).
    counting = Counting(headers=lambda n: [("Cache-Control", "max-age=1" if n == 1 else "max-age=60")])
    up.on("/items/swr", counting.behaviour)
    routes = [cached_route("items", "/items/*rest", ttl="60s", stale_while_revalidate="30s")]
    gw = gateway(cache_gateway_config(up, primary, routes=routes))

    first = get(gw, "/items/swr")
    assert xcache(first) == "MISS" and n_of(first) == 1, first
    wait_stored(gw, 1)
    stored_at = time.monotonic()
    counting.delay = 1.0  # the refresh is slow; the stale answer must not wait for it
    time.sleep(max(0.0, 2.2 - (time.monotonic() - stored_at)))

    stale, took = timed(lambda: get(gw, "/items/swr"))
    assert stale.status == 200 and xcache(stale) == "STALE", stale
    assert stale.body == first.body, stale
    assert took < 0.5, f"the stale answer took {took:.2f}s (the upstream takes 1s)"
    assert stale.header("Age") is not None and int(stale.header("Age")) >= 1, stale
    # One refresh reaches the upstream, in the background.
    assert len(up.wait_for_requests(2, timeout=3)) == 2
    again, took = timed(lambda: get(gw, "/items/swr"))
    assert xcache(again) == "STALE" and n_of(again) == 1 and took < 0.5, (again, took)

    def refreshed():
        r = get(gw, "/items/swr")
        return xcache(r) == "HIT" and n_of(r) == 2

    assert wait_until(refreshed, timeout=5, interval=0.05), "the refreshed response was not served"
    assert len(up.recorded("/items/swr")) == 2, "exactly one refresh"
    assert gw.metric(REFRESHED) == 1
    assert gw.metric(STALE_ANSWERS) >= 2


def test_stale_if_error_answers_instead_of_a_failure_within_its_window(gateway, upstream, memcached):
    primary = [memcached()]
    up = upstream(default=serial())
    down = upstream("down", default=serial(headers=[("Cache-Control", "max-age=1")]))
    failing = Counting(headers=[("Cache-Control", "max-age=1")])
    up.on("/items/e", failing.behaviour)
    # The response asks for a shorter window (RFC 5861) than the route's: it wins.
    short = Counting(headers=[("Cache-Control", "max-age=1, stale-if-error=1")])
    up.on("/items/short", short.behaviour)
    routes = [cached_route("items", "/items/*rest", stale_if_error="60s"),
              cached_route("gone", "/gone/*rest", upstream="down", stale_if_error="3s")]
    gw = gateway(cache_gateway_config({"u": up, "down": down}, primary, routes=routes))

    for path in ("/items/e", "/items/short", "/gone/x"):
        r = get(gw, path)
        assert r.status == 200 and xcache(r) == "MISS", (path, r)
    wait_stored(gw, 3)
    stored_at = time.monotonic()
    failing.status = short.status = 503
    down.stop()
    time.sleep(max(0.0, 2.2 - (time.monotonic() - stored_at)))

    # Past its lifetime, the upstream answering 503: the stale entry answers.
    r = get(gw, "/items/e")
    assert r.status == 200 and xcache(r) == "STALE", r
    assert r.json() == {"n": 1, "target": "/items/e"}, r.body
    assert len(up.recorded("/items/e")) == 2, "the upstream is asked first"
    # The upstream not listening at all (apigw's own 502): the same.
    r = get(gw, "/gone/x")
    assert r.status == 200 and xcache(r) == "STALE" and n_of(r) == 1, r
    # stale-if-error=1 from the response: past it (stale by 1 or 2 s now), the upstream's error comes through.
    r = get(gw, "/items/short")
    assert r.status == 503 and r.json() == {"n": 2, "target": "/items/short"}, r
    # An upstream that answers again is served and stored as usual.
    failing.status = 200
    r = get(gw, "/items/e")
    assert r.status == 200 and xcache(r) == "MISS" and n_of(r) == 3, r
    failing.status = 503

    # Past the route's 3 s window the failure is the answer.
    time.sleep(max(0.0, 4.3 - (time.monotonic() - stored_at)))
    r = get(gw, "/gone/x")
    assert_json_error(r, 502, "bad_gateway")
    assert xcache(r) == "MISS", r
    assert gw.metric(STALE_ANSWERS) == 2


def test_tag_invalidation_stale_answers_stale_while_one_request_refreshes(gateway, upstream, memcached):
    primary = [memcached()]
    up = upstream(default=serial())
    counting = Counting()
    up.on("/products/7", counting.behaviour)
    routes = [cached_route("products", "/products/:id", tags=["product:{id}"], stale_while_revalidate="30s",
                           tag_invalidation="stale"),
              cached_route("gone", "/gone/:id", tags=["product:{id}"])]
    gw = gateway(cache_gateway_config(up, primary, routes=routes))

    assert xcache(get(gw, "/products/7")) == "MISS"
    assert xcache(get(gw, "/gone/7")) == "MISS"
    wait_stored(gw, 2)
    assert n_of(get(gw, "/products/7")) == 1
    counting.delay = 0.5

    r = invalidate(gw, {"tags": ["product:7"]})
    assert r.status == 200, r
    # The route with `tag_invalidation: stale` answers the old entry at once, and refreshes it once.
    stale, took = timed(lambda: get(gw, "/products/7"))
    assert stale.status == 200 and xcache(stale) == "STALE" and n_of(stale) == 1, stale
    assert took < 0.4, f"the stale answer took {took:.2f}s (the upstream takes 0.5s)"
    # The default (gone): a miss.
    r = get(gw, "/gone/7")
    assert xcache(r) == "MISS" and n_of(r) == 2, r
    assert xcache(get(gw, "/products/7")) == "STALE"

    def refreshed():
        r = get(gw, "/products/7")
        return xcache(r) == "HIT" and n_of(r) == 2

    assert wait_until(refreshed, timeout=5, interval=0.05), "the refreshed response was not served"
    assert len(up.recorded("/products/7")) == 2, "exactly one refresh"
    assert gw.metric(REFRESHED) == 1


# --- one fill for the fleet --------------------------------------------------------------------------------------

def test_concurrent_misses_over_the_fleet_make_one_upstream_request(gateway, upstream, memcached):
    primary = [memcached()]
    up = upstream(default=serial(delay=1.0))
    cfg = cache_gateway_config(up, primary, server={"workers": 2})
    gws = [gateway(cfg), gateway(cfg)]

    responses = concurrent_gets(gws, "/items/cold", 50)
    assert len(up.recorded("/items/cold")) == 1, f"{len(up.recorded('/items/cold'))} upstream requests"
    assert all(r.status == 200 for r in responses), [r for r in responses if r.status != 200][:3]
    assert len({r.body for r in responses}) == 1, {r.body for r in responses}
    verdicts = sorted(xcache(r) for r in responses)
    assert verdicts == ["HIT"] * 49 + ["MISS"], verdicts
    # The instance that did not fetch waited for the other's fill.
    assert sum(gw.metric(FILL_WAITS) > 0 for gw in gws) >= 1, [gw.metric(FILL_WAITS) for gw in gws]
    for gw in gws:
        assert xcache(get(gw, "/items/cold")) == "HIT"
    assert len(up.recorded("/items/cold")) == 1
    for gw in gws:
        gw.stop()

    # Without the fleet's fill lock, each instance (each worker) fetches for itself.
    unlocked = {**cfg, "cache": {**cfg["cache"], "fill_lock": False}}
    gws = [gateway(unlocked), gateway(unlocked)]
    responses = concurrent_gets(gws, "/items/other", 50)
    assert all(r.status == 200 for r in responses)
    fetched = len(up.recorded("/items/other"))
    assert fetched >= 2, f"{fetched} upstream requests for two instances without fill_lock"
    assert sum(gw.metric(FILL_WAITS) for gw in gws) == 0


def kill_the_filler(gateway, upstream, memcached):
    """Two instances on one Memcached, an upstream whose first answer takes 3 s and whose timeout (so the fill
    lease) is 2 s. Instance A gets the first request for a cold key, wins the fleet's fill lease (the placeholder
    Memcached vivifies) and is killed (SIGKILL) while its upstream request is in flight: the lease is neither
    released nor replaced by a record. → (B, the upstream, the primary server, the entry key A leased, when A's
    request reached the upstream)."""
    primary = memcached()
    up = upstream()
    counting = Counting()
    up.on("/items/slow", counting.behaviour)
    counting.delay = 3.0
    cfg = cache_gateway_config({"u": {"endpoints": [up], "timeout": "2s"}}, [primary])
    a, b = gateway(cfg, name="a"), gateway(cfg, name="b")

    outcome = []
    first = threading.Thread(target=lambda: outcome.append(_get_or_error(a, "/items/slow")), daemon=True)
    first.start()
    assert len(up.wait_for_requests(1, timeout=5)) == 1, "A's request did not reach the upstream"
    leased_at = time.monotonic()
    counting.delay = 0.0
    os.kill(a.pid, signal.SIGKILL)
    a.proc.wait(timeout=10)
    first.join(timeout=10)
    assert outcome and not hasattr(outcome[0], "status"), f"A answered although killed: {outcome}"
    # A's lease: the entry's key holds an empty placeholder.
    (key,) = entry_keys([primary], "items")
    assert primary.get(key) == b"", primary.get(key)
    return b, up, primary, key, leased_at


def _get_or_error(gw, target):
    try:
        return get(gw, target)
    except Exception as e:  # the instance was killed mid-request
        return e


def test_a_dead_fillers_lease_expires_and_the_next_request_fills_the_key(gateway, upstream, memcached):
    """What the lease of a dead instance costs: nothing after it expires. The placeholder disappears within the
    2 s lease (plus Memcached's one-second clock); then a request to instance B for the key is no wait at all: B
    wins the lease itself, fetches (the upstream's second request), answers, and stores, so the fleet serves the
    key from the cache again."""
    b, up, primary, key, leased_at = kill_the_filler(gateway, upstream, memcached)
    assert wait_until(lambda: primary.get(key) is None, timeout=5, interval=0.1), "the lease never expired"
    assert time.monotonic() - leased_at < 3.5, "the placeholder outlived its 2 s lease"

    r, took = timed(lambda: get(b, "/items/slow"))
    assert r.status == 200 and xcache(r) == "MISS", r
    assert r.json() == {"n": 2, "target": "/items/slow"}, r.body
    assert took < 1.0, f"B answered after {took:.2f}s"
    assert b.metric(FILL_WAITS) == 0, "B waited for a lease that was over"
    wait_stored(b, 1)
    r = get(b, "/items/slow")
    assert xcache(r) == "HIT" and n_of(r) == 2, r
    assert len(up.recorded("/items/slow")) == 2


def test_a_request_waiting_on_a_dead_fillers_lease_fetches_and_fills_the_key(gateway, upstream, memcached):
    """A request to instance B for the key right after A died, while A's lease is still there, must neither hang
    nor fail: B sees the lease (it waits: apigw_cache_fill_waits_total), and once the lease is over (or B's wait,
    bounded by the upstream's timeout, is) fetches the response itself (the upstream's second request) and answers
    200. Having fetched it for the fleet, it stores it: the next request is a hit, with no third upstream
    request."""
    b, up, primary, key, leased_at = kill_the_filler(gateway, upstream, memcached)
    r, took = timed(lambda: get(b, "/items/slow"))
    assert r.status == 200 and xcache(r) == "MISS", r
    assert r.json() == {"n": 2, "target": "/items/slow"}, r.body
    assert took < 4.5, f"B answered after {took:.2f}s: longer than the 2 s lease and the 2 s timeout"
    assert b.metric(FILL_WAITS) >= 1, "B did not see A's lease"
    assert len(up.recorded("/items/slow")) == 2

    # B's fetch filled the key.
    assert wait_until(lambda: b.metric(STORED) >= 1, timeout=3), \
        f"B stored nothing of the response it fetched (entry: {primary.get(key)!r})"
    r = get(b, "/items/slow")
    assert r.status == 200 and xcache(r) == "HIT" and n_of(r) == 2, r
    assert len(up.recorded("/items/slow")) == 2
