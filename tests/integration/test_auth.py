"""Bearer-token authentication against a real redis-server: who gets through, what refused clients see (401 with
WWW-Authenticate, 503 auth_unavailable), that a client can never pass itself off as another user, that bad tokens
never reach Redis, that the local cache spares Redis, and that each Redis fault answers per `on_error` within the
timeout and recovers without a restart."""

import copy
import signal
import socket
import threading
import time

import pytest

from apigw_harness import assert_json_error, free_port, gateway_config, route, wait_until, write_config
from rawhttp import request
from recording_upstream import Fixed
from redis_harness import RedisServer

USERS = {"tok-alice": "alice", "tok-bob": "1002"}


# --- helpers -----------------------------------------------------------------------------------------------

def seed(server, users=USERS, key="session:{}"):
    for token, user in users.items():
        server.cli("SET", key.format(token), user)


def gets(server) -> int:
    """GET/HGET commands the server has executed, from INFO commandstats."""
    total = 0
    for line in server.cli("INFO", "commandstats").splitlines():
        if line.startswith(("cmdstat_get:", "cmdstat_hget:")):
            total += int(line.split("calls=", 1)[1].split(",", 1)[0])
    return total


def auth_section(server, **over):
    """`server`: a RedisServer, or the port of one."""
    port = server if isinstance(server, int) else server.port
    section = {"redis": {"nodes": [f"127.0.0.1:{port}"], "timeout": "100ms"}}
    section.update(over)
    return section


def config(upstream, server, routes=None, **auth_over):
    routes = routes or [
        {**route("me", "/me", "u"), "auth": "required"},
        {**route("maybe", "/maybe", "u"), "auth": "optional"},
        route("open", "/open", "u"),
    ]
    cfg = gateway_config(routes, {"u": upstream})
    cfg["auth"] = auth_section(server, **auth_over)
    return cfg


def bearer(token):
    return [("Authorization", f"Bearer {token}")]


def assert_unauthorized(resp, error=None):
    doc = assert_json_error(resp, 401, "unauthorized")
    challenge = resp.header("WWW-Authenticate") or ""
    assert challenge.startswith('Bearer realm="apigw"'), resp
    if error:
        assert f'error="{error}"' in challenge, challenge
    assert resp.header("Cache-Control") == "no-store", resp
    return doc


# --- who gets through --------------------------------------------------------------------------------------

def test_valid_token_forwards_the_user_id_and_drops_client_copies(gateway, upstream, redis):
    server = redis()
    seed(server)
    up = upstream(default=Fixed(200, b"ok"))
    gw = gateway(config(up, server))

    r = request(gw.port, "GET", "/me", bearer("tok-alice") + [("X-User-Id", "root"), ("x-user-id", "admin")])
    assert r.status == 200, r
    got = up.recorded()[-1]
    assert got.header_all("X-User-Id") == ["alice"], got.headers
    assert got.header("Authorization") == "Bearer tok-alice"

    # Without a token on an optional route, and on a route without auth, a client's copy is removed too.
    for path in ("/maybe", "/open"):
        r = request(gw.port, "GET", path, [("X-User-Id", "root")])
        assert r.status == 200, r
        assert not up.recorded()[-1].has_header("X-User-Id"), (path, up.recorded()[-1].headers)

    r = request(gw.port, "GET", "/maybe", bearer("tok-bob"))
    assert r.status == 200
    assert up.recorded()[-1].header_all("X-User-Id") == ["1002"]


def test_missing_and_unknown_tokens_get_401(gateway, upstream, redis):
    server = redis()
    seed(server)
    up = upstream(default=Fixed(200, b"ok"))
    gw = gateway(config(up, server))

    r = request(gw.port, "GET", "/me")
    doc = assert_unauthorized(r)
    assert "header:Authorization" in doc["message"], doc
    assert "error=" not in r.header("WWW-Authenticate")

    r = request(gw.port, "GET", "/me", bearer("tok-nobody"))
    doc = assert_unauthorized(r, "invalid_token")
    assert doc["message"] == "invalid or expired token"

    # An unknown token is refused on an optional route too: a client that sends credentials means them.
    assert_unauthorized(request(gw.port, "GET", "/maybe", bearer("tok-nobody")), "invalid_token")
    # Another scheme is not a bearer token: absent as far as auth is concerned.
    assert_unauthorized(request(gw.port, "GET", "/me", [("Authorization", "Basic YTpi")]))
    assert up.recorded() == [], "no refused request may reach the upstream"

    # A refused request with a body is answered, and the connection stays usable when the body was read.
    r = request(gw.port, "POST", "/me", [("Content-Type", "text/plain")], body=b"hello")
    assert_unauthorized(r)


def test_bad_tokens_are_refused_without_asking_redis(gateway, upstream, redis):
    server = redis()
    seed(server)
    up = upstream(default=Fixed(200, b"ok"))
    gw = gateway(config(up, server, token_from=["header:Authorization", "query:access_token"]))
    before = gets(server)
    bad = [
        bearer(""),
        bearer("x" * 4097),
        bearer("tok{alice}"),
        [("Authorization", "Bearer abc\u00e9def")],
    ]
    for headers in bad:
        r = request(gw.port, "GET", "/me", headers)
        doc = assert_unauthorized(r, "invalid_token")
        assert doc["message"].startswith("malformed token"), doc
    for target in ("/me?access_token=", "/me?access_token=a%7Bb%7D", "/me?access_token=%zz", "/me?access_token=a+b"):
        r = request(gw.port, "GET", target)
        assert_unauthorized(r, "invalid_token")
    # A token of exactly 4 KiB is well formed and is looked up.
    assert_unauthorized(request(gw.port, "GET", "/me", bearer("y" * 4096)), "invalid_token")
    assert gets(server) == before + 1, "only the well-formed token may reach Redis"
    assert gw.metric('apigw_auth_requests_total{decision="malformed"}') == len(bad) + 4
    assert up.recorded() == []


def test_token_sources_cookie_and_query_and_the_log_never_shows_a_token(gateway, upstream, redis):
    server = redis()
    seed(server)
    up = upstream(default=Fixed(200, b"ok"))
    gw = gateway(config(up, server, token_from=["header:Authorization", "cookie:session_token",
                                                "query:access_token"]))
    r = request(gw.port, "GET", "/me", [("Cookie", "theme=dark; session_token=tok-bob")])
    assert r.status == 200 and up.recorded()[-1].header("X-User-Id") == "1002"
    r = request(gw.port, "GET", "/me?x=1&access_token=tok-alice")
    assert r.status == 200 and up.recorded()[-1].header("X-User-Id") == "alice"
    # The header wins over the cookie.
    r = request(gw.port, "GET", "/me", bearer("tok-alice") + [("Cookie", "session_token=tok-bob")])
    assert up.recorded()[-1].header("X-User-Id") == "alice"
    request(gw.port, "GET", "/open?access_token=tok-secret-open")
    request(gw.port, "GET", "/me", bearer("tok-secret-refused"))

    assert wait_until(lambda: gw.log().count('"GET /') >= 5, timeout=5), gw.log()
    log = gw.log()
    for token in ("tok-alice", "tok-bob", "tok-secret-open", "tok-secret-refused"):
        assert token not in log, f"{token} appears in the log:\n{log}"
    assert "access_token=REDACTED" in log
    line = [l for l in log.splitlines() if "/me?x=1" in l][0]
    assert line.split()[-4] == "alice", line
    assert len(line.split()[-3]) == 12, line  # the token's fingerprint
    assert line.split()[-2] == "-", line  # no error: the upstream answered


def test_user_id_from_a_hash_field_and_from_json(gateway, upstream, redis):
    server = redis()
    server.cli("HSET", "sess:h1", "uid", "u-77", "name", "x")
    server.cli("SET", "sess:j1", '{"uid": 4242, "role": "admin"}')
    server.cli("SET", "sess:j2", '{"role": "no uid"}')
    up = upstream(default=Fixed(200, b"ok"))
    gw_hash = gateway(config(up, server, key="sess:{token}", user_id="hash:uid"))
    assert request(gw_hash.port, "GET", "/me", bearer("h1")).status == 200
    assert up.recorded()[-1].header("X-User-Id") == "u-77"
    assert_unauthorized(request(gw_hash.port, "GET", "/me", bearer("h2")))

    gw_json = gateway(config(up, server, key="sess:{token}", user_id="json:uid", forward_header="X-Uid"))
    assert request(gw_json.port, "GET", "/me", bearer("j1")).status == 200
    assert up.recorded()[-1].header("X-Uid") == "4242"
    # A value without the field is bad data, not a bad token: the token store is at fault.
    assert_json_error(request(gw_json.port, "GET", "/me", bearer("j2")), 503, "auth_unavailable")


def test_acl_user_and_password(gateway, upstream, redis):
    server = redis()
    server.cli("ACL", "SETUSER", "gateway", "on", ">gw-pass", "~session:*", "+get")
    server.cli("SET", "session:tok-acl", "carol")
    server.cli("CONFIG", "SET", "requirepass", "admin-pass")
    up = upstream(default=Fixed(200, b"ok"))
    cfg = config(up, server)
    cfg["auth"]["redis"].update(username="gateway", password="${APIGW_TEST_REDIS_PASSWORD}")
    gw = gateway(cfg, env={"APIGW_TEST_REDIS_PASSWORD": "gw-pass"})
    r = request(gw.port, "GET", "/me", bearer("tok-acl"))
    assert r.status == 200, r
    assert up.recorded()[-1].header("X-User-Id") == "carol"

    wrong = config(up, server)
    wrong["auth"]["redis"].update(username="gateway", password="not-it")
    gw_wrong = gateway(wrong)
    assert_json_error(request(gw_wrong.port, "GET", "/me", bearer("tok-acl")), 503, "auth_unavailable")
    assert "gw-pass" not in gw.log() and "not-it" not in gw_wrong.log()


# --- the local cache ---------------------------------------------------------------------------------------

def test_local_cache_spares_redis_and_expires(gateway, upstream, redis):
    server = redis()
    seed(server)
    up = upstream(default=Fixed(200, b"ok"))
    # Lifetimes long enough for a loaded machine (and the sanitizer build) to finish each step within them.
    gw = gateway(config(up, server, cache={"ttl": "3s", "negative_ttl": "3s", "max_entries": 1000}))
    before = gets(server)
    for _ in range(20):
        assert request(gw.port, "GET", "/me", bearer("tok-alice")).status == 200
        assert request(gw.port, "GET", "/me", bearer("tok-nobody")).status == 401
    assert gets(server) == before + 2
    assert gw.metric("apigw_auth_local_cache_hits_total") == 38
    assert gw.metric('apigw_auth_lookups_total{result="hit"}') == 1
    assert gw.metric('apigw_auth_lookups_total{result="miss"}') == 1

    # A revoked session is honoured once the positive lifetime is over; a new one once the negative one is.
    server.cli("DEL", "session:tok-alice")
    server.cli("SET", "session:tok-nobody", "dave")
    assert request(gw.port, "GET", "/me", bearer("tok-alice")).status == 200
    assert request(gw.port, "GET", "/me", bearer("tok-nobody")).status == 401
    time.sleep(3.2)
    assert request(gw.port, "GET", "/me", bearer("tok-alice")).status == 401
    assert request(gw.port, "GET", "/me", bearer("tok-nobody")).status == 200


def test_cache_off_asks_redis_every_time(gateway, upstream, redis):
    server = redis()
    seed(server)
    up = upstream(default=Fixed(200, b"ok"))
    gw = gateway(config(up, server, cache={"max_entries": 0}))
    before = gets(server)
    for _ in range(10):
        assert request(gw.port, "GET", "/me", bearer("tok-alice")).status == 200
    assert gets(server) == before + 10


# --- Redis faults ------------------------------------------------------------------------------------------

def timed(fn):
    start = time.monotonic()
    result = fn()
    return result, time.monotonic() - start


def test_redis_down_at_start_then_up_then_killed_mid_run(gateway, upstream, redis):
    port = free_port()
    up = upstream(default=Fixed(200, b"ok"))
    cfg = config(up, port)
    gw = gateway(cfg)
    r, took = timed(lambda: request(gw.port, "GET", "/me", bearer("tok-alice")))
    doc = assert_json_error(r, 503, "auth_unavailable")
    assert took < 1.0, took
    assert r.header("Cache-Control") == "no-store"
    assert "token store is unavailable" in doc["message"]
    # Requests that need no auth are not affected.
    assert request(gw.port, "GET", "/open").status == 200

    server = RedisServer(port=port)
    try:
        seed(server)
        assert wait_until(lambda: request(gw.port, "GET", "/me", bearer("tok-alice")).status == 200, timeout=5)
        server.stop()
        r, took = timed(lambda: request(gw.port, "GET", "/me", bearer("tok-bob")))
        assert_json_error(r, 503, "auth_unavailable")
        assert took < 1.0, took
        # A cached token keeps working while Redis is away.
        assert request(gw.port, "GET", "/me", bearer("tok-alice")).status == 200
        server.start()
        seed(server)
        assert wait_until(lambda: request(gw.port, "GET", "/me", bearer("tok-bob")).status == 200, timeout=5)
    finally:
        server.stop()
    assert gw.metric('apigw_auth_lookups_total{result="error"}') >= 2
    assert gw.metric('apigw_auth_requests_total{decision="unavailable"}') >= 2


def test_slow_redis_times_out_within_the_timeout_and_recovers(gateway, upstream, redis):
    server = redis()
    seed(server)
    up = upstream(default=Fixed(200, b"ok"))
    gw = gateway(config(up, server, cache={"ttl": "0s", "negative_ttl": "0s"}))
    assert request(gw.port, "GET", "/me", bearer("tok-alice")).status == 200
    server.pause()
    try:
        r, took = timed(lambda: request(gw.port, "GET", "/me", bearer("tok-alice")))
        doc = assert_json_error(r, 503, "auth_unavailable")
        assert "timed out" in doc["message"], doc
        assert took < 1.0, f"a 100ms timeout answered after {took:.3f}s"
    finally:
        server.resume()
    assert wait_until(lambda: request(gw.port, "GET", "/me", bearer("tok-alice")).status == 200, timeout=5)
    assert gw.metric('apigw_auth_lookups_total{result="timeout"}') >= 1


def test_on_error_anonymous(gateway, upstream, redis):
    port = free_port()
    up = upstream(default=Fixed(200, b"ok"))
    gw = gateway(config(up, port, on_error="anonymous"))
    r = request(gw.port, "GET", "/maybe", bearer("tok-alice") + [("X-User-Id", "alice")])
    assert r.status == 200, r
    assert not up.recorded()[-1].has_header("X-User-Id")
    # A required route cannot serve an anonymous request.
    doc = assert_unauthorized(request(gw.port, "GET", "/me", bearer("tok-alice")))
    assert "could not be checked" in doc["message"], doc


class ResettingRedis:
    """A fake Redis that accepts, reads a command and resets the connection: a fault a real server cannot
    be made to produce on demand."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                conn.recv(65536)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            finally:
                conn.close()

    def stop(self):
        self.stopped = True
        self.sock.close()


def test_connection_reset_by_redis(gateway, upstream):
    fake = ResettingRedis()
    try:
        up = upstream(default=Fixed(200, b"ok"))
        gw = gateway(config(up, fake.port))
        r, took = timed(lambda: request(gw.port, "GET", "/me", bearer("tok-alice")))
        assert_json_error(r, 503, "auth_unavailable")
        assert took < 1.0
        assert gw.alive()
    finally:
        fake.stop()


def test_reload_switches_the_auth_section(gateway, upstream, redis):
    first = redis()
    second = redis()
    first.cli("SET", "session:tok-x", "from-first")
    second.cli("SET", "other:tok-x", "from-second")
    up = upstream(default=Fixed(200, b"ok"))
    gw = gateway(config(up, first))
    assert request(gw.port, "GET", "/me", bearer("tok-x")).status == 200
    assert up.recorded()[-1].header("X-User-Id") == "from-first"

    cfg = copy.deepcopy(gw.config)
    cfg["auth"] = auth_section(second, key="other:{token}")
    write_config(gw.config_path, cfg)
    gw.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: request(gw.port, "GET", "/me", bearer("tok-x")).status == 200 and
                      up.recorded()[-1].header("X-User-Id") == "from-second", timeout=5)
