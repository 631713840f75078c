"""Configuration reload (SIGHUP and the file watch): under load no request fails, each request is answered by the
route table current when it arrived, a bad file changes nothing, unchanged upstream pools are kept, and a new
listen address takes over while connections on the old one stay."""

import copy
import json
import signal
import threading
import time
import urllib.request

from apigw_harness import free_port, gateway_config, route, wait_until, write_config
from rawhttp import Client, ConnectionClosed, connect
from recording_upstream import Fixed


def admin_get(gw, path):
    with urllib.request.urlopen(gw.admin_url(path), timeout=5) as resp:
        return resp.read().decode()


def generation(gw) -> int:
    try:
        return json.loads(admin_get(gw, "/readyz"))["generation"]
    except OSError:
        return -1


def metric(gw, series: str) -> float:
    for line in admin_get(gw, "/metrics").splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def with_routes(gw, routes, **top):
    """The gateway's own config (same ports) with other routes and top-level keys."""
    cfg = copy.deepcopy(gw.config)
    cfg["routes"] = routes
    cfg.update(top)
    return cfg


def reload(gw, cfg):
    write_config(gw.config_path, cfg)
    gw.proc.send_signal(signal.SIGHUP)


def reload_and_wait(gw, cfg, expect_generation):
    reload(gw, cfg)
    assert wait_until(lambda: generation(gw) == expect_generation, timeout=5), (generation(gw), gw.log())


def two_tables(up_a, up_b):
    """Two valid route tables over the same two upstreams (so their pools stay), and an invalid one."""
    upstreams = {"a": up_a, "b": up_b}
    table1 = gateway_config([route("t1", "/r", "a"), route("only1", "/one", "a")], upstreams)
    table2 = gateway_config([route("t2", "/r", "b"), route("only2", "/two", "b")], upstreams)
    return table1, table2


def test_twenty_reloads_under_load_fail_nothing_and_switch_tables_atomically(gateway, upstream):
    up_a = upstream("a", default=Fixed(200, b"A"))
    up_b = upstream("b", default=Fixed(200, b"B"))
    table1, table2 = two_tables(up_a, up_b)
    gw = gateway({**table1, "server": {"workers": 2}})
    valid = {1: with_routes(gw, table1["routes"]), 2: with_routes(gw, table2["routes"])}
    # Invalid in two ways: a route naming an unknown upstream, and broken YAML.
    dangling = with_routes(gw, [route("t3", "/r", "nowhere")])
    broken = "server: { listen: [\n"

    stop = threading.Event()
    results = []  # (sent, received, status, route) per request
    failures = []
    lock = threading.Lock()

    def client():
        try:
            with Client(gw.port) as c:
                while not stop.is_set():
                    sent = time.monotonic()
                    r = c.request("GET", "/r")
                    received = time.monotonic()
                    with lock:
                        results.append((sent, received, r.status, r.header("X-Apigw-Route")))
                    if r.wants_close():
                        failures.append(f"the gateway closed a client connection: {r}")
                        return
        except Exception as e:  # noqa: BLE001 - any failure of a request is the finding
            failures.append(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=client) for _ in range(12)]
    for t in threads:
        t.start()
    assert wait_until(lambda: len(results) > 200, timeout=10)

    switches = [(None, 1, time.monotonic())]  # (signalled, table, applied)
    current, expected_generation, rejected = 1, 1, 0
    for i in range(20):
        if i % 2 == 0:
            current = 2 if current == 1 else 1
            expected_generation += 1
            signalled = time.monotonic()
            reload_and_wait(gw, valid[current], expected_generation)
            switches.append((signalled, current, time.monotonic()))
        else:
            rejected += 1
            reload(gw, dangling if i % 4 == 1 else broken)
            assert wait_until(lambda: metric(gw, 'apigw_config_reloads_total{result="failure"}') == rejected,
                              timeout=5)
            assert generation(gw) == expected_generation
        time.sleep(0.15)  # let traffic flow on this table
    stop.set()
    for t in threads:
        t.join(timeout=10)

    assert not failures, failures[:5]
    assert len(results) >= 2000, f"only {len(results)} requests: not a load"
    bad = [r for r in results if r[2] != 200]
    assert not bad, f"{len(bad)} failed requests, e.g. {bad[:3]}"

    # A request sent after a switch was applied and answered before the next one was signalled can only have
    # been served by that table.
    names = {1: "t1", 2: "t2"}
    checked = 0
    for k, (_, table, applied) in enumerate(switches):
        next_signal = switches[k + 1][0] if k + 1 < len(switches) else float("inf")
        window = [r for r in results if r[0] >= applied and r[1] <= next_signal]
        wrong = [r for r in window if r[3] != names[table]]
        assert not wrong, f"table {table} was current, yet {len(wrong)} requests were served by another: {wrong[:3]}"
        checked += len(window)
    assert checked >= len(results) // 2, f"only {checked} of {len(results)} requests fell inside a window"
    assert {r[3] for r in results} == {"t1", "t2"}

    # Both upstreams are unchanged in both tables, so their pools (and connections) survived every reload.
    assert up_a.connections_accepted <= 24, up_a.connections_accepted
    assert up_b.connections_accepted <= 24, up_b.connections_accepted
    assert metric(gw, 'apigw_config_reloads_total{result="success"}') == 10
    assert metric(gw, "apigw_config_last_reload_successful") == 0  # the last one was broken
    assert "reload rejected" in gw.log()


def test_bad_reload_names_file_and_line_and_keeps_serving(gateway, upstream):
    up = upstream("a", default=Fixed(200, b"A"))
    gw = gateway(gateway_config([route("t1", "/r", "a")], {"a": up}))
    cfg = with_routes(gw, [route("t1", "/r", "a"), route("t1", "/other", "a")])  # a duplicate route name
    reload(gw, cfg)
    assert wait_until(lambda: "reload rejected" in gw.log())
    log = gw.log()
    assert f"{gw.config_path}:" in log and "t1" in log, log
    assert "still serving config generation 1" in log
    with Client(gw.port) as c:
        r = c.request("GET", "/r")
        assert r.status == 200 and r.header("X-Apigw-Route") == "t1"
        assert c.request("GET", "/other").status == 404
    assert metric(gw, 'apigw_config_reloads_total{result="failure"}') == 1
    assert metric(gw, "apigw_config_last_reload_successful") == 0
    assert json.loads(admin_get(gw, "/readyz"))["status"] == "ready"

    # Fixed, it loads.
    reload_and_wait(gw, with_routes(gw, [route("t1", "/r", "a"), route("t2", "/other", "a")]), 2)
    assert metric(gw, "apigw_config_last_reload_successful") == 1
    with Client(gw.port) as c:
        assert c.request("GET", "/other").header("X-Apigw-Route") == "t2"


def test_request_in_flight_finishes_on_the_table_it_started_with(gateway, upstream):
    up_a = upstream("a", default=Fixed(200, b"A", delay=1.0))
    up_b = upstream("b", default=Fixed(200, b"B"))
    table1, table2 = two_tables(up_a, up_b)
    gw = gateway(table1)
    with Client(gw.port) as slow, Client(gw.port) as fast:
        slow.send(b"GET /r HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_until(lambda: len(up_a.recorded()) == 1)
        reload_and_wait(gw, with_routes(gw, table2["routes"]), 2)
        r = fast.request("GET", "/r")
        assert r.status == 200 and r.header("X-Apigw-Route") == "t2" and r.body == b"B"
        r = slow.read_response()
        assert r.status == 200 and r.header("X-Apigw-Route") == "t1" and r.body == b"A"
        # The connection stays and the next request on it uses the new table.
        assert slow.request("GET", "/r").header("X-Apigw-Route") == "t2"


def test_removed_upstream_closes_its_pool_and_changed_upstream_gets_a_new_one(gateway, upstream):
    up_a = upstream("a", default=Fixed(200, b"A"))
    up_c = upstream("c", default=Fixed(200, b"C"))
    gw = gateway(gateway_config([route("ra", "/a", "a"), route("rc", "/c", "c")], {"a": up_a, "c": up_c}))
    with Client(gw.port) as c:
        assert c.request("GET", "/a").status == 200
        assert c.request("GET", "/c").status == 200
    assert metric(gw, 'apigw_upstream_connections{upstream="c"}') == 1
    cfg = with_routes(gw, [route("ra", "/a", "a")])
    del cfg["upstreams"]["c"]
    reload_and_wait(gw, cfg, 2)
    assert wait_until(lambda: metric(gw, 'apigw_upstream_connections{upstream="c"}') == 0)
    assert metric(gw, 'apigw_upstream_connections{upstream="a"}') == 1  # kept

    # A changed definition (another timeout) is a new pool: the old connection closes, a new one opens.
    cfg = copy.deepcopy(cfg)
    cfg["upstreams"]["a"]["timeout"] = "7s"
    reload_and_wait(gw, cfg, 3)
    with Client(gw.port) as c:
        assert c.request("GET", "/a").status == 200
    assert up_a.connections_accepted == 2


def test_new_listen_address_takes_over_and_old_connections_stay_until_idle(gateway, upstream):
    up = upstream("a", default=Fixed(200, b"A"))
    gw = gateway(gateway_config([route("t1", "/r", "a")], {"a": up}))
    old_port = gw.port
    with Client(old_port) as kept:
        assert kept.request("GET", "/r").status == 200
        new_port = free_port()
        cfg = with_routes(gw, [route("t2", "/r", "a")])
        cfg["server"]["listen"] = f"127.0.0.1:{new_port}"
        reload_and_wait(gw, cfg, 2)
        with Client(new_port) as fresh:
            assert fresh.request("GET", "/r").header("X-Apigw-Route") == "t2"
        try:
            connect(old_port, timeout=1).close()
            raise AssertionError("the old listen address still accepts connections")
        except OSError:
            pass
        r = kept.request("GET", "/r")  # the connection made before the move still serves
        assert r.status == 200 and r.header("X-Apigw-Route") == "t2"


def test_listen_address_that_cannot_be_bound_rejects_the_reload(gateway, upstream):
    up = upstream("a", default=Fixed(200, b"A"))
    gw = gateway(gateway_config([route("t1", "/r", "a")], {"a": up}))
    cfg = with_routes(gw, [route("t2", "/r", "a")])
    cfg["server"]["listen"] = f"127.0.0.1:{gw.admin_port}"  # taken by apigw's own admin listener
    reload(gw, cfg)
    assert wait_until(lambda: "reload rejected" in gw.log())
    assert "cannot listen on" in gw.log()
    with Client(gw.port) as c:
        assert c.request("GET", "/r").header("X-Apigw-Route") == "t1"


def test_file_watch_reloads_without_a_signal(gateway, upstream):
    up = upstream("a", default=Fixed(200, b"A"))
    cfg = gateway_config([route("t1", "/r", "a")], {"a": up})
    cfg["reload"] = {"watch": True, "interval": "100ms"}
    gw = gateway(cfg)
    write_config(gw.config_path, with_routes(gw, [route("t2", "/r", "a")]))
    assert wait_until(lambda: generation(gw) == 2, timeout=5), gw.log()
    with Client(gw.port) as c:
        assert c.request("GET", "/r").header("X-Apigw-Route") == "t2"
    # A broken file is tried once, and the old table keeps serving; fixing it loads it.
    gw.config_path.write_text("routes: [\n")
    assert wait_until(lambda: metric(gw, 'apigw_config_reloads_total{result="failure"}') == 1, timeout=5)
    time.sleep(0.5)
    assert metric(gw, 'apigw_config_reloads_total{result="failure"}') == 1
    write_config(gw.config_path, with_routes(gw, [route("t3", "/r", "a")]))
    assert wait_until(lambda: generation(gw) == 3, timeout=5), gw.log()


def test_sigusr1_reopens_a_rotated_access_log(gateway, upstream, tmp_path):
    up = upstream("a", default=Fixed(200, b"A"))
    log_path = tmp_path / "access.log"
    gw = gateway(gateway_config([route("t1", "/r", "a")], {"a": up}, log={"access": str(log_path)}))
    with Client(gw.port) as c:
        c.request("GET", "/first")
    assert wait_until(lambda: log_path.exists() and "/first" in log_path.read_text())
    rotated = tmp_path / "access.log.1"
    log_path.rename(rotated)
    gw.proc.send_signal(signal.SIGUSR1)
    assert wait_until(lambda: log_path.exists())
    with Client(gw.port) as c:
        c.request("GET", "/second")
    assert wait_until(lambda: "/second" in log_path.read_text())
    assert "/second" not in rotated.read_text()


def test_client_connections_survive_a_reload(gateway, upstream):
    up = upstream("a", default=Fixed(200, b"A"))
    gw = gateway(gateway_config([route("t1", "/r", "a")], {"a": up}))
    clients = [Client(gw.port) for _ in range(5)]
    try:
        for c in clients:
            assert c.request("GET", "/r").status == 200
        reload_and_wait(gw, with_routes(gw, [route("t2", "/r", "a")]), 2)
        for c in clients:
            try:
                r = c.request("GET", "/r")
            except ConnectionClosed:
                raise AssertionError("a reload closed an idle keep-alive client connection") from None
            assert r.header("X-Apigw-Route") == "t2"
    finally:
        for c in clients:
            c.close()


def test_admin_listener_turned_off_and_on_again_by_reloads(gateway, upstream):
    up = upstream("a", default=Fixed(200, b"A"))
    gw = gateway(gateway_config([route("t1", "/r", "a")], {"a": up}))
    reload(gw, with_routes(gw, [route("t1", "/r", "a")], admin={"listen": "off"}))
    assert wait_until(lambda: "reloaded: serving config generation 2" in gw.log()), gw.log()
    try:
        connect(gw.admin_port, timeout=1).close()
        raise AssertionError("admin: listen: off left the admin listener open")
    except OSError:
        pass
    gw.admin_port = free_port()
    reload_and_wait(gw, with_routes(gw, [route("t1", "/r", "a")], admin={"listen": f"127.0.0.1:{gw.admin_port}"}), 3)
    assert json.loads(admin_get(gw, "/readyz"))["status"] == "ready"
