"""The migration's asynchronous shadow and its audit, end to end: two recording upstreams (the old side serving,
the new side receiving copies). A request in the shadow's share is copied to the new side once the old side has it,
with the shadow header and the same request id; the copy never delays or changes the answer, whatever the new side
does (down, slow, garbage); the ignore list, copies of copies and requests the split already sent to the new side
are never copied; the audit writes one NDJSON record per audited copy, comparing the two answers."""

import copy
import hashlib
import json
import os
import re
import signal
import statistics
import threading
import time
from collections import defaultdict

import pytest

from apigw_harness import free_port, gateway_config, redis_sessions, route, wait_until, write_config
from rawhttp import Client, request
from recording_upstream import Behaviour, Echo, Fixed, Garbage, Hang, Reset

DEVICE = "X-Device-Id"
SHADOW = "X-Apigw-Shadow"


def shadow_config(old, new, percent=100, routes=None, workers=2, **migration):
    r = route("users", "/users/*rest", "old")
    r["shadow"] = {"upstream": "new", "percent": percent}
    cfg = gateway_config(routes or [r], {"old": old, "new": new}, server={"workers": workers})
    cfg["migration"] = {"affinity": [f"header:{DEVICE}"], **migration}
    return cfg


def reload_and_wait(gw, cfg):
    before = gw.metric("apigw_config_generation")
    write_config(gw.config_path, cfg)
    gw.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: gw.metric("apigw_config_generation") == before + 1, timeout=5), gw.log()


def settle(gw, series, value, timeout=5.0):
    assert wait_until(lambda: gw.metric(series) == value, timeout=timeout), (series, gw.metric(series), gw.log())


def test_requests_in_the_share_are_copied_with_the_shadow_header_and_the_same_request_id(gateway, upstream):
    old, new = upstream("old"), upstream("new", default=Echo())
    gw = gateway(shadow_config(old, new, percent=50))
    ids = {}
    with Client(gw.port) as c:
        for key in ("17", "4999", "5000", "9999"):
            r = c.request("GET", f"/users/{key}?a=1&b=2", [(DEVICE, key)])
            assert r.status == 200 and r.header("X-Upstream-Name") == "old" and r.body == b"ok", r
            ids[key] = r.header("X-Request-Id")
        r = c.request("POST", "/users/17/notes", [(DEVICE, "17"), ("Content-Type", "text/plain")], body=b"note one")
        assert r.status == 200, r
        ids["post"] = r.header("X-Request-Id")
        r = c.request("PUT", "/users/17/blob", [(DEVICE, "17"), ("Transfer-Encoding", "chunked")],
                      body=b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        assert r.status == 200, r
        ids["put"] = r.header("X-Request-Id")
    copies = new.wait_for_requests(4)
    time.sleep(0.3)  # nothing more may come: keys 5000 and 9999 are outside the share
    copies = new.recorded()
    assert sorted((q.method, q.target) for q in copies) == sorted([
        ("GET", "/users/17?a=1&b=2"), ("GET", "/users/4999?a=1&b=2"), ("POST", "/users/17/notes"),
        ("PUT", "/users/17/blob")]), [q.target for q in copies]
    by_target = {q.target: q for q in copies}
    for q in copies:
        assert q.header(SHADOW) == "1", q
        assert q.header("X-Request-Id") in ids.values(), q
        # The copy is the request the old side got, header for header, but for the shadow header and framing.
        primary = next(p for p in old.recorded() if p.header("X-Request-Id") == q.header("X-Request-Id"))
        assert primary.header(SHADOW) is None
        assert primary.target == q.target and primary.method == q.method and primary.body == q.body
        for name in ("Host", "X-Forwarded-For", DEVICE):
            assert primary.header(name) == q.header(name), name
    assert by_target["/users/17?a=1&b=2"].header("X-Request-Id") == ids["17"]
    assert by_target["/users/17/notes"].body == b"note one"
    assert by_target["/users/17/notes"].header("X-Request-Id") == ids["post"]
    blob = by_target["/users/17/blob"]
    assert blob.body == b"hello world" and blob.header("Content-Length") == "11" and blob.header("Transfer-Encoding") is None
    settle(gw, 'apigw_migration_shadow_requests_total{route="users"}', 4)
    settle(gw, 'apigw_migration_shadow_responses_total{route="users",status="2xx"}', 4)
    assert gw.metric("apigw_migration_shadows_in_flight") == 0


def test_the_share_follows_the_percent_across_reloads_and_keeps_its_users(gateway, upstream):
    old, new = upstream("old"), upstream("new")
    cfg = shadow_config(old, new, percent=0)
    gw = gateway(cfg)
    cfg = copy.deepcopy(gw.config)
    keys = [str(k) for k in range(0, 10000, 37)]
    copied_before = set()
    for percent in (0, "0.01", 10, 60, 100):
        cfg["routes"][0]["shadow"]["percent"] = percent
        reload_and_wait(gw, cfg)
        new.clear()
        with Client(gw.port) as c:
            for key in keys:
                assert c.request("GET", f"/users/{key}", [(DEVICE, key)]).status == 200
        expected = {k for k in keys if int(k) < float(percent) * 100}
        assert wait_until(lambda: len(new.recorded()) == len(expected), timeout=5), (percent, len(new.recorded()))
        copied = {q.header(DEVICE) for q in new.recorded()}
        assert copied == expected, percent
        assert copied_before <= copied
        copied_before = copied


def test_the_ignore_list_is_never_copied_however_the_path_is_spelled(gateway, upstream):
    old, new = upstream("old"), upstream("new")
    users = route("users", "/users/*rest", "old")
    anything = route("any", "/*rest", "old")
    cfg = shadow_config(old, new, routes=[users, anything],
                        shadow_ignore=["POST /payments/**", "/notifications/**", "DELETE /users/*/sessions"])
    cfg["migration"]["shadow"] = {"upstream": "new", "percent": 100}  # the default of both routes
    gw = gateway(cfg)
    ignored = [("POST", "/payments/42/capture"), ("POST", "//payments/42"), ("POST", "/pay%6Dents/1"),
               ("POST", "/payments"), ("GET", "/notifications/7"), ("PUT", "/notifications"),
               ("DELETE", "/users/9/sessions")]
    copied = [("GET", "/payments/42"), ("GET", "/users/9/sessions"), ("POST", "/users/9")]
    with Client(gw.port) as c:
        for method, path in ignored + copied:
            body = b"{}" if method in ("POST", "PUT") else None
            r = c.request(method, path, [(DEVICE, "1")], body=body)
            assert r.status == 200, (method, path, r)
    assert len(old.recorded()) == len(ignored) + len(copied)
    new.wait_for_requests(len(copied))
    time.sleep(0.3)
    assert sorted((q.method, q.path) for q in new.recorded()) == sorted(copied)
    ignored_total = (gw.metric('apigw_migration_shadow_ignored_total{route="any"}')
                     + gw.metric('apigw_migration_shadow_ignored_total{route="users"}'))
    assert ignored_total == len(ignored)


def test_copies_of_copies_and_requests_the_split_moved_are_not_copied(gateway, upstream):
    old, new = upstream("old"), upstream("new")
    r = route("users", "/users/*rest", "old")
    r["shadow"] = {"upstream": "new", "percent": 100}
    r["split"] = {"upstream": "new", "percent": 50}
    gw = gateway(shadow_config(old, new, routes=[r]))
    assert request(gw.port, "GET", "/users/1", [(DEVICE, "1")]).header("X-Upstream-Name") == "new"  # split
    assert request(gw.port, "GET", "/users/1", [(DEVICE, "9000"), (SHADOW, "1")]).header("X-Upstream-Name") == "old"
    time.sleep(0.3)
    assert len(new.recorded()) == 1 and new.last().header(SHADOW) is None
    assert old.last().header(SHADOW) is None  # the client's copy of the header is not passed on
    assert request(gw.port, "GET", "/users/1", [(DEVICE, "9000")]).header("X-Upstream-Name") == "old"
    new.wait_for_requests(2)
    assert new.last().header(SHADOW) == "1"


def test_a_slow_shadow_side_does_not_move_the_primary_latency(gateway, upstream):
    old = upstream("old")
    new = upstream("new", default=Fixed(200, b"late", delay=2.0))
    plain = route("plain", "/plain/*rest", "old")
    users = route("users", "/users/*rest", "old")
    users["shadow"] = {"upstream": "new", "percent": 100}
    gw = gateway(shadow_config(old, new, routes=[users, plain], shadow={"timeout": "3s"}))

    def timed(path):
        start = time.monotonic()
        r = c.request("GET", path, [(DEVICE, "1")])
        assert r.status == 200 and r.body == b"ok", r
        return time.monotonic() - start

    shadowed, unshadowed = [], []
    with Client(gw.port) as c:
        for i in range(150):
            shadowed.append(timed(f"/users/{i}"))
            unshadowed.append(timed(f"/plain/{i}"))
    p99 = lambda xs: statistics.quantiles(xs, n=100)[98]  # noqa: E731
    assert p99(shadowed) < max(2 * p99(unshadowed), p99(unshadowed) + 0.02), (p99(shadowed), p99(unshadowed))
    assert max(shadowed) < 0.5
    assert gw.metric("apigw_migration_shadows_in_flight") > 0  # the copies were still waiting on the new side
    settle(gw, 'apigw_migration_shadow_responses_total{route="users",status="2xx"}', 150, timeout=15)


@pytest.mark.parametrize("fault", ["down", "garbage", "hang", "reset"])
def test_a_failing_shadow_side_leaves_the_primary_answer_alone(gateway, upstream, fault):
    old = upstream("old", default=Fixed(201, b'{"id":1}', [("Content-Type", "application/json")]))
    behaviours = {"garbage": Garbage(), "hang": Hang(), "reset": Reset()}
    if fault == "down":
        new_side = f"127.0.0.1:{free_port()}"
    else:
        new_side = upstream("new", default=behaviours[fault])
    cfg = shadow_config(old, new_side, shadow={"timeout": "300ms"})
    cfg["upstreams"]["new"]["timeout"] = "5s"
    gw = gateway(cfg)
    with Client(gw.port) as c:
        for i in range(6):
            start = time.monotonic()
            r = c.request("POST", f"/users/{i}", [(DEVICE, str(i))], body=b'{"a":1}')
            assert r.status == 201 and r.body == b'{"id":1}', r
            assert time.monotonic() - start < 0.25, fault
    reason = {"down": "connect", "garbage": "bad_response", "hang": "timeout", "reset": "reset"}[fault]
    series = f'apigw_migration_shadow_errors_total{{route="users",reason="{reason}"}}'
    settle(gw, series, 6)
    assert gw.metric('apigw_requests_total{route="users",method="POST",status="2xx"}') == 6
    settle(gw, "apigw_migration_shadows_in_flight", 0)


def test_max_in_flight_drops_and_counts_the_excess(gateway, upstream):
    old, new = upstream("old"), upstream("new", default=Hang())
    gw = gateway(shadow_config(old, new, workers=1, shadow={"max_in_flight": 2, "timeout": "10s"}))
    with Client(gw.port) as c:
        for i in range(5):
            assert c.request("GET", f"/users/{i}", [(DEVICE, "1")]).status == 200
    settle(gw, 'apigw_migration_shadow_dropped_total{route="users",reason="max_in_flight"}', 3)
    assert gw.metric('apigw_migration_shadow_requests_total{route="users"}') == 2
    assert gw.metric("apigw_migration_shadows_in_flight") == 2


class Together(Behaviour):
    """Answers as `inner` once `parties` requests wait for it (or after 5 s): answers that arrive together."""

    def __init__(self, parties, inner=None):
        super().__init__()
        self.barrier = threading.Barrier(parties)
        self.inner = inner or Fixed(200, b"ok")

    def respond(self, up, conn, req):
        try:
            self.barrier.wait(timeout=5)
        except threading.BrokenBarrierError:
            self.barrier.reset()
        return self.inner.respond(up, conn, req)


def burst(gw, n, method=lambda i: "GET"):
    """`n` requests at once, each on its own connection; their request ids."""
    answers = [None] * n

    def one(i):
        m = method(i)
        answers[i] = request(gw.port, m, f"/users/{i}", [(DEVICE, str(i))], body=b"x" if m == "POST" else None)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(a is not None and a.status == 200 for a in answers), answers
    return [a.header("X-Request-Id") for a in answers]


def warm_up(gw, old):
    """Requests one at a time, whose copies go alone and tell apigw how fast the new side answers (the test's server
    answers slowly when many come at once); their request ids."""
    old.on("/users/warm", Fixed(200, b"ok"))
    ids = []
    with Client(gw.port) as c:
        for _ in range(30):
            r = c.request("GET", "/users/warm", [(DEVICE, "1")])
            assert r.status == 200, r
            ids.append(r.header("X-Request-Id"))
            time.sleep(0.002)
    return ids


def recorded_ids(up):
    return {q.header("X-Request-Id") for q in up.recorded()}


def by_connection(requests):
    conns = defaultdict(list)
    for q in sorted(requests, key=lambda q: q.time):
        conns[q.conn_id].append(q)
    return conns


def test_copies_that_leave_together_are_pipelined_and_nothing_follows_a_post(gateway, upstream):
    n = 24
    old, new = upstream("old", default=Together(n)), upstream("new", default=Fixed(200, b"copy"))
    gw = gateway(shadow_config(old, new, workers=1))
    ids = warm_up(gw, old)
    for _ in range(3):
        ids += burst(gw, n, lambda i: "POST" if i % 6 == 5 else "GET")
    settle(gw, 'apigw_migration_shadow_responses_total{route="users",status="2xx"}', len(ids))
    copies = new.recorded()
    assert sorted(q.header("X-Request-Id") for q in copies) == sorted(ids)  # each copy once
    assert any(q.pipelined for q in copies), "no copy went right behind another on its connection"
    for conn in by_connection(copies).values():
        for before, after in zip(conn, conn[1:]):
            assert not (before.method == "POST" and after.pipelined), "a copy went right behind a POST"
    assert len({q.conn_id for q in copies}) < len(copies) / 2
    assert sum(gw.metric(f'apigw_migration_shadow_errors_total{{route="users",reason="{r}"}}')
               for r in ("reset", "bad_response", "timeout")) == 0


def test_pipeline_1_sends_one_copy_at_a_time(gateway, upstream):
    n = 16
    old, new = upstream("old", default=Together(n)), upstream("new", default=Fixed(200, b"copy"))
    gw = gateway(shadow_config(old, new, workers=1, shadow={"pipeline": 1}))
    ids = warm_up(gw, old) + burst(gw, n) + burst(gw, n)
    settle(gw, 'apigw_migration_shadow_responses_total{route="users",status="2xx"}', len(ids))
    assert sorted(q.header("X-Request-Id") for q in new.recorded()) == sorted(ids)
    assert not any(q.pipelined for q in new.recorded())


class ClosingSide(Behaviour):
    """A shadow side that closes its connection after every answer (`answer` says how), sure to close some on copies
    it never read: a copy with others written behind it is answered at once, and those are left unread. A copy that
    came alone waits until the next write of copies comes, on another connection (or until release()): if apigw
    batches copies at all, the copies after a lone one wait in its next batch while that one is out, and the batch
    leaves once it is full, so the next write brings copies behind one another."""

    def __init__(self, answer, patience=4.0):
        super().__init__()
        self.answer, self.patience = answer, patience
        self.behind = threading.Event()  # a copy came with others behind it on its connection
        self._writes = 0  # the writes of copies that came (each connection's first, as it closes after one answer)
        self._released = False
        self._cond = threading.Condition()

    def release(self):
        with self._cond:
            self._released = True
            self._cond.notify_all()

    def respond(self, up, conn, req):
        behind = conn.unread()
        with self._cond:
            self._writes += 1
            mine = self._writes
            if behind:
                self.behind.set()
                self._released = True
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._released or self._writes > mine, timeout=self.patience)
        return self.answer.respond(up, conn, req)


def request_ids(data):
    """The X-Request-Id of each request in `data`, raw bytes of requests."""
    return [m.decode("latin-1") for m in re.findall(rb"(?im)^x-request-id:[ \t]*([^\r\n]*?)[ \t]*\r?$", data)]


@pytest.mark.parametrize("closing", ["connection_close", "close_delimited"])
def test_copies_a_closing_shadow_side_never_read_are_sent_again(gateway, upstream, closing):
    n = 24  # more than a batch holds (shadow.pipeline, 16): the copies behind a held one fill a batch
    answer = Fixed(200, b"copy", close=True) if closing == "connection_close" else Fixed(200, b"copy", close_delimited=True)
    old, new = upstream("old", default=Together(n)), upstream("new")
    new.on("/users/warm", Fixed(200, b"ok"))  # the warm-up's copies are answered on kept-alive connections
    gw = gateway(shadow_config(old, new, workers=1))
    answered = 'apigw_migration_shadow_responses_total{route="users",status="2xx"}'
    ids, closed_on = [], []
    # apigw writes copies behind one another only while the pace it measured for the shadow side fits two answers in
    # its batch budget (ShadowDispatch, 5 ms); a lone exchange can take longer on a busy machine (the ASan build
    # above all). Then the burst went one copy at a time, each answered on a connection of its own (what is asserted
    # below holds for it too), and the warm-up and the burst go again.
    for _ in range(20):
        ids += warm_up(gw, old)
        side = ClosingSide(answer)
        new.default = side
        burst_ids = burst(gw, n)
        ids += burst_ids
        closed_on += burst_ids
        # Copies that all came one at a time: the last one waits for nothing more.
        assert wait_until(lambda: side.behind.is_set() or len(set(burst_ids) & recorded_ids(new)) == n,
                          timeout=10, interval=0.01), new.events[-50:]
        side.release()
        settle(gw, answered, len(ids))
        if side.behind.is_set():
            break
    assert new.left_unread, "apigw never wrote a copy behind another to the shadow side"
    copies = new.recorded()
    by_id = {q.header("X-Request-Id"): q for q in copies}
    assert sorted(q.header("X-Request-Id") for q in copies) == sorted(ids)  # each copy once: none lost, none twice
    # The copies written behind an answer that closed its connection were never read there, and got through on
    # another connection.
    for conn_id, data in new.left_unread:
        unread = request_ids(data)
        assert unread and set(unread) <= set(closed_on), (conn_id, data[:2000])
        assert all(by_id[rid].conn_id != conn_id for rid in unread), conn_id
    # One answer per connection: each copy to the closing side got through on a connection of its own.
    closing_copies = [q for q in copies if q.header("X-Request-Id") in set(closed_on)]
    assert len({q.conn_id for q in closing_copies}) == len(closing_copies) == len(closed_on)
    assert gw.metric('apigw_migration_shadow_requests_total{route="users"}') == len(ids)
    settle(gw, "apigw_migration_shadows_in_flight", 0)


def test_a_slow_shadow_side_gets_one_copy_per_write(gateway, upstream):
    n = 12
    old, new = upstream("old", default=Together(n)), upstream("new", default=Fixed(200, b"copy", delay=0.03))
    gw = gateway(shadow_config(old, new, workers=1))
    ids = burst(gw, n) + burst(gw, n) + burst(gw, n)
    settle(gw, 'apigw_migration_shadow_responses_total{route="users",status="2xx"}', len(ids), timeout=15)
    assert sorted(q.header("X-Request-Id") for q in new.recorded()) == sorted(ids)
    # At 30 ms an answer, two copies in a write would keep the second waiting: each goes alone.
    assert not any(q.pipelined for q in new.recorded())
    assert len({q.conn_id for q in new.recorded()}) >= n / 2


def test_bodies_over_max_body_bytes_are_not_copied(gateway, upstream):
    old, new = upstream("old"), upstream("new")
    gw = gateway(shadow_config(old, new, shadow={"max_body_bytes": "1KiB"}))
    big = b"x" * 2048
    chunked_big = b"800\r\n" + big + b"\r\n0\r\n\r\n"
    chunked_small = b"3\r\nabc\r\n0\r\n\r\n"
    with Client(gw.port) as c:
        assert c.request("POST", "/users/1", [(DEVICE, "1")], body=big).status == 200
        assert c.request("POST", "/users/2", [(DEVICE, "1"), ("Transfer-Encoding", "chunked")], body=chunked_big).status == 200
        assert c.request("POST", "/users/3", [(DEVICE, "1"), ("Transfer-Encoding", "chunked")], body=chunked_small).status == 200
    new.wait_for_requests(1)
    time.sleep(0.3)
    assert [(q.path, q.body) for q in new.recorded()] == [("/users/3", b"abc")]
    assert [len(q.body) for q in old.recorded()] == [2048, 2048, 3]
    settle(gw, 'apigw_migration_shadow_dropped_total{route="users",reason="body_too_large"}', 2)


def test_beta_users_are_always_copied(gateway, upstream, redis):
    old, new = upstream("old"), upstream("new")
    r = route("users", "/users/*rest", "old")
    r["auth"] = "required"
    r["shadow"] = {"upstream": "new", "percent": 0}
    cfg = gateway_config([r], {"old": old, "new": new})
    cfg["auth"] = redis_sessions(redis(), {"tok-beta": "9001", "tok-other": "9002"})
    cfg["migration"] = {"beta_users": ["9001"]}
    gw = gateway(cfg)
    for token in ("tok-beta", "tok-other", "tok-beta"):
        assert request(gw.port, "GET", "/users/x", [("Authorization", f"Bearer {token}")]).status == 200
    new.wait_for_requests(2)
    time.sleep(0.3)
    assert [q.header("X-User-Id") for q in new.recorded()] == ["9001", "9001"]


# --- the audit ----------------------------------------------------------------------------------------------

def json_body(value):
    return Fixed(200, json.dumps(value).encode(), [("Content-Type", "application/json")])


def read_records(path, n, timeout=5.0):
    def lines():
        try:
            with open(path) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []
    assert wait_until(lambda: len(lines()) >= n, timeout=timeout), lines()
    return lines()


def test_audit_records_compare_the_two_answers(gateway, upstream, tmp_path):
    old, new = upstream("old"), upstream("new")
    old.on("/users/same", json_body({"id": 1, "name": "ann", "generated_at": 1}))
    new.on("/users/same", json_body({"name": "ann", "id": 1.0, "generated_at": 2}))  # equal but for an ignored field
    old.on("/users/diff", json_body({"id": 2, "name": "bob", "tags": ["a", "b"]}))
    new.on("/users/diff", json_body({"id": 2, "name": "rob", "tags": ["a"]}))
    old.on("/users/text", Fixed(200, b"plain text"))
    new.on("/users/text", Fixed(404, b"plain text"))
    new.on("/users/hang", Hang())
    audit = tmp_path / "audit.ndjson"
    cfg = shadow_config(old, new, shadow={"timeout": "300ms"},
                        audit={"sink": f"file:{audit}", "ignore_fields": ["/generated_at"]})
    gw = gateway(cfg)
    answers = {}
    with Client(gw.port) as c:
        for path in ("same", "diff", "text", "hang"):
            r = c.request("GET", f"/users/{path}?q=1", [(DEVICE, "1234")])
            assert r.status == 200, r
            answers[r.header("X-Request-Id")] = (path, r.body)
    records = {rec["request_id"]: rec for rec in read_records(audit, 4)}
    assert set(records) == set(answers)
    by_path = {answers[rid][0]: rec for rid, rec in records.items()}
    for path, rec in by_path.items():
        assert rec["route"] == "users" and rec["method"] == "GET" and rec["path"] == f"/users/{path}"
        assert rec["query"] == "q=1" and rec["bucket"] == 1234
        assert rec["primary"]["upstream"] == "old" and rec["shadow"]["upstream"] == "new"
        assert rec["primary"]["status"] == 200 and rec["primary"]["latency_ms"] >= 0
        body = next(b for p, b in answers.values() if p == path)
        assert rec["primary"]["body_sha256"] == hashlib.sha256(body).hexdigest()
        assert rec["time"].endswith("Z")
    assert by_path["same"]["match"] is True and by_path["same"]["compared"] == "json"
    assert by_path["same"]["differences"] == []
    assert by_path["diff"]["match"] is False and by_path["diff"]["differences"] == ["/name", "/tags/1"]
    assert by_path["text"]["match"] is False and by_path["text"]["compared"] == "bytes"
    assert by_path["text"]["shadow"]["status"] == 404 and by_path["text"]["differences"] == []
    assert by_path["hang"]["match"] is False and by_path["hang"]["compared"] == "none"
    assert by_path["hang"]["shadow"]["error"] == "timed out"
    assert gw.metric('apigw_migration_audit_records_total{route="users",result="match"}') == 1
    assert gw.metric('apigw_migration_audit_records_total{route="users",result="mismatch"}') == 2
    assert gw.metric('apigw_migration_audit_records_total{route="users",result="incomplete"}') == 1
    settle(gw, 'apigw_migration_audit_sink_records_total{outcome="written"}', 4)


def test_audit_records_never_hold_a_query_token(gateway, upstream, redis, tmp_path):
    old, new = upstream("old"), upstream("new")
    audit = tmp_path / "audit.ndjson"
    r = route("users", "/users/*rest", "old")
    r["auth"] = "required"
    r["shadow"] = {"upstream": "new", "percent": 100}
    cfg = gateway_config([r], {"old": old, "new": new})
    cfg["auth"] = redis_sessions(redis(), {"tok-9": "9"})
    cfg["auth"]["token_from"] = ["header:Authorization", "query:access_token"]
    cfg["migration"] = {"audit": {"sink": f"file:{audit}"}}
    gw = gateway(cfg)
    assert request(gw.port, "GET", "/users/me?a=1&access_token=tok-9&b=2").status == 200
    (record,) = read_records(audit, 1)
    assert record["query"] == "a=1&access_token=REDACTED&b=2" and record["bucket"] == 9
    assert "tok-9" not in audit.read_text()


def test_audit_sample_and_large_bodies_compared_by_hash(gateway, upstream, tmp_path):
    big = os.urandom(4096).hex().encode()
    old, new = upstream("old", default=Fixed(200, big)), upstream("new", default=Fixed(200, big))
    audit = tmp_path / "audit.ndjson"
    cfg = shadow_config(old, new, audit={"sink": f"file:{audit}", "max_body_bytes": "1KiB", "sample": 50})
    gw = gateway(cfg)
    with Client(gw.port) as c:
        for i in range(200):
            assert c.request("GET", f"/users/{i}", [(DEVICE, str(i))]).status == 200
    settle(gw, 'apigw_migration_shadow_responses_total{route="users",status="2xx"}', 200)
    time.sleep(0.5)
    records = read_records(audit, 1)
    assert 60 < len(records) < 140, len(records)  # about half
    assert all(r["match"] and r["compared"] == "hash" and r["shadow"]["body_bytes"] == len(big) for r in records)


def test_audit_records_go_to_an_http_sink(gateway, upstream):
    old, new, sink = upstream("old"), upstream("new"), upstream("sink", default=Fixed(204))
    gw = gateway(shadow_config(old, new, audit={"sink": f"http://127.0.0.1:{sink.port}/audit/in"}))
    ids = set()
    with Client(gw.port) as c:
        for i in range(20):
            ids.add(c.request("GET", f"/users/{i}", [(DEVICE, str(i))]).header("X-Request-Id"))
    settle(gw, 'apigw_migration_audit_sink_records_total{outcome="written"}', 20)
    posts = sink.recorded()
    assert posts and all(p.method == "POST" and p.path == "/audit/in" for p in posts)
    assert all(p.header("Content-Type") == "application/x-ndjson" for p in posts)
    lines = [json.loads(line) for p in posts for line in p.body.decode().splitlines()]
    assert {rec["request_id"] for rec in lines} == ids


def test_an_unwritable_audit_file_is_counted_and_requests_are_served(gateway, upstream, tmp_path):
    old, new = upstream("old"), upstream("new")
    cfg = shadow_config(old, new, audit={"sink": f"file:{tmp_path}/missing-dir/audit.ndjson"})
    gw = gateway(cfg)
    with Client(gw.port) as c:
        for i in range(10):
            assert c.request("GET", f"/users/{i}", [(DEVICE, str(i))]).status == 200
    settle(gw, 'apigw_migration_audit_sink_records_total{outcome="failed"}', 10)
    assert "missing-dir" in gw.log() and "audit" in gw.log()
    assert gw.metric('apigw_migration_audit_records_total{route="users",result="match"}') == 10


def test_a_drain_lets_copies_finish_within_the_shadow_timeout(gateway, upstream, tmp_path):
    old, new = upstream("old"), upstream("new", default=Hang())
    new.on("/users/slow", Fixed(200, b"{}", delay=0.5))
    audit = tmp_path / "audit.ndjson"
    gw = gateway(shadow_config(old, new, shadow={"timeout": "1500ms"}, audit={"sink": f"file:{audit}"}))
    with Client(gw.port) as c:
        assert c.request("GET", "/users/slow", [(DEVICE, "1")]).status == 200
        assert c.request("GET", "/users/hang", [(DEVICE, "1")]).status == 200
    new.wait_for_requests(2)
    start = time.monotonic()
    os.kill(gw.pid, signal.SIGTERM)
    rc = gw.proc.wait(timeout=10)
    took = time.monotonic() - start
    assert rc == 0, gw.log()
    assert 1.0 < took < 4.0, took  # the hanging copy's timeout, not the drain_timeout or forever
    # Both copies ended before the exit, and their records were written.
    records = {r["path"]: r for r in read_records(audit, 2, timeout=1)}
    assert records["/users/slow"]["shadow"]["status"] == 200
    assert records["/users/hang"]["shadow"]["error"] == "timed out"


def test_a_reload_moves_the_audit_to_another_sink_and_can_turn_it_off(gateway, upstream, tmp_path):
    old, new = upstream("old"), upstream("new")
    first, second = tmp_path / "first.ndjson", tmp_path / "second.ndjson"
    gw = gateway(shadow_config(old, new, audit={"sink": f"file:{first}"}))
    cfg = copy.deepcopy(gw.config)
    assert request(gw.port, "GET", "/users/1", [(DEVICE, "1")]).status == 200
    read_records(first, 1)
    cfg["migration"]["audit"]["sink"] = f"file:{second}"
    reload_and_wait(gw, cfg)
    assert request(gw.port, "GET", "/users/2", [(DEVICE, "2")]).status == 200
    assert [r["path"] for r in read_records(second, 1)] == ["/users/2"]
    del cfg["migration"]["audit"]
    reload_and_wait(gw, cfg)
    assert request(gw.port, "GET", "/users/3", [(DEVICE, "3")]).status == 200
    new.wait_for_requests(3)
    time.sleep(0.3)
    assert [r["path"] for r in read_records(first, 1)] == ["/users/1"]
    assert [r["path"] for r in read_records(second, 1)] == ["/users/2"]
    assert gw.metric('apigw_migration_audit_sink_records_total{outcome="written"}') == 2


def test_sigusr1_reopens_a_rotated_audit_file(gateway, upstream, tmp_path):
    old, new = upstream("old"), upstream("new")
    audit = tmp_path / "audit.ndjson"
    gw = gateway(shadow_config(old, new, audit={"sink": f"file:{audit}"}))
    assert request(gw.port, "GET", "/users/1", [(DEVICE, "1")]).status == 200
    read_records(audit, 1)
    rotated = tmp_path / "audit.ndjson.1"
    audit.rename(rotated)
    gw.proc.send_signal(signal.SIGUSR1)
    assert wait_until(lambda: "reopened" in gw.log(), timeout=5), gw.log()
    assert request(gw.port, "GET", "/users/2", [(DEVICE, "2")]).status == 200
    assert [r["path"] for r in read_records(audit, 1)] == ["/users/2"]
    assert [r["path"] for r in read_records(rotated, 1)] == ["/users/1"]
