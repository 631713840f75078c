"""The command line: -t config checks with positioned errors, --version, --help, a missing config, and a
config using every documented field being accepted and served."""

import re
import textwrap

from apigw_harness import Apigw, check_config, free_port, run_apigw, write_config
from rawhttp import request

GOOD = textwrap.dedent("""\
    server:
      listen: "127.0.0.1:{port}"
      workers: 2
      trusted_proxies: ["10.0.0.0/8", "127.0.0.1/32", "::1/128"]
      limits:
        max_header_bytes: 16KiB
        max_uri_bytes: 4KiB
        max_body_bytes: 1MiB
        header_timeout: 5s
        idle_timeout: 750ms
      debug_headers: true
    log:
      access: stdout
      level: info
    upstreams:
      users:
        endpoints: ["127.0.0.1:{up_port}"]
        balance: round_robin
        connect_timeout: 250ms
        timeout: 2s
        max_connections: 8
        retries:
          attempts: 1
    routes:
      - name: users
        match:
          path: /v1/users/:id
          methods: [GET, POST]
          host: api.example.test
        upstream: users
        rewrite:
          strip_prefix: /v1
      - name: files
        match:
          path: /files/*rest
        upstream: users
    """)


def test_check_good_config_exits_0(tmp_path):
    path = write_config(tmp_path / "good.yaml", GOOD.format(port=free_port(), up_port=free_port()))
    rc, out = check_config(path)
    assert rc == 0, out


def test_check_unknown_key_reports_file_line_column(tmp_path):
    path = write_config(tmp_path / "bad.yaml", textwrap.dedent("""\
        server:
          listen: "127.0.0.1:8080"
          bogus_key: 1
        upstreams:
          u:
            endpoints: ["127.0.0.1:9000"]
        routes:
          - name: r
            match:
              path: /
            upstream: u
        """))
    r = run_apigw(["-t", "-c", str(path)])
    assert r.rc == 1, r
    lines = [l for l in r.stderr.splitlines() if "bad.yaml:3:" in l]
    assert lines, f"no 'bad.yaml:3:' position in stderr: {r.stderr!r}"
    assert re.search(r"bad\.yaml:3:\d+: .*bogus_key", lines[0]), lines


def test_check_bad_duration_points_at_its_line(tmp_path):
    path = write_config(tmp_path / "bad.yaml", textwrap.dedent("""\
        server:
          listen: "127.0.0.1:8080"
        upstreams:
          u:
            endpoints: ["127.0.0.1:9000"]
            timeout: 5 parsecs
        routes:
          - name: r
            match:
              path: /
            upstream: u
        """))
    r = run_apigw(["-t", "-c", str(path)])
    assert r.rc == 1, r
    assert re.search(r"bad\.yaml:6:\d+: ", r.stderr), r.stderr


def test_check_route_to_unknown_upstream_fails(tmp_path):
    path = write_config(tmp_path / "bad.yaml", textwrap.dedent("""\
        server:
          listen: "127.0.0.1:8080"
        upstreams:
          u:
            endpoints: ["127.0.0.1:9000"]
        routes:
          - name: r
            match:
              path: /
            upstream: nowhere
        """))
    r = run_apigw(["-t", "-c", str(path)])
    assert r.rc == 1, r
    assert re.search(r"bad\.yaml:\d+:\d+: .*nowhere", r.stderr), r.stderr


def test_check_reports_every_error(tmp_path):
    path = write_config(tmp_path / "bad.yaml", textwrap.dedent("""\
        server:
          listen: "127.0.0.1:8080"
          bogus_key: 1
        upstreams:
          u:
            endpoints: ["127.0.0.1:9000"]
            timeout: 5 parsecs
        routes:
          - name: r
            match:
              path: /
            upstream: nowhere
        """))
    r = run_apigw(["-t", "-c", str(path)])
    assert r.rc == 1, r
    for line in (3, 7, 12):
        assert re.search(rf"bad\.yaml:{line}:\d+: ", r.stderr), f"no error for line {line}: {r.stderr!r}"


def test_check_yaml_syntax_error_fails_with_position(tmp_path):
    path = write_config(tmp_path / "bad.yaml", "server:\n  listen: [unclosed\nroutes: {\n")
    r = run_apigw(["-t", "-c", str(path)])
    assert r.rc == 1, r
    assert re.search(r"bad\.yaml:\d+:\d+: ", r.stderr), r.stderr


def test_check_does_not_start_serving(tmp_path):
    port = free_port()
    path = write_config(tmp_path / "good.yaml", GOOD.format(port=port, up_port=free_port()))
    rc, out = check_config(path)
    assert rc == 0, out
    import socket
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "-t left something listening"


def test_version():
    r = run_apigw(["--version"])
    assert r.rc == 0, r
    assert re.search(r"apigw\S*\s+v?\d+\.\d+(\.\d+)?", r.output), r.output


def test_help_mentions_options():
    r = run_apigw(["--help"])
    assert r.rc == 0, r
    assert "-c" in r.output and "-t" in r.output, r.output


def test_missing_config_file_fails_clearly(tmp_path):
    missing = tmp_path / "missing.yaml"
    r = run_apigw(["-c", str(missing)], timeout=30)
    assert r.rc != 0, r
    assert "missing.yaml" in r.output, r.output


def test_full_schema_config_serves(tmp_path, gateway, upstream):
    up = upstream("users")
    port = free_port()
    gw = gateway(GOOD.format(port=port, up_port=up.port), port=port)
    r = request(gw.port, "GET", "/v1/users/7?x=1", [("Host", "api.example.test")])
    assert r.status == 200, r
    assert up.last().target == "/users/7?x=1"
    assert r.header("X-Apigw-Route") == "users"
    r = request(gw.port, "GET", "/files/a/b")
    assert r.status == 200 and up.last().target == "/files/a/b", r
