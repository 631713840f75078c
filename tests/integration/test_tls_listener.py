"""TLS on apigw's own listeners (`server.tls`, `admin.tls`): curl gets answers over one kept connection, sessions
resume, a client certificate is required with `client_ca`, the minimum version holds, a plain HTTP request on the
TLS port is answered 400 `plain_http` and never served, large bodies go both ways, `apigw -t` checks the files at
their lines, the admin listener switches to TLS by a reload, and a listener certificate rotated by a reload under
load fails no request. The certificates are made with `openssl` for the test session."""

import hashlib
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

from apigw_harness import check_config, gateway_config, route, wait_until, write_config
from rawhttp import request
from recording_upstream import Echo, Fixed, Generate, pattern_sha256
from tls_certs import make_certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


def tls_gateway(gateway, upstream_port, certs, **tls):
    block = {"cert": str(certs.server), "key": str(certs.server_key), **tls}
    cfg = gateway_config([route("r", "/*rest", "u")], {"u": {"endpoints": [f"127.0.0.1:{upstream_port}"]}},
                         server={"tls": block})
    return gateway(cfg)


def curl(*args, timeout=20):
    return subprocess.run(["curl", "-sS", "--max-time", "10", *map(str, args)], capture_output=True,
                          timeout=timeout)


def client_context(certs, cert=None, key=None, **kw):
    context = ssl.create_default_context(cafile=str(certs.ca))
    if cert:
        context.load_cert_chain(str(cert), str(key))
    for name, value in kw.items():
        setattr(context, name, value)
    return context


def https_get(port, context, path="/", session=None):
    """One GET on a new TLS connection: (status line, the TLS socket's session, whether it was resumed, the
    server certificate's DER)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost", session=session) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
            return data.split(b"\r\n", 1)[0].decode(), s.session, s.session_reused, s.getpeercert(binary_form=True)


def test_curl_gets_answers_over_one_kept_tls_connection(gateway, upstream, certs):
    up = upstream("u", default=Fixed(200, b'{"ok":true}'))
    gw = tls_gateway(gateway, up.port, certs)
    r = curl("--cacert", certs.ca, "-w", "%{http_code} %{num_connects}\\n", "-o", "/dev/null", "-o", "/dev/null",
             f"https://localhost:{gw.port}/a", f"https://localhost:{gw.port}/b")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split("\n")[:2] == ["200 1", "200 0"], r.stdout  # the second reused the connection
    r = curl("--cacert", certs.ca, "-i", f"https://localhost:{gw.port}/c")
    assert r.returncode == 0 and b"X-Request-Id:" in r.stdout and r.stdout.endswith(b'{"ok":true}'), r.stdout
    assert [q.path for q in up.recorded()] == ["/a", "/b", "/c"]
    assert gw.metric('apigw_tls_listener_handshakes_total{listener="server",result="full"}') == 2
    assert gw.metric('apigw_tls_certificate_expiry_timestamp_seconds{use="server",file="%s"}'
                     % certs.server) > time.time()


def test_a_new_connection_resumes_the_session(gateway, upstream, certs):
    up = upstream("u")
    gw = tls_gateway(gateway, up.port, certs)
    context = client_context(certs)
    status, session, resumed, _ = https_get(gw.port, context)
    assert status == "HTTP/1.1 200 OK" and not resumed
    status, _, resumed, _ = https_get(gw.port, context, session=session)
    assert status == "HTTP/1.1 200 OK" and resumed
    assert gw.metric('apigw_tls_listener_handshakes_total{listener="server",result="resumed"}') == 1


def test_plain_http_on_the_tls_port_is_answered_400_and_never_served(gateway, upstream, certs):
    up = upstream("u")
    gw = tls_gateway(gateway, up.port, certs)
    r = request(gw.port, "GET", "/secret")
    assert r.status == 400, r
    body = r.json()
    assert body["error"] == "plain_http" and "https://" in body["message"]
    assert body["request_id"] == r.header("X-Request-Id")
    # A request with a large body still gets its answer: the rest is read and dropped, not reset.
    r = request(gw.port, "POST", "/upload", body=b"x" * 300_000)
    assert r.status == 400 and r.json()["error"] == "plain_http", r
    assert up.recorded() == []
    assert gw.metric('apigw_tls_listener_handshakes_total{listener="server",result="failed"}') == 2


def test_client_ca_requires_a_certificate_it_issued(gateway, upstream, certs):
    up = upstream("u", default=Fixed(200, b"hello"))
    gw = tls_gateway(gateway, up.port, certs, client_ca=str(certs.ca))
    url = f"https://localhost:{gw.port}/mtls"
    r = curl("--cacert", certs.ca, url)
    assert r.returncode != 0, r.stdout  # no certificate: the handshake fails
    r = curl("--cacert", certs.ca, "--cert", certs.untrusted, "--key", certs.untrusted_key, url)
    assert r.returncode != 0, r.stdout  # a certificate from another CA
    assert up.recorded() == []
    assert wait_until(lambda: gw.metric('apigw_tls_listener_handshakes_total{listener="server",result="failed"}')
                      == 2)
    r = curl("--cacert", certs.ca, "--cert", certs.client, "--key", certs.client_key, url)
    assert r.returncode == 0 and r.stdout == b"hello", r.stderr
    # With a client certificate, a session resumes too.
    context = client_context(certs, certs.client, certs.client_key)
    _, session, _, _ = https_get(gw.port, context)
    status, _, resumed, _ = https_get(gw.port, context, session=session)
    assert status == "HTTP/1.1 200 OK" and resumed


def test_min_version_refuses_older_clients(gateway, upstream, certs):
    up = upstream("u")
    gw = tls_gateway(gateway, up.port, certs, min_version="1.3")
    with pytest.raises(ssl.SSLError):
        https_get(gw.port, client_context(certs, maximum_version=ssl.TLSVersion.TLSv1_2))
    status, _, _, _ = https_get(gw.port, client_context(certs))
    assert status == "HTTP/1.1 200 OK"
    assert up.recorded() and all(q.path == "/" for q in up.recorded())


def test_large_bodies_go_both_ways(gateway, upstream, certs, tmp_path):
    size = 8 * 1024 * 1024
    up = upstream("u", default=Echo())
    up.on("/big", Generate(size))
    gw = tls_gateway(gateway, up.port, certs)
    out = tmp_path / "big"
    r = curl("--cacert", certs.ca, "-o", out, f"https://localhost:{gw.port}/big")
    assert r.returncode == 0, r.stderr
    assert hashlib.sha256(out.read_bytes()).hexdigest() == pattern_sha256(size)
    sent = tmp_path / "upload"
    sent.write_bytes(bytes(range(256)) * (3 * 1024 * 1024 // 256))
    r = curl("--cacert", certs.ca, "--data-binary", f"@{sent}", "-H", "Content-Type: application/octet-stream",
             "-o", tmp_path / "echoed", f"https://localhost:{gw.port}/echo")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "echoed").read_bytes() == sent.read_bytes()


def test_check_reports_a_bad_listener_tls_block_at_its_line(tmp_path, certs):
    base = gateway_config([route("r", "/*rest", "u")], {"u": {"endpoints": ["127.0.0.1:9"]}})
    for block, needle in (({"cert": str(certs.server)}, "cert and key go together"),
                          ({"cert": str(certs.server), "key": str(certs.client_key)}, "does not match"),
                          ({"cert": str(certs.expired), "key": str(certs.expired_key)}, "expired on"),
                          ({"min_version": "1.3"}, "cert and key are required"),
                          ({"cert": str(certs.server), "key": str(certs.server_key), "client_ca": "nope.pem"},
                           "cannot read")):
        cfg = dict(base, server={"listen": "127.0.0.1:9", "tls": block})
        path = write_config(tmp_path / "apigw.yaml", cfg)
        rc, out = check_config(path)
        assert rc != 0 and f"{path}:" in out and "server.tls" in out and needle in out, (block, out)
    cfg = dict(base, admin={"listen": "127.0.0.1:9", "tls": {"cert": str(certs.server)}})
    rc, out = check_config(write_config(tmp_path / "apigw.yaml", cfg))
    assert rc != 0 and "admin.tls" in out, out


def test_a_reload_puts_the_admin_listener_on_tls(gateway, upstream, certs):
    up = upstream("u")
    cfg = gateway_config([route("r", "/*rest", "u")], {"u": up})
    gw = gateway(cfg)
    cfg["admin"] = {"listen": f"127.0.0.1:{gw.admin_port}",
                    "tls": {"cert": str(certs.server), "key": str(certs.server_key)}}
    write_config(gw.config_path, cfg)
    gw.proc.send_signal(1)  # SIGHUP
    url = f"https://localhost:{gw.admin_port}/metrics"

    def over_tls():
        r = curl("--cacert", certs.ca, url)
        return r.returncode == 0 and b'apigw_tls_certificate_expiry_timestamp_seconds{use="admin"' in r.stdout

    assert wait_until(over_tls, timeout=5), gw.log()
    assert curl(f"http://127.0.0.1:{gw.admin_port}/metrics").returncode != 0


def test_a_listener_certificate_rotated_by_a_reload_under_load_fails_no_request(gateway, upstream, certs, tmp_path):
    live = tmp_path / "live"
    live.mkdir()
    shutil.copy(certs.server, live / "server.pem")
    shutil.copy(certs.server_key, live / "server.key")
    up = upstream("u", default=Fixed(200, b"ok"))
    cfg = gateway_config([route("r", "/*rest", "u")], {"u": up},
                         server={"tls": {"cert": str(live / "server.pem"), "key": str(live / "server.key")}})
    gw = gateway(cfg)
    context = client_context(certs)
    first = ssl.PEM_cert_to_DER_cert(certs.server.read_text())
    second = ssl.PEM_cert_to_DER_cert(certs.server2.read_text())
    failures, seen, done = [], set(), threading.Event()

    def load():
        while not done.is_set():
            try:
                status, _, _, der = https_get(gw.port, context, "/load")
                seen.add(der)
                if status != "HTTP/1.1 200 OK":
                    failures.append(status)
            except (OSError, ssl.SSLError) as error:
                failures.append(repr(error))

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    assert wait_until(lambda: first in seen, timeout=5)
    shutil.copy(certs.server2, live / "server.pem")
    shutil.copy(certs.server2_key, live / "server.key")
    gw.proc.send_signal(1)  # SIGHUP
    # New connections present the new certificate once the workers switched.
    assert wait_until(lambda: second in seen, timeout=5), gw.log()
    time.sleep(0.3)
    done.set()
    for t in threads:
        t.join(timeout=10)
    assert failures == [], failures[:5]
    assert seen == {first, second}
