"""A restart through socket activation drops no request: the service manager holds the listening socket, the old
process drains, connections made meanwhile wait in the socket's queue and the new process answers them."""

import socket
import threading
import time

from apigw_harness import HOST, free_port, gateway_config, route
from rawhttp import Client
from recording_upstream import Fixed


def listening_socket(port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((HOST, port))
    s.listen(4096)
    s.set_inheritable(True)
    return s


def test_restart_with_a_passed_socket_answers_every_request(gateway, upstream):
    up = upstream("a", default=Fixed(200, b"A", delay=0.01))
    port = free_port()
    sock = listening_socket(port)
    try:
        def config(route_name):
            return gateway_config([route(route_name, "/r", "a")], {"a": up},
                                  server={"listen": f"{HOST}:{port}", "workers": 2, "drain_timeout": "5s"})

        first = gateway(config("old"), name="old", listen_socket=sock)
        assert "through the socket passed by the service manager" in first.log()

        stop = threading.Event()
        answered, failures = [], []
        lock = threading.Lock()

        def keep_alive_client():
            # Keeps its connection while the gateway lets it; Connection: close means open a new one.
            while not stop.is_set():
                try:
                    with Client(port, timeout=15) as c:
                        while not stop.is_set():
                            r = c.request("GET", "/r")
                            with lock:
                                answered.append((time.monotonic(), r.status, r.header("X-Apigw-Route")))
                            if r.wants_close():
                                break
                except Exception as e:  # noqa: BLE001 - any failed request is the finding
                    failures.append(f"keep-alive: {type(e).__name__}: {e}")
                    return

        def new_connection_client():
            while not stop.is_set():
                try:
                    with Client(port, timeout=15) as c:
                        r = c.request("GET", "/r", headers=[("Connection", "close")])
                    with lock:
                        answered.append((time.monotonic(), r.status, r.header("X-Apigw-Route")))
                except Exception as e:  # noqa: BLE001
                    failures.append(f"new connection: {type(e).__name__}: {e}")
                    return

        threads = [threading.Thread(target=keep_alive_client) for _ in range(6)]
        threads += [threading.Thread(target=new_connection_client) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)

        # systemctl restart: stop (drain), then start a new process on the same socket.
        assert first.stop() == 0
        gap_start = time.monotonic()
        time.sleep(0.3)  # the service manager takes its time; connections queue meanwhile
        second = gateway(config("new"), name="new", listen_socket=sock)
        gap_end = time.monotonic()
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(timeout=20)

        assert not failures, "\n".join(failures)
        assert all(status == 200 for _, status, _ in answered), [a for a in answered if a[1] != 200][:5]
        served = {name for _, _, name in answered}
        assert served == {"old", "new"}, served
        # Requests made while no apigw ran were answered by the new one, once it started.
        waited = [a for a in answered if gap_start < a[0] and a[2] == "new" and a[0] - gap_end < 0.2]
        assert waited, "no request was made during the restart"
        assert second.alive()
    finally:
        sock.close()
