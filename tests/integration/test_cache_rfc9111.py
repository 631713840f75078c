"""The response cache as RFC 9111 asks of a shared cache, end to end against real memcached processes: the
freshness lifetime from s-maxage, max-age or Expires − Date, capped by the route's ttl (an Expires in the past,
`0` or unparseable is never stored); writes (PUT, POST, DELETE, PATCH answered 2xx or 3xx) invalidating every
variant of their URL and of the URLs in Location and Content-Location, on any route and in the secondary pool too;
the Age the upstream reports counted in the entry's age; responses to requests with Authorization stored only when
the upstream marks them shareable (or the route says share_authorized); the upstream's Date kept on a hit; and 1xx
interim responses (103 Early Hints forwarded to HTTP/1.1 clients only, an unasked 100 Continue never, none on a
hit).

Whether an answer came from the cache is proved by the upstream's request count (and by `serial`'s `n` in the
body), never by X-Cache alone."""

import time
from email.utils import formatdate

import pytest

from apigw_harness import cached_route, gateway_config, route, wait_stored, wait_until, xcache
from rawhttp import Client, parse_response_head, request
from recording_upstream import Behaviour, Dynamic, Fixed, serial

SECONDARY_OK = 'apigw_cache_secondary_writes_total{result="ok"}'
HOST_NAME = "api.example.test"


# --- helpers -----------------------------------------------------------------------------------------------

def cache_config(upstream, primary, routes, secondary=(), **section):
    """A gateway config with a `cache` section over these MemcachedServers (timeouts generous, so that a loaded
    machine never turns an expected hit into a bypass)."""
    cfg = gateway_config(routes, {"u": upstream})
    cache = {"primary": {"servers": [s.address for s in primary], "timeout": "500ms", "connections": 2}}
    if secondary:
        cache["secondary"] = {"servers": [s.address for s in secondary], "timeout": "500ms", "queue": 1000}
    cache.update(section)
    cfg["cache"] = cache
    return cfg


def items_route(ttl="60s", **cache):
    return cached_route("items", "/items/*rest", ttl=ttl, **cache)


def get(gw, target, headers=(), method="GET", body=None):
    return request(gw.port, method, target, headers, body)


def write(gw, method, target, status=200, headers=()):
    """A write through the gateway; the upstream answers it with `status` (see `writes_answer`)."""
    return request(gw.port, method, target, [("X-Want-Status", str(status))] + list(headers), b'{"v": 1}')


def n_of(resp):
    return resp.json()["n"]


def upstream_gets(up, path):
    return len([r for r in up.recorded(path) if r.method == "GET"])


def http_date(offset=0.0, at=None):
    return formatdate((time.time() if at is None else at) + offset, usegmt=True)


def writes_answer(reads, write_headers=None):
    """GET and HEAD are answered by `reads`; any other method by a bodyless answer with the status the request asks
    for in X-Want-Status (200 by default) and the headers `write_headers(req)` gives."""
    def answer(req):
        if req.method in ("GET", "HEAD"):
            return reads
        status = int(req.header("X-Want-Status") or 200)
        headers = list(write_headers(req)) if write_headers else []
        return Fixed(status, b"" if status == 204 else b'{"written": true}',
                     headers + ([] if status == 204 else [("Content-Type", "application/json")]))
    return Dynamic(answer)


def assert_hit(gw, target, n, headers=()):
    r = get(gw, target, headers)
    assert r.status == 200 and xcache(r) == "HIT" and n_of(r) == n, (target, headers, r)
    return r


def assert_miss(gw, target, n, headers=()):
    r = get(gw, target, headers)
    assert r.status == 200 and xcache(r) == "MISS" and n_of(r) == n, \
        f"{target} {headers}: expected a MISS answered by the upstream (n={n}), got {r!r}"
    return r


def start_of_a_second():
    """Sleeps to just after the start of the next wall-clock second: HTTP dates have whole seconds, and a test that
    times a lifetime of 2 s must not lose most of one to rounding."""
    time.sleep(1.0 - time.time() % 1.0 + 0.02)


# --- 1. freshness lifetime ---------------------------------------------------------------------------------

def test_expires_in_the_past_zero_or_unparseable_is_never_stored(gateway, upstream, memcached):
    primary = memcached()
    up = upstream(default=serial())
    never = {
        "/items/past": serial(headers=lambda n: [("Date", http_date()), ("Expires", http_date(-3600))]),
        "/items/zero": serial(headers=[("Expires", "0")]),
        "/items/garbage": serial(headers=[("Expires", "not a date at all")]),
        "/items/past-no-date": serial(headers=[("Expires", "Thu, 01 Jan 1970 00:00:00 GMT")]),
    }
    for path, behaviour in never.items():
        up.on(path, behaviour)
    gw = gateway(cache_config(up, [primary], [items_route(ttl="60s")]))

    for path in list(never) + ["/items/plain"]:
        assert_miss(gw, path, 1)
    # Only the response without freshness information (the route's ttl) is stored; waiting for it lets any wrong
    # fill of the others land too.
    wait_stored(gw, 1)

    for path in never:
        r = get(gw, path)
        assert xcache(r) == "MISS" and n_of(r) == 2, f"{path}: an expired response was stored: {r!r}"
        assert upstream_gets(up, path) == 2, path
    assert_hit(gw, "/items/plain", 1)
    assert upstream_gets(up, "/items/plain") == 1


def test_expires_minus_date_is_the_lifetime_under_a_longer_ttl(gateway, upstream, memcached):
    primary = memcached()
    up = upstream(default=serial())

    def dated(n):
        now = int(time.time())
        return [("Date", http_date(at=now)), ("Expires", http_date(2, at=now))]

    up.on("/items/expires", serial(headers=dated))
    gw = gateway(cache_config(up, [primary], [items_route(ttl="60s")]))

    start_of_a_second()
    filled_at = time.monotonic()
    assert_miss(gw, "/items/expires", 1)
    wait_stored(gw, 1)
    assert_hit(gw, "/items/expires", 1)

    time.sleep(max(0.0, filled_at + 3.1 - time.monotonic()))
    r = get(gw, "/items/expires")
    assert xcache(r) == "MISS" and n_of(r) == 2, \
        f"still served from the cache 3 s after a fill whose Expires was Date + 2s (route ttl 60s): {r!r}"
    assert upstream_gets(up, "/items/expires") == 2


def test_max_age_beats_expires_and_the_route_ttl_caps_both(gateway, upstream, memcached):
    primary = memcached()
    up = upstream(default=serial())
    up.on("/items/max-age", serial(headers=lambda n: [("Cache-Control", "max-age=2"), ("Date", http_date()),
                                                      ("Expires", http_date(30 * 86400))]))
    up.on("/capped/expires", serial(headers=lambda n: [("Date", http_date()), ("Expires", http_date(30 * 86400))]))
    up.on("/capped/max-age", serial(headers=[("Cache-Control", "max-age=600")]))
    routes = [items_route(ttl="60s"), cached_route("capped", "/capped/*rest", ttl="2s")]
    gw = gateway(cache_config(up, [primary], routes))

    short_lived = ["/items/max-age", "/capped/expires", "/capped/max-age"]
    start_of_a_second()  # a Date in whole seconds must not eat the lifetime before the HIT below is asked
    for path in short_lived:
        assert_miss(gw, path, 1)
    wait_stored(gw, 3)
    for path in short_lived:
        assert_hit(gw, path, 1)

    for path in short_lived:
        assert wait_until(lambda: xcache(get(gw, path)) == "MISS", timeout=5, interval=0.2), \
            f"{path} still served from the cache 5 s after a lifetime of at most 2 s"
    for path in short_lived:
        assert upstream_gets(up, path) >= 2, path


# --- 2. writes invalidate ----------------------------------------------------------------------------------

@pytest.mark.parametrize("method,status", [("PUT", 200), ("POST", 201), ("DELETE", 204), ("PATCH", 200),
                                           ("POST", 303)])
def test_a_successful_write_invalidates_the_cached_get(gateway, upstream, memcached, method, status):
    primary = memcached()
    up = upstream(default=writes_answer(serial()))
    gw = gateway(cache_config(up, [primary], [items_route()]))

    assert_miss(gw, "/items/1", 1)
    wait_stored(gw, 1)
    assert_hit(gw, "/items/1", 1)

    # The client reads its write's answer, then asks again on the same connection, as a client that reads its own
    # writes does: the invalidation must be done by then, not merely on its way.
    with Client(gw.port) as c:
        w = c.request(method, "/items/1", [("X-Want-Status", str(status))], b'{"v": 1}')
        assert w.status == status, w
        assert up.last().method == method, "the write did not reach the upstream"
        r = c.request("GET", "/items/1")
    assert xcache(r) == "MISS" and n_of(r) == 2, f"the GET after a {method} answered {status} was {r!r}"
    assert upstream_gets(up, "/items/1") == 2
    # The fresh response is stored again.
    wait_stored(gw, 2)
    assert_hit(gw, "/items/1", 2)


def test_a_write_on_another_route_invalidates_the_cached_get(gateway, upstream, memcached):
    primary = memcached()
    up = upstream(default=writes_answer(serial()))
    read = cached_route("items-read", "/items/:id", ttl="60s")
    read["match"]["methods"] = ["GET", "HEAD"]
    routes = [read, route("items-write", "/items/:id", "u", methods=["PUT", "POST", "DELETE", "PATCH"])]
    gw = gateway(cache_config(up, [primary], routes))

    first = assert_miss(gw, "/items/1", 1)
    assert first.header("X-Apigw-Route") == "items-read", first
    wait_stored(gw, 1)
    assert_hit(gw, "/items/1", 1)

    w = write(gw, "PUT", "/items/1")
    assert w.status == 200 and w.header("X-Apigw-Route") == "items-write", w
    r = get(gw, "/items/1")
    assert xcache(r) == "MISS" and n_of(r) == 2, f"a PUT through items-write left the items-read entry: {r!r}"
    assert upstream_gets(up, "/items/1") == 2


def test_a_write_invalidates_every_variant(gateway, upstream, memcached):
    primary = memcached()
    up = upstream(default=writes_answer(serial()))
    gw = gateway(cache_config(up, [primary], [items_route(vary=["Accept-Language"])]))
    en, fr = [("Accept-Language", "en")], [("Accept-Language", "fr")]

    assert_miss(gw, "/items/1", 1, en)
    assert_miss(gw, "/items/1", 2, fr)
    wait_stored(gw, 2)
    assert assert_hit(gw, "/items/1", 1, en).json()["lang"] == "en"
    assert assert_hit(gw, "/items/1", 2, fr).json()["lang"] == "fr"

    assert write(gw, "PUT", "/items/1").status == 200  # with no Accept-Language
    r = get(gw, "/items/1", en)
    assert xcache(r) == "MISS" and n_of(r) == 3 and r.json()["lang"] == "en", f"variant en survived the PUT: {r!r}"
    r = get(gw, "/items/1", fr)
    assert xcache(r) == "MISS" and n_of(r) == 4 and r.json()["lang"] == "fr", f"variant fr survived the PUT: {r!r}"
    assert upstream_gets(up, "/items/1") == 4


def test_a_write_invalidates_its_location_and_content_location_on_the_same_host(gateway, upstream, memcached):
    primary = memcached()
    pointers = {
        "/items/1": [("Location", "/items/9"), ("Content-Location", f"http://{HOST_NAME}/items/8")],
        "/items/2": [("Location", f"http://{HOST_NAME}/items/6"), ("Content-Location", "/items/5")],
        "/items/3": [("Location", "http://elsewhere.example.test/items/7"),
                     ("Content-Location", "http://elsewhere.example.test/items/4")],
    }
    up = upstream(default=writes_answer(serial(), lambda req: pointers.get(req.path, [])))
    gw = gateway(cache_config(up, [primary], [items_route()]))
    host = [("Host", HOST_NAME)]

    paths = [f"/items/{i}" for i in range(1, 10)]
    for i, path in enumerate(paths, start=1):
        assert_miss(gw, path, i, host)
    wait_stored(gw, len(paths))
    for i, path in enumerate(paths, start=1):
        assert_hit(gw, path, i, host)

    for target in pointers:
        assert write(gw, "PUT", target, 201, host).status == 201

    invalidated = ["/items/1", "/items/2", "/items/3", "/items/5", "/items/6", "/items/8", "/items/9"]
    kept = {"/items/4": 4, "/items/7": 7}  # named only with another host
    problems = []
    for path in paths:
        r = get(gw, path, host)
        if path in invalidated and xcache(r) != "MISS":
            problems.append(f"{path} still {xcache(r)} after a write pointing at it")
        if path in kept and (xcache(r) != "HIT" or n_of(r) != kept[path]):
            problems.append(f"{path} was invalidated by a Location on another host: {xcache(r)} n={n_of(r)}")
    assert not problems, problems
    for path in invalidated:
        assert upstream_gets(up, path) == 2, path
    for path in kept:
        assert upstream_gets(up, path) == 1, path


def test_failed_writes_and_writes_to_other_urls_invalidate_nothing(gateway, upstream, memcached):
    primary = memcached()
    up = upstream(default=writes_answer(serial()))
    gw = gateway(cache_config(up, [primary], [items_route()]))

    assert_miss(gw, "/items/1", 1)
    wait_stored(gw, 1)
    assert_hit(gw, "/items/1", 1)

    for method, status in [("PUT", 409), ("DELETE", 404), ("POST", 400), ("PUT", 500), ("PATCH", 503)]:
        w = write(gw, method, "/items/1", status)
        assert w.status == status, w
        r = get(gw, "/items/1")
        assert xcache(r) == "HIT" and n_of(r) == 1, f"a {method} answered {status} invalidated the entry: {r!r}"
    # Another URL's write touches only that URL.
    assert write(gw, "PUT", "/items/2").status == 200
    assert write(gw, "PUT", "/items/1?a=2").status == 200
    assert_hit(gw, "/items/1", 1)
    assert upstream_gets(up, "/items/1") == 1


def test_invalidation_reaches_the_secondary_pool(gateway, upstream, memcached):
    m1, m2 = memcached(), memcached()
    up = upstream(default=writes_answer(serial()))
    a = gateway(cache_config(up, [m1], [items_route()], secondary=[m2]), name="A")
    b = gateway(cache_config(up, [m2], [items_route()]), name="B")

    assert_miss(a, "/items/1", 1)
    wait_stored(a, 1)
    assert wait_until(lambda: a.metric(SECONDARY_OK) >= 1, timeout=5), "the fill was not copied to the secondary"
    # B reads M2, which A's double-write warmed.
    assert wait_until(lambda: xcache(get(b, "/items/1")) == "HIT", timeout=5), "B never hit A's copy in M2"
    assert_hit(b, "/items/1", 1)
    assert upstream_gets(up, "/items/1") == 1

    assert write(a, "PUT", "/items/1").status == 200
    assert wait_until(lambda: xcache(get(b, "/items/1")) == "MISS", timeout=5, interval=0.1), \
        "the PUT through A left the entry in A's secondary pool (B still hits it)"
    assert upstream_gets(up, "/items/1") >= 2


# --- 3. Age ------------------------------------------------------------------------------------------------

def test_the_upstreams_age_counts_against_the_lifetime(gateway, upstream, memcached):
    primary = memcached()
    up = upstream(default=serial())
    up.on("/items/old", serial(headers=[("Cache-Control", "max-age=3600"), ("Age", "7200")]))
    up.on("/items/huge-age", serial(headers=[("Cache-Control", "max-age=3600"),
                                             ("Age", "99999999999999999999999")]))
    up.on("/items/aged", serial(headers=[("Cache-Control", "max-age=3600"), ("Age", "100")]))
    gw = gateway(cache_config(up, [primary], [items_route(ttl="720h")]))

    for path in ("/items/old", "/items/huge-age"):
        r = assert_miss(gw, path, 1)
        assert r.body and gw.alive(), (path, r)
    assert_miss(gw, "/items/aged", 1)
    wait_stored(gw, 1)  # only /items/aged: the others arrived stale

    for path in ("/items/old", "/items/huge-age"):
        r = get(gw, path)
        assert r.status == 200 and xcache(r) == "MISS" and n_of(r) == 2, f"{path}: a stale response was stored: {r!r}"
        assert upstream_gets(up, path) == 2, path
    hit = assert_hit(gw, "/items/aged", 1)
    age = hit.header("Age")
    assert age is not None and age.isdigit() and 100 <= int(age) < 3600, \
        f"a hit of a response that arrived with Age: 100 says Age: {age!r}"
    assert upstream_gets(up, "/items/aged") == 1
    assert gw.alive()


# --- 4. Authorization on a shared cache --------------------------------------------------------------------

BASIC = [("Authorization", "Basic dXNlcjpwYXNz")]


def test_an_authorized_response_without_shareable_directives_is_not_stored(gateway, upstream, memcached):
    primary = memcached()
    up = upstream(default=serial())
    up.on("/items/secret", serial(headers=[("Cache-Control", "max-age=60")]))
    up.on("/items/control", serial(headers=[("Cache-Control", "max-age=60")]))
    gw = gateway(cache_config(up, [primary], [items_route()]))

    assert_miss(gw, "/items/secret", 1, BASIC)
    assert up.last().header("Authorization") == BASIC[0][1]
    assert_miss(gw, "/items/control", 1)
    wait_stored(gw, 1)  # only the control; any wrong fill of the authorized response lands first on one worker

    r = get(gw, "/items/secret")
    assert xcache(r) == "MISS" and n_of(r) == 2, \
        f"a response to a request with Authorization was shared without public/s-maxage/must-revalidate: {r!r}"
    assert upstream_gets(up, "/items/secret") == 2


# The response says it may be shared, or the route opts in with share_authorized.
@pytest.mark.parametrize("cache_control, share_authorized", [("public, max-age=60", False), ("s-maxage=60", False),
                                                              ("must-revalidate, max-age=60", False),
                                                              ("max-age=60", True)])
def test_an_authorized_response_marked_shareable_is_stored(gateway, upstream, memcached, cache_control,
                                                           share_authorized):
    primary = memcached()
    up = upstream(default=serial(headers=[("Cache-Control", cache_control)]))
    route = items_route(share_authorized=True) if share_authorized else items_route()
    gw = gateway(cache_config(up, [primary], [route]))

    assert_miss(gw, "/items/shared", 1, BASIC)
    wait_stored(gw, 1)
    assert_hit(gw, "/items/shared", 1)
    assert upstream_gets(up, "/items/shared") == 1


# --- 5. Date -----------------------------------------------------------------------------------------------

def test_a_hit_keeps_the_upstreams_date(gateway, upstream, memcached):
    primary = memcached()
    sent = http_date(-5)
    up = upstream(default=serial(headers=[("Date", sent), ("Cache-Control", "max-age=60")]))
    gw = gateway(cache_config(up, [primary], [items_route()]))

    miss = assert_miss(gw, "/items/dated", 1)
    assert miss.header_all("Date") == [sent], miss
    wait_stored(gw, 1)
    hit = assert_hit(gw, "/items/dated", 1)
    assert hit.header_all("Date") == [sent], f"the hit's Date is not the one the upstream sent ({sent!r}): {hit!r}"
    assert upstream_gets(up, "/items/dated") == 1


def test_a_hit_repeats_the_date_the_gateway_gave_the_miss(gateway, upstream, memcached):
    primary = memcached()
    up = upstream(default=serial())  # no Date
    gw = gateway(cache_config(up, [primary], [items_route()]))

    miss = assert_miss(gw, "/items/undated", 1)
    dates = miss.header_all("Date")
    assert len(dates) == 1, f"the miss of an undated response should get one Date from apigw: {miss!r}"
    wait_stored(gw, 1)
    time.sleep(1.1)  # a Date made now would differ
    hit = assert_hit(gw, "/items/undated", 1)
    assert hit.header_all("Date") == dates, f"the hit made a new Date instead of repeating {dates[0]!r}: {hit!r}"
    assert upstream_gets(up, "/items/undated") == 1


# --- 6. 1xx interim responses ------------------------------------------------------------------------------

EARLY_HINTS = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Interim(Behaviour):
    """Sends `interim` (raw 1xx responses), pauses a little as a server that hints early does, then answers as
    `final` does."""

    def __init__(self, interim: bytes, final: Behaviour):
        super().__init__(final.delay)
        self.interim, self.final = interim, final

    def respond(self, up, conn, req):
        conn.send(self.interim)
        time.sleep(0.05)
        return self.final.respond(up, conn, req)


def first_head(client):
    head = client.reader.read_head()
    assert head is not None, "the gateway closed without answering"
    return parse_response_head(head)


def hints_gateway(gateway, upstream, interim=EARLY_HINTS):
    up = upstream(default=Interim(interim, Fixed(200, b"styled", [("Content-Type", "text/plain")])))
    gw = gateway(gateway_config([route("pages", "/*rest", "u")], {"u": up}))
    return gw, up


def test_early_hints_reach_an_http11_client_before_the_response(gateway, upstream):
    gw, up = hints_gateway(gateway, upstream)
    with Client(gw.port) as c:
        c.send(b"GET /page HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        hints = first_head(c)
        assert hints.status == 103, f"expected the 103 Early Hints first, got {hints!r}"
        assert hints.header("Link") == "</style.css>; rel=preload", hints
        final = c.read_response()
        assert final.status == 200 and final.body == b"styled", final
        # The connection goes on after the interim and final responses.
        again = c.request("GET", "/page2")
        assert again.status == 200 and again.body == b"styled", again
    assert len(up.recorded()) == 2


def test_an_http10_client_gets_no_interim_response(gateway, upstream):
    gw, up = hints_gateway(gateway, upstream)
    with Client(gw.port) as c:
        c.send(b"GET /page HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        head = first_head(c)
        assert head.status == 200, f"an HTTP/1.0 client got {head!r} (1xx responses are HTTP/1.1 only)"
    assert len(up.recorded()) == 1


def test_an_unasked_100_continue_is_not_forwarded(gateway, upstream):
    gw, up = hints_gateway(gateway, upstream, interim=CONTINUE)
    with Client(gw.port) as c:
        c.send(b"GET /page HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = first_head(c)
        assert head.status == 200, f"the client, which sent no Expect, got {head!r} first"
    with Client(gw.port) as c:
        c.send(b"POST /form HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\nab")
        head = first_head(c)
        assert head.status == 200, f"a POST without Expect got {head!r} first"
    assert [(q.method, q.path) for q in up.recorded()] == [("GET", "/page"), ("POST", "/form")]


def test_a_hit_carries_no_early_hints(gateway, upstream, memcached):
    primary = memcached()
    up = upstream(default=Interim(EARLY_HINTS, serial(headers=[("Cache-Control", "max-age=60")])))
    gw = gateway(cache_config(up, [primary], [items_route()]))

    with Client(gw.port) as c:
        miss = c.request("GET", "/items/page")  # interim responses, if any, are skipped here
        assert miss.status == 200 and xcache(miss) == "MISS", miss
    wait_stored(gw, 1)
    with Client(gw.port) as c:
        c.send(b"GET /items/page HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = first_head(c)
        assert head.status == 200 and xcache(head) == "HIT", f"the hit began with {head!r}"
    assert len(up.recorded()) == 1
