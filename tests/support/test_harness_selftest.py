"""Self-test of the e2e harness alone (no apigw): the recording upstream, the raw client, the YAML writer
and process handling. Run: python3 -m pytest -q -p no:cacheprovider tests/support/test_harness_selftest.py
"""

import hashlib
import http.client
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rawhttp  # noqa: E402
from apigw_harness import Apigw, claim_port, free_port, gateway_config, route, to_yaml, wait_for_port  # noqa: E402
from recording_upstream import (Close, Dynamic, Echo, Fixed, Garbage, Generate, Hang, Reset,  # noqa: E402
                                ResetMidBody, Upstream, pattern_pieces, pattern_sha256)


@pytest.fixture
def up():
    u = Upstream(name="self")
    yield u
    u.stop()


def test_http_client_keepalive_and_recording(up):
    up.on("/a", Fixed(201, b"hello", headers=[("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]))
    c = http.client.HTTPConnection("127.0.0.1", up.port, timeout=5)
    for i in range(5):
        c.request("POST", f"/a?i={i}", body=b"x" * i, headers={"X-Dup": "1"})
        r = c.getresponse()
        assert r.status == 201 and r.read() == b"hello"
        assert [v for k, v in r.getheaders() if k == "Set-Cookie"] == ["a=1", "b=2"]
        assert r.getheader("X-Upstream-Name") == "self"
    c.close()
    reqs = up.wait_for_requests(5)
    assert [r.target for r in reqs] == [f"/a?i={i}" for i in range(5)]
    assert [r.body for r in reqs] == [b"x" * i for i in range(5)]
    assert {r.conn_id for r in reqs} == {1} and up.connections_accepted == 1
    assert reqs[0].path == "/a" and reqs[0].query == "i=0"


def test_raw_chunked_request_and_duplicates(up):
    with rawhttp.Client(up.port) as c:
        c.send(b"POST /c HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nx-a: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
               + rawhttp.chunked([b"hello ", b"world"], trailers=[("X-T", "1")]))
        r = c.read_response()
        assert r.status == 200 and r.body == b"ok"
    req = up.last()
    assert req.body == b"hello world" and req.chunked
    assert req.headers[1:3] == [("X-A", "1"), ("x-a", "2")]


def test_incomplete_requests_are_not_recorded(up):
    with rawhttp.Client(up.port) as c:
        c.send(b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    with rawhttp.Client(up.port) as c:
        c.send(b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n")
        assert c.wait_closed(3)
    with rawhttp.Client(up.port) as c:
        c.send(b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    time.sleep(0.3)
    assert up.recorded() == []
    assert up.connections_accepted == 3


def test_chunked_and_close_delimited_responses(up):
    up.on("/chunks", Fixed(chunks=[b"a" * 10, b"b" * 100000, b"c"]))
    up.on("/closed", Fixed(body=b"until close", close_delimited=True))
    up.on("/empty", Fixed(204))
    with rawhttp.Client(up.port) as c:
        r = c.request("GET", "/chunks")
        assert r.chunked and r.body == b"a" * 10 + b"b" * 100000 + b"c"
        r = c.request("GET", "/empty")
        assert r.status == 204 and r.body == b""
        r = c.request("HEAD", "/chunks")
        assert r.status == 200 and r.body == b""
        r = c.request("GET", "/closed")
        assert r.body == b"until close" and r.header("Content-Length") is None
        assert c.wait_closed(2)


def test_pipelined_requests(up):
    up.on("/slow", Fixed(body=b"slow", delay=0.2))
    with rawhttp.Client(up.port) as c:
        c.send(rawhttp.build_request("GET", "/slow") + rawhttp.build_request("GET", "/fast")
               + rawhttp.build_request("POST", "/fast", body=b"zz"))
        assert [c.read_response().body for _ in range(3)] == [b"slow", b"ok", b"ok"]


def test_echo_streams_large_bodies_without_deadlock(up):
    up.default = Echo()
    total = 20 * 1024 * 1024
    head = rawhttp.build_request("POST", "/echo", [("Content-Length", str(total))])
    ex = rawhttp.StreamingExchange(up.port, head, pattern_pieces(total))
    sink = rawhttp.Sha256Sink()
    r = ex.run(sink=sink)
    ex.close()
    assert r.status == 200 and sink.count == total and sink.hexdigest() == pattern_sha256(total)
    req = up.last()
    assert req.body_len == total and req.body_sha256 == pattern_sha256(total)
    # chunked echo, http.client sending the whole body before reading (the spool absorbs it)
    c = http.client.HTTPConnection("127.0.0.1", up.port, timeout=10)
    c.request("POST", "/e", body=pattern_pieces(3 * 1024 * 1024), encode_chunked=True)
    r = c.getresponse()
    assert hashlib.sha256(r.read()).hexdigest() == pattern_sha256(3 * 1024 * 1024)
    c.close()


def test_generate_and_faults(up):
    up.on("/gen", Generate(5_000_000))
    up.on("/genc", Generate(1_000_000, chunked=True))
    up.on("/reset", Reset())
    up.on("/close", Close())
    up.on("/mid", ResetMidBody(total=100000, sent=1000))
    up.on("/garbage", Garbage())
    up.on("/hang", Hang())
    up.on("/dyn", Dynamic(lambda req: Fixed(body=req.target.encode())))
    with rawhttp.Client(up.port) as c:
        sink = rawhttp.Sha256Sink()
        r = c.request("GET", "/gen", sink=sink)
        assert sink.count == 5_000_000 and sink.hexdigest() == pattern_sha256(5_000_000)
        assert hashlib.sha256(c.request("GET", "/genc").body).hexdigest() == pattern_sha256(1_000_000)
        assert c.request("GET", "/dyn?q").body == b"/dyn?q"
    with pytest.raises(rawhttp.ConnectionClosed):
        rawhttp.request(up.port, "GET", "/reset")
    with pytest.raises(rawhttp.ConnectionClosed):
        rawhttp.request(up.port, "GET", "/close")
    with pytest.raises(rawhttp.TruncatedResponse) as ei:
        rawhttp.request(up.port, "GET", "/mid")
    assert ei.value.response.status == 200 and len(ei.value.response.body) == 1000
    with pytest.raises(rawhttp.ProtocolError):
        rawhttp.request(up.port, "GET", "/garbage")
    with rawhttp.Client(up.port, timeout=0.5) as c:
        c.send(rawhttp.build_request("GET", "/hang"))
        with pytest.raises(TimeoutError):
            c.read_response()
    assert len(up.recorded("/hang")) == 1
    t0 = time.monotonic()
    up.stop()  # stops while a hang is in progress
    assert time.monotonic() - t0 < 3


def test_http10_close(up):
    with rawhttp.Client(up.port) as c:
        c.send(b"GET /x HTTP/1.0\r\n\r\n")
        r = c.read_response()
        assert r.body == b"ok" and r.wants_close()
        assert c.wait_closed(2)


def test_yaml_writer():
    cfg = gateway_config([route("r", "/users/:id", "u", methods=["GET"], strip_prefix="/v1")],
                         {"u": {"endpoints": ["127.0.0.1:1"], "retries": {"attempts": 0}, "timeout": "1s"}},
                         server={"listen": "127.0.0.1:8080", "trusted_proxies": ["127.0.0.1/32"]},
                         limits={"max_body_bytes": "16KiB"}, log={"access": "off"})
    text = to_yaml(cfg)
    assert text == textwrap.dedent("""\
        server:
          listen: "127.0.0.1:8080"
          trusted_proxies: ["127.0.0.1/32"]
          limits:
            max_body_bytes: "16KiB"
        log:
          access: "off"
        upstreams:
          u:
            endpoints: ["127.0.0.1:1"]
            retries:
              attempts: 0
            timeout: "1s"
        routes:
          - name: r
            match:
              path: /users/:id
              methods: [GET]
            upstream: u
            rewrite:
              strip_prefix: /v1
        """)


def test_process_lifecycle_by_pid(tmp_path, monkeypatch):
    # A stand-in binary (only here, to check the harness): listens on the configured ports, says it is ready on
    # the admin one, ignores SIGTERM when told to, so the SIGKILL path is exercised too.
    fake = tmp_path / "fake_apigw"
    fake.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import re, signal, socket, sys, threading
        cfg = open(sys.argv[sys.argv.index("-c") + 1]).read()
        port, admin_port = (int(p) for p in re.findall(r'listen: "127.0.0.1:(\\d+)"', cfg))
        if "ignore_term" in cfg:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        def serve(port, answer):
            s = socket.socket(); s.bind(("127.0.0.1", port)); s.listen(8)
            while True:
                c, _ = s.accept(); c.recv(1024); c.sendall(answer); c.close()
        threading.Thread(target=serve, args=(port, b""), daemon=True).start()
        print("fake started", flush=True)
        serve(admin_port, b"HTTP/1.1 200 OK\\r\\nContent-Length: 0\\r\\n\\r\\n")
        """))
    fake.chmod(0o755)
    monkeypatch.setenv("APIGW_BIN", str(fake))
    gw = Apigw({"server": {}}, workdir=tmp_path / "a")
    assert gw.alive()
    assert gw.stop() == -15 and not gw.killed
    assert "fake started" in gw.log()
    gw = Apigw({"server": {}, "ignore_term": 1}, workdir=tmp_path / "b")
    t0 = time.monotonic()
    gw.stop(timeout=1)
    assert gw.killed and time.monotonic() - t0 < 5


def test_wait_for_port_and_free_port():
    p = free_port()
    with pytest.raises(TimeoutError):
        wait_for_port(p, timeout=0.3)
    s = socket.socket()
    s.bind(("127.0.0.1", p))
    s.listen(1)
    wait_for_port(p, timeout=2)
    s.close()


def test_a_port_claimed_by_another_test_process_is_not_handed_out():
    # Test processes run side by side (ctest -j): a port one of them drew stays its own until it exits, even
    # before its server binds it.
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; from apigw_harness import free_port; print(free_port(), flush=True); "
                               "sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.abspath(__file__))})
    try:
        port = int(child.stdout.readline())
        assert not claim_port(port)
    finally:
        child.stdin.close()
        child.wait(timeout=10)
    assert claim_port(port)
    assert not claim_port(port)  # nor twice by one process
