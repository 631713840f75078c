"""W3C Trace Context through the real binary, with spans exported to a recording OTLP/HTTP collector started by the
test: a caller's trace continued (upstream told of apigw's upstream span, the spans' parent/child ids, the stage
events), a new trace started and sampled by `tracing.sample`, an invalid traceparent replaced and never forwarded,
the shadow copy as a span of its own linked to the primary exchange, the trace id in the access log and the audit,
and a collector that is down or slow costing the clients nothing."""

import copy
import json
import re
import signal
import statistics
import threading
import time

from apigw_harness import free_port, gateway_config, route, wait_until, write_config
from rawhttp import Client, request
from recording_upstream import Fixed

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
CALLER_PARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$")


def traced_config(up, collector=None, sample="100%", server=None, **tracing):
    cfg = gateway_config([route("users", "/users/*rest", "u")], {"u": up}, server=server)
    cfg["tracing"] = {"sample": sample, **tracing}
    if collector is not None:
        cfg["tracing"]["otlp"] = f"http://127.0.0.1:{collector.port}"
    return cfg


def exported_spans(collector):
    """Every span the collector received, with the resource each batch named."""
    spans = []
    for post in collector.recorded():
        assert post.method == "POST" and post.path == "/v1/traces", post
        assert post.header("Content-Type") == "application/json"
        doc = json.loads(post.body)
        for resource_spans in doc["resourceSpans"]:
            resource = {a["key"]: a["value"]["stringValue"] for a in resource_spans["resource"]["attributes"]}
            for scope in resource_spans["scopeSpans"]:
                for span in scope["spans"]:
                    span["_resource"] = resource
                    spans.append(span)
    return spans


def wait_for_spans(collector, n, timeout=10.0):
    assert wait_until(lambda: len(exported_spans(collector)) >= n, timeout=timeout), len(exported_spans(collector))
    return exported_spans(collector)


def attributes(span):
    out = {}
    for a in span.get("attributes", []):
        value = a["value"]
        out[a["key"]] = value.get("stringValue", value.get("intValue", value.get("boolValue")))
    return out


def upstream_parent(recorded):
    match = TRACEPARENT.match(recorded.header("traceparent") or "")
    assert match, recorded.headers
    return match.groups()


def test_a_callers_trace_is_continued_and_its_spans_exported(gateway, upstream):
    up = upstream("u", default=Fixed(200, b"ok"))
    collector = upstream("collector", default=Fixed(200, b"{}"))
    gw = gateway(traced_config(up, collector, sample="0%", service_name="edge-gw"))
    r = request(gw.port, "GET", "/users/7?x=1", headers=[("traceparent", CALLER_PARENT),
                                                         ("tracestate", "vendor=abc,other=1")])
    assert r.status == 200
    (sent,) = up.recorded()
    trace, upstream_span, flags = upstream_parent(sent)
    assert trace == CALLER_TRACE and upstream_span != CALLER_SPAN and flags == "01"  # the caller sampled it
    assert sent.header("tracestate") == "vendor=abc,other=1"
    assert len(sent.header_all("traceparent")) == 1 and len(sent.header_all("tracestate")) == 1
    spans = {s["kind"]: s for s in wait_for_spans(collector, 2)}
    server, client = spans[2], spans[3]
    assert server["traceId"] == client["traceId"] == CALLER_TRACE
    assert server["parentSpanId"] == CALLER_SPAN
    assert client["spanId"] == upstream_span and client["parentSpanId"] == server["spanId"]
    assert server["traceState"] == "vendor=abc,other=1"
    assert server["name"] == "GET users" and client["name"] == "GET u"
    attrs = attributes(server)
    assert attrs["http.request.method"] == "GET" and attrs["url.path"] == "/users/7"
    assert attrs["http.response.status_code"] == "200" and attrs["apigw.route"] == "users"
    assert attrs["apigw.request_id"] == r.header("X-Request-Id")
    assert attributes(client)["server.address"] == up.endpoint
    assert [e["name"] for e in server.get("events", [])] == []  # no stage applies to this route
    assert int(server["startTimeUnixNano"]) <= int(client["startTimeUnixNano"])
    assert int(client["endTimeUnixNano"]) <= int(server["endTimeUnixNano"])
    assert abs(int(server["endTimeUnixNano"]) / 1e9 - time.time()) < 30
    assert server["_resource"]["service.name"] == "edge-gw"
    assert "status" in server and server["status"].get("code", 0) == 0
    assert wait_until(lambda: gw.metric('apigw_tracing_spans_total{result="exported"}') == 2)
    shown = json.loads(request(gw.admin_port, "GET", "/config").body)["tracing"]
    assert shown == {"sample": "0%", "otlp": f"http://127.0.0.1:{collector.port}", "service_name": "edge-gw",
                     "queue": 2048, "timeout": "2s", "tls": False}


def test_new_traces_are_sampled_by_the_ratio_and_always_propagated(gateway, upstream):
    up = upstream("u", default=Fixed(200, b"ok"))
    collector = upstream("collector", default=Fixed(200, b"{}"))
    gw = gateway(traced_config(up, collector, sample="10%"))
    n = 1000
    with Client(gw.port) as c:
        for i in range(n):
            assert c.request("GET", f"/users/{i}").status == 200
    parents = [upstream_parent(rec) for rec in up.recorded()]
    assert len({trace for trace, _, _ in parents}) == n  # a new trace for each request
    sampled = sum(flags == "01" for _, _, flags in parents)
    assert 60 <= sampled <= 140, sampled  # Binomial(1000, 0.1): 100 ± 9.5
    # Exactly the sampled ones are exported: a server and an upstream span each.
    spans = wait_for_spans(collector, 2 * sampled)
    time.sleep(1.2)  # a batch lingers up to 1 s: nothing more may come
    spans = exported_spans(collector)
    assert len(spans) == 2 * sampled
    sampled_traces = {trace for trace, _, flags in parents if flags == "01"}
    assert {s["traceId"] for s in spans} == sampled_traces
    assert all("parentSpanId" not in s for s in spans if s["kind"] == 2)  # new traces: the server span is a root


def test_an_unsampled_caller_is_propagated_and_not_exported(gateway, upstream):
    up = upstream("u", default=Fixed(200, b"ok"))
    collector = upstream("collector", default=Fixed(200, b"{}"))
    gw = gateway(traced_config(up, collector, sample="100%"))
    assert request(gw.port, "GET", "/users/1",
                   headers=[("traceparent", f"00-{CALLER_TRACE}-{CALLER_SPAN}-00")]).status == 200
    trace, _, flags = upstream_parent(up.recorded()[0])
    assert trace == CALLER_TRACE and flags == "00"
    time.sleep(1.5)
    assert exported_spans(collector) == []


def test_an_invalid_traceparent_is_replaced_never_forwarded(gateway, upstream):
    up = upstream("u", default=Fixed(200, b"ok"))
    gw = gateway(traced_config(up))  # no collector: context is propagated, nothing is exported
    bad = ["00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  # upper case
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # version ff
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",  # no flags
           "garbage"]
    for value in bad:
        fields = [("traceparent", value), ("tracestate", "a=1")]
        assert request(gw.port, "GET", "/users/1", headers=fields).status == 200
    # Two traceparent fields are one too many.
    assert request(gw.port, "GET", "/users/2", headers=[("traceparent", CALLER_PARENT),
                                                        ("traceparent", CALLER_PARENT)]).status == 200
    for rec in up.recorded():
        assert len(rec.header_all("traceparent")) == 1, rec.headers
        trace, _, flags = upstream_parent(rec)
        assert trace not in (CALLER_TRACE, "0" * 32), rec.headers
        assert flags == "01"  # a new trace, sampled at 100 %
        assert rec.header("tracestate") is None, rec.headers
    assert gw.metric('apigw_tracing_spans_total{result="exported"}') == 0


def test_without_a_tracing_section_the_fields_pass_untouched(gateway, upstream):
    up = upstream("u", default=Fixed(200, b"ok"))
    gw = gateway(gateway_config([route("users", "/users/*rest", "u")], {"u": up}))
    fields = [("traceparent", "whatever"), ("tracestate", "a=1")]
    assert request(gw.port, "GET", "/users/1", headers=fields).status == 200
    (rec,) = up.recorded()
    assert rec.header("traceparent") == "whatever" and rec.header("tracestate") == "a=1"


def test_the_trace_id_is_in_the_access_log(gateway, upstream, tmp_path):
    up = upstream("u", default=Fixed(200, b"ok"))
    log = tmp_path / "access.log"
    cfg = traced_config(up, sample="0%")
    cfg["log"] = {"access": str(log)}
    gw = gateway(cfg)
    request(gw.port, "GET", "/users/1", headers=[("traceparent", CALLER_PARENT), ("X-Request-Id", "traced-1")])
    request(gw.port, "GET", "/users/2", headers=[("X-Request-Id", "traced-2")])
    assert wait_until(lambda: log.exists() and "traced-2" in log.read_text())
    lines = {line.split()[1]: line for line in log.read_text().splitlines()}
    assert lines["traced-1"].split()[-1] == CALLER_TRACE
    new_trace = lines["traced-2"].split()[-1]
    assert re.fullmatch(r"[0-9a-f]{32}", new_trace) and new_trace == upstream_parent(up.recorded()[1])[0]


def test_the_shadow_copy_is_a_span_of_its_own_linked_to_the_primary(gateway, upstream, tmp_path):
    old, new = upstream("old", default=Fixed(200, b"{}")), upstream("new", default=Fixed(200, b"{}"))
    collector = upstream("collector", default=Fixed(200, b"{}"))
    audit = tmp_path / "audit.ndjson"
    r = route("users", "/users/*rest", "old")
    r["shadow"] = {"upstream": "new", "percent": 100}
    cfg = gateway_config([r], {"old": old, "new": new})
    cfg["migration"] = {"audit": {"sink": f"file:{audit}"}}
    cfg["tracing"] = {"sample": "0%", "otlp": f"http://127.0.0.1:{collector.port}"}
    gw = gateway(cfg)
    assert request(gw.port, "GET", "/users/5", headers=[("traceparent", CALLER_PARENT)]).status == 200
    assert wait_until(lambda: len(new.recorded()) == 1)
    primary_trace, primary_span, _ = upstream_parent(old.recorded()[0])
    shadow_trace, shadow_span, shadow_flags = upstream_parent(new.recorded()[0])
    assert primary_trace == shadow_trace == CALLER_TRACE and shadow_flags == "01"
    assert shadow_span != primary_span
    assert len(new.recorded()[0].header_all("traceparent")) == 1
    spans = {s["spanId"]: s for s in wait_for_spans(collector, 3)}
    server = next(s for s in spans.values() if s["kind"] == 2)
    shadow = spans[shadow_span]
    assert shadow["parentSpanId"] == server["spanId"] and shadow["kind"] == 3
    assert shadow["links"] == [{"traceId": CALLER_TRACE, "spanId": primary_span}]
    assert attributes(shadow)["apigw.shadow"] is True
    assert attributes(shadow)["http.response.status_code"] == "200"
    assert spans[primary_span]["parentSpanId"] == server["spanId"]
    events = [e["name"] for e in server["events"]]
    assert events == ["shadow", "audit"], events
    assert wait_until(lambda: audit.exists() and audit.read_text().strip())
    record = json.loads(audit.read_text().splitlines()[0])
    assert record["trace_id"] == CALLER_TRACE
    assert record["primary"]["span_id"] == primary_span and record["shadow"]["span_id"] == shadow_span


def latencies(port, n):
    out = []
    with Client(port) as c:
        for i in range(n):
            started = time.monotonic()
            assert c.request("GET", f"/users/{i}").status == 200
            out.append(time.monotonic() - started)
    return out


def test_a_collector_that_is_down_or_slow_costs_the_clients_nothing(gateway, upstream):
    up = upstream("u", default=Fixed(200, b"ok"))
    # Down: nothing listens on the collector's port.
    down = gateway(traced_config(up, otlp=f"http://127.0.0.1:{free_port()}"), name="down")
    times = latencies(down.port, 300)
    assert statistics.median(times) < 0.05 and max(times) < 1.0, (statistics.median(times), max(times))
    assert wait_until(lambda: down.metric('apigw_tracing_spans_total{result="failed"}') >= 1, timeout=10)
    assert down.metric('apigw_tracing_spans_total{result="exported"}') == 0
    # Slow: each export takes 3 s; with a queue of 50 spans, the rest are dropped and counted, never waited on.
    slow_collector = upstream("slow", default=Fixed(200, b"{}", delay=3.0))
    slow = gateway(traced_config(up, slow_collector, queue=50, timeout="5s"), name="slow")
    times = latencies(slow.port, 300)
    assert statistics.median(times) < 0.05 and max(times) < 1.0, (statistics.median(times), max(times))
    assert wait_until(lambda: slow.metric('apigw_tracing_spans_total{result="dropped"}') >= 300, timeout=10)


def reload(gw, cfg, result="success"):
    series = f'apigw_config_reloads_total{{result="{result}"}}'
    before = gw.metric(series)
    write_config(gw.config_path, cfg)
    gw.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: gw.metric(series) == before + 1, timeout=5), gw.log()


def test_tracing_follows_a_reload(gateway, upstream):
    up = upstream("u", default=Fixed(200, b"ok"))
    collector = upstream("collector", default=Fixed(200, b"{}"))
    gw = gateway(gateway_config([route("users", "/users/*rest", "u")], {"u": up}))
    request(gw.port, "GET", "/users/1", headers=[("traceparent", "kept")])
    assert up.recorded()[-1].header("traceparent") == "kept"
    cfg = copy.deepcopy(gw.config)  # with the listen addresses the harness gave it
    cfg["tracing"] = {"sample": "100%", "otlp": f"http://127.0.0.1:{collector.port}"}
    reload(gw, cfg)
    request(gw.port, "GET", "/users/2", headers=[("traceparent", "kept")])
    assert TRACEPARENT.match(up.recorded()[-1].header("traceparent"))
    assert len(wait_for_spans(collector, 2)) == 2
    # A bad tracing section is refused, and tracing goes on as it was.
    reload(gw, dict(cfg, tracing={"sample": "lots"}), result="failure")
    assert "tracing.sample: expected a percent such as 1%, 0.5% or 100%, got 'lots'" in gw.log()
    request(gw.port, "GET", "/users/3")
    assert len(wait_for_spans(collector, 4)) == 4
    # Tracing off: the fields pass untouched again.
    del cfg["tracing"]
    reload(gw, cfg)
    request(gw.port, "GET", "/users/4", headers=[("traceparent", "kept")])
    assert up.recorded()[-1].header("traceparent") == "kept"


def test_concurrent_requests_each_get_their_own_spans(gateway, upstream):
    up = upstream("u", default=Fixed(200, b"ok"))
    collector = upstream("collector", default=Fixed(200, b"{}"))
    gw = gateway(traced_config(up, collector, server={"workers": 2}))
    errors = []

    def client(k):
        try:
            latencies(gw.port, 50)
        except AssertionError as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    spans = wait_for_spans(collector, 400)
    assert len({s["spanId"] for s in spans}) == 400
    assert len({s["traceId"] for s in spans}) == 200
