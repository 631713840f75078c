"""The deployment files under config/: the systemd units pass systemd's own checks, and the NGINX front example
is valid and really carries requests to apigw with the client's address and request id."""

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from apigw_harness import HOST, free_port, gateway_config, route, stop_process, wait_for_port
from rawhttp import Client
from recording_upstream import Fixed

CONFIG = Path(__file__).resolve().parents[2] / "config"


def test_systemd_units_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: scripts/setup.sh installs systemd"
    binary = os.environ["APIGW_BIN"]
    service = (CONFIG / "apigw.service").read_text().replace("/usr/local/bin/apigw", binary)
    (tmp_path / "apigw.service").write_text(service)
    shutil.copy(CONFIG / "apigw.socket", tmp_path / "apigw.socket")
    run = subprocess.run([analyze, "verify", str(tmp_path / "apigw.service"), str(tmp_path / "apigw.socket")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and not run.stderr.strip(), run.stderr
    for needed in ("Type=notify", "ExecStartPre=" + binary + " -t -c", "ExecReload=/bin/kill -HUP $MAINPID",
                   "NoNewPrivileges=yes", "ProtectSystem=strict", "DynamicUser=yes", "LimitNOFILE=",
                   "Restart=on-failure", "WatchdogSec="):
        assert needed in service, needed
    # The socket unit listens where the example config does.
    socket_unit = (CONFIG / "apigw.socket").read_text()
    example = (CONFIG / "apigw.example.yaml").read_text()
    listen = re.search(r"^ListenStream=(\S+)", socket_unit, re.M).group(1)
    assert re.search(rf"^\s+listen: {re.escape(listen)}\b", example, re.M), listen


@pytest.fixture
def nginx_front(tmp_path):
    """Starts NGINX with config/nginx-apigw.conf in front of an apigw port; yields (start(apigw_port) -> port)."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    procs = []

    def start(apigw_port: int) -> int:
        port = free_port()
        site = (CONFIG / "nginx-apigw.conf").read_text()
        site = site.replace("server 127.0.0.1:8080", f"server 127.0.0.1:{apigw_port}")
        site = re.sub(r"^\s*listen 80;", f"    listen {HOST}:{port};", site, flags=re.M)
        (tmp_path / "site.conf").write_text(site)
        (tmp_path / "nginx.conf").write_text(f"""
daemon off;
worker_processes 1;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    include {tmp_path}/site.conf;
}}
""")
        check = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                               capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        proc = subprocess.Popen([nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        wait_for_port(port, proc=proc)
        return port

    yield start
    for proc in procs:
        stop_process(proc, signal.SIGQUIT)


def test_nginx_front_example_proxies_to_apigw(gateway, upstream, nginx_front):
    up = upstream("api", default=Fixed(200, b"ok"))
    gw = gateway(gateway_config([route("users", "/users/:id", "api")], {"api": up},
                                server={"trusted_proxies": ["127.0.0.1/32"]}))
    front = nginx_front(gw.port)
    with Client(front) as c:
        for i in range(3):
            r = c.request("GET", f"/users/{i}", headers=[("Host", "api.example.com"),
                                                         ("X-Request-Id", f"req-{i}-abcdef")])
            assert r.status == 200 and r.body == b"ok", r
            assert r.header("X-Apigw-Route") == "users"
            assert r.header("X-Request-Id") == f"req-{i}-abcdef"
    seen = up.last()
    # The client as NGINX saw it (believed, NGINX being a trusted proxy), then NGINX itself as apigw's peer.
    assert seen.header("X-Forwarded-For") == "127.0.0.1, 127.0.0.1"
    assert seen.header("X-Real-IP") == "127.0.0.1"
    assert seen.header("X-Forwarded-Host") == "api.example.com"
    # NGINX kept its connection to apigw alive across the requests.
    assert up.connections_accepted == 1
