"""Streaming: 50 MiB bodies in both directions pass intact while apigw's peak RSS stays bounded (it must
stream, not buffer). Neither the test nor the upstream holds 50 MiB in memory."""

import os

from apigw_harness import gateway_config, route
from rawhttp import Client, Sha256Sink, StreamingExchange, build_request
from recording_upstream import Echo, Fixed, Generate, pattern_pieces, pattern_sha256

MIB = 1024 * 1024
BIG = 50 * MIB
RSS_BUDGET_KIB = 64 * 1024

# ASan keeps freed memory in a quarantine (256 MiB by default) that would count as RSS growth.
ASAN_ENV = {"ASAN_OPTIONS": ":".join(filter(None, [os.environ.get("ASAN_OPTIONS", ""),
                                                    "quarantine_size_mb=8"]))}


def make(gateway, upstream, behaviour):
    up = upstream("big", default=behaviour)
    up.on("/warmup", Fixed(200, b"ok")).on("/small", Fixed(200, b"small"))
    gw = gateway(gateway_config([route("big", "/*rest", "big")],
                                {"big": {"endpoints": [up], "timeout": "60s"}},
                                limits={"max_body_bytes": "64MiB"}), env=ASAN_ENV)
    # warm up (threads, pools, first allocations) before taking the baseline
    with Client(gw.port) as c:
        assert c.request("POST", "/warmup", body=b"w" * 1000).status == 200
    return gw, up, gw.rss_kib()


def assert_rss_bounded(gw, start_kib):
    peak = gw.hwm_kib()
    print(f"RSS start {start_kib} KiB, peak {peak} KiB")
    assert peak - start_kib < RSS_BUDGET_KIB, \
        f"apigw peak RSS {peak} KiB is {(peak - start_kib) // 1024} MiB above its {start_kib} KiB at start"


def test_50mib_request_body_echoed_intact(gateway, upstream):
    gw, up, start = make(gateway, upstream, Echo())
    head = build_request("POST", "/upload", [("Content-Length", str(BIG)), ("Content-Type", "application/x-bin")])
    ex = StreamingExchange(gw.port, head, pattern_pieces(BIG, 64 * 1024), timeout=120)
    sink = Sha256Sink()
    try:
        r = ex.run(sink=sink)
    finally:
        ex.close()
    assert ex.send_error is None, ex.send_error
    assert r.status == 200, r
    assert sink.count == BIG
    assert sink.hexdigest() == pattern_sha256(BIG)
    seen = up.last()
    assert seen.body_len == BIG and seen.body_sha256 == pattern_sha256(BIG)
    assert_rss_bounded(gw, start)


def test_50mib_chunked_request_body_echoed_intact(gateway, upstream):
    gw, up, start = make(gateway, upstream, Echo())
    head = build_request("POST", "/upload", [("Transfer-Encoding", "chunked")])

    def chunks():
        for p in pattern_pieces(BIG, 100_000):
            yield f"{len(p):x}\r\n".encode() + p + b"\r\n"
        yield b"0\r\n\r\n"

    ex = StreamingExchange(gw.port, head, chunks(), timeout=120)
    sink = Sha256Sink()
    try:
        r = ex.run(sink=sink)
    finally:
        ex.close()
    assert ex.send_error is None, ex.send_error
    assert r.status == 200, r
    assert (sink.count, sink.hexdigest()) == (BIG, pattern_sha256(BIG))
    assert up.last().body_sha256 == pattern_sha256(BIG)
    assert_rss_bounded(gw, start)


def test_50mib_response_streamed_to_slow_client(gateway, upstream):
    gw, up, start = make(gateway, upstream, Generate(BIG))
    # The client stalls for a second after 1 MiB: a gateway without back-pressure would buffer the rest.
    sink = Sha256Sink(pause_after=MIB, pause_seconds=1.0)
    with Client(gw.port, timeout=120) as c:
        r = c.request("GET", "/download", sink=sink)
        assert r.status == 200, r
        assert (sink.count, sink.hexdigest()) == (BIG, pattern_sha256(BIG))
        assert c.request("GET", "/small").status == 200
    assert_rss_bounded(gw, start)


def test_50mib_chunked_response_intact(gateway, upstream):
    gw, up, start = make(gateway, upstream, Generate(BIG, chunked=True))
    sink = Sha256Sink()
    with Client(gw.port, timeout=120) as c:
        r = c.request("GET", "/download", sink=sink)
        assert r.status == 200, r
    assert (sink.count, sink.hexdigest()) == (BIG, pattern_sha256(BIG))
    assert_rss_bounded(gw, start)
