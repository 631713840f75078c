"""HTTPS upstreams (`upstreams.NAME.tls`): proxying with verification of the chain and of the name or address,
SNI, keep-alive and session resumption, mutual TLS, each handshake failure as a 502 `upstream_tls` with its
reason, health checks, the split's share and shadow copies over TLS, `apigw -t` on the files, and a client certificate rotated by a
reload under load with no failed request. The certificates are made with `openssl` for the test session."""

import shutil
import threading
import time

import pytest

from apigw_harness import assert_json_error, check_config, free_port, gateway_config, route, wait_until, \
    write_config
from rawhttp import Client, request
from recording_upstream import Fixed, tls_server_context
from tls_certs import make_certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


def https_upstream(upstream, certs, name="s", cert=None, key=None, client_ca=None, **kw):
    context = tls_server_context(cert or certs.server, key or certs.server_key, client_ca)
    return upstream(name, tls=context, **kw)


def tls_config(up, tls, endpoint=None, **extra):
    return {"endpoints": [endpoint or up.endpoint], "tls": tls, **extra}


def metric(gw, series):
    text = request(gw.admin_port, "GET", "/metrics", timeout=5).body.decode()
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def admin_json(gw, path):
    r = request(gw.admin_port, "GET", path, timeout=5)
    assert r.status == 200, r
    return r.json()


# --- proxying ----------------------------------------------------------------------------------------------

def test_requests_reach_an_https_upstream_verified_by_its_address_over_one_kept_connection(gateway, upstream, certs):
    up = https_upstream(upstream, certs, default=Fixed(200, b"secure"))
    gw = gateway(gateway_config([route("r", "/*rest", "s")], {"s": tls_config(up, {"ca": str(certs.ca)})}))
    with Client(gw.port) as c:
        for i in range(5):
            r = c.request("GET", f"/items/{i}")
            assert r.status == 200 and r.body == b"secure", r
    got = up.recorded()
    assert [q.path for q in got] == [f"/items/{i}" for i in range(5)]
    # An endpoint written as an IP literal sends no SNI; its certificate names 127.0.0.1.
    assert all(q.tls_sni is None for q in got)
    assert up.connections_accepted == 1
    assert metric(gw, 'apigw_tls_handshakes_total{upstream="s",result="full"}') == 1
    assert admin_json(gw, "/upstreams")["upstreams"]["s"]["tls"] is True
    # /config names the files, never their contents.
    config_view = request(gw.admin_port, "GET", "/config", timeout=5).body.decode()
    assert str(certs.ca) in config_view and "BEGIN" not in config_view, config_view


def test_the_endpoint_host_name_or_tls_sni_is_sent_and_verified(gateway, upstream, certs):
    up = https_upstream(upstream, certs)
    by_name = tls_config(up, {"ca": str(certs.ca)}, endpoint=f"localhost:{up.port}")
    by_sni = tls_config(up, {"ca": str(certs.ca), "sni": "users.test"})
    gw = gateway(gateway_config([route("a", "/a", "named"), route("b", "/b", "sni")],
                                {"named": by_name, "sni": by_sni}))
    assert request(gw.port, "GET", "/a").status == 200
    assert request(gw.port, "GET", "/b").status == 200
    sent = {q.path: q.tls_sni for q in up.recorded()}
    assert sent == {"/a": "localhost", "/b": "users.test"}, sent


def test_new_connections_to_an_endpoint_resume_its_session(gateway, upstream, certs):
    # The upstream closes every connection after its answer, so each request needs a new handshake.
    up = https_upstream(upstream, certs, default=Fixed(200, b"x", headers=[("Connection", "close")]))
    gw = gateway(gateway_config([route("r", "/*rest", "s")], {"s": tls_config(up, {"ca": str(certs.ca)})},
                                server={"workers": 1}))
    for _ in range(4):
        assert request(gw.port, "GET", "/again").status == 200
    got = up.recorded()
    assert len(got) == 4 and up.connections_accepted == 4
    assert not got[0].tls_resumed
    assert all(q.tls_resumed for q in got[1:]), [q.tls_resumed for q in got]
    assert metric(gw, 'apigw_tls_handshakes_total{upstream="s",result="resumed"}') == 3


def test_mutual_tls_presents_the_client_certificate(gateway, upstream, certs):
    up = https_upstream(upstream, certs, client_ca=certs.ca)
    tls = {"ca": str(certs.ca), "cert": str(certs.client), "key": str(certs.client_key)}
    gw = gateway(gateway_config([route("r", "/*rest", "s")], {"s": tls_config(up, tls)}))
    assert request(gw.port, "GET", "/me").status == 200
    assert up.last().tls_client_cn == "apigw-client"
    assert metric(gw, 'apigw_tls_certificate_expiry_timestamp_seconds{use="upstream s",file="%s"}'
                  % certs.client) > time.time()


# --- failures ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("server_cert,reason", [
    ("untrusted", "unable to get local issuer certificate"),
    ("wrong_name", "hostname mismatch"),
    ("expired", "certificate has expired"),
])
def test_a_certificate_that_does_not_verify_answers_502_upstream_tls(gateway, upstream, certs, server_cert, reason):
    up = https_upstream(upstream, certs, cert=getattr(certs, server_cert), key=getattr(certs, server_cert + "_key"))
    tls = {"ca": str(certs.ca), "sni": "localhost"} if server_cert == "wrong_name" else {"ca": str(certs.ca)}
    gw = gateway(gateway_config([route("r", "/*rest", "s")], {"s": tls_config(up, tls)},
                                log={"access": "stdout"}))
    r = request(gw.port, "GET", "/x")
    doc = assert_json_error(r, 502, "upstream_tls")
    assert "certificate verify failed" in doc["message"] and reason in doc["message"], doc
    assert up.recorded() == []
    assert metric(gw, 'apigw_upstream_errors_total{upstream="s",kind="tls"}') >= 1
    assert metric(gw, 'apigw_tls_handshakes_total{upstream="s",result="failed"}') >= 1
    rid = r.header("X-Request-Id")
    # The access line's error code, before its last field (the trace id, "-" without tracing).
    assert wait_until(lambda: any(rid in line and line.split()[-2] == "upstream_tls"
                                  for line in gw.log().splitlines())), gw.log()
    assert f"upstream 's' endpoint {up.endpoint}: TLS handshake failed: certificate verify failed" in gw.log()


def test_an_upstream_that_requires_a_client_certificate_refuses_one_without_it(gateway, upstream, certs):
    up = https_upstream(upstream, certs, client_ca=certs.ca)
    gw = gateway(gateway_config([route("r", "/*rest", "s")], {"s": tls_config(up, {"ca": str(certs.ca)})}))
    r = request(gw.port, "GET", "/x")
    # TLS 1.3 reports the refusal with the first read after the handshake; either way nothing was forwarded.
    assert r.status == 502, r
    assert r.json()["error"] in ("upstream_tls", "bad_gateway"), r.json()
    assert up.recorded() == []


def test_verify_false_connects_to_any_certificate_and_is_warned_about(gateway, upstream, certs):
    up = https_upstream(upstream, certs, cert=certs.untrusted, key=certs.untrusted_key)
    gw = gateway(gateway_config([route("r", "/*rest", "s")], {"s": tls_config(up, {"verify": False})}))
    assert request(gw.port, "GET", "/x").status == 200
    assert "tls.verify is false" in gw.log()


def test_a_failed_handshake_is_retried_on_another_endpoint(gateway, upstream, certs):
    bad = https_upstream(upstream, certs, name="bad", cert=certs.untrusted, key=certs.untrusted_key)
    good = https_upstream(upstream, certs, name="good", default=Fixed(200, b"good"))
    cfg = {"endpoints": [bad.endpoint, good.endpoint], "tls": {"ca": str(certs.ca)}, "retries": {"attempts": 1},
           "passive_health": {"unhealthy_after": 0}}
    gw = gateway(gateway_config([route("r", "/*rest", "s")], {"s": cfg}, server={"workers": 1}))
    for _ in range(4):
        r = request(gw.port, "GET", "/x")
        assert r.status == 200 and r.body == b"good", r


# --- health checks and shadow ------------------------------------------------------------------------------

def test_health_checks_probe_an_https_upstream_over_tls(gateway, upstream, certs):
    up = https_upstream(upstream, certs)
    check = {"path": "/healthz", "interval": "100ms", "timeout": "500ms", "unhealthy_after": 1, "healthy_after": 1}
    gw = gateway(gateway_config([route("r", "/*rest", "s")],
                                {"s": tls_config(up, {"ca": str(certs.ca)}, health_check=check)}))
    assert wait_until(lambda: len(up.recorded("/healthz")) >= 2, timeout=5)
    state = admin_json(gw, "/upstreams")["upstreams"]["s"]
    assert state["endpoints"][0]["health_check"] == "passing", state


def test_the_split_serves_its_share_from_an_https_upstream(gateway, upstream, certs):
    old = upstream("old", default=Fixed(200, b"old"))
    new = https_upstream(upstream, certs, name="new", default=Fixed(200, b"new"))
    cfg = gateway_config([{**route("r", "/*rest", "old"), "split": {"upstream": "cloud", "percent": 100}}],
                         {"old": old, "cloud": tls_config(new, {"ca": str(certs.ca)})}, server={"workers": 1})
    cfg["migration"] = {"affinity": ["client_ip"]}
    gw = gateway(cfg)
    for _ in range(3):
        r = request(gw.port, "GET", "/orders")
        assert r.status == 200 and r.body == b"new", r
    assert len(new.recorded()) == 3 and old.recorded() == []
    assert new.connections_accepted == 1


def test_shadow_copies_go_to_an_https_upstream(gateway, upstream, certs):
    primary = upstream("p", default=Fixed(200, b"primary"))
    shadow = https_upstream(upstream, certs, name="shadow", default=Fixed(200, b"shadow"))
    cfg = gateway_config([{**route("r", "/*rest", "p"), "shadow": {"upstream": "cloud", "percent": 100}}],
                         {"p": primary, "cloud": tls_config(shadow, {"ca": str(certs.ca)})})
    cfg["migration"] = {"affinity": ["client_ip"]}
    gw = gateway(cfg)
    for _ in range(3):
        r = request(gw.port, "GET", "/orders")
        assert r.status == 200 and r.body == b"primary"
    assert wait_until(lambda: len(shadow.recorded()) == 3, timeout=5), shadow.events


# --- configuration -----------------------------------------------------------------------------------------

def config_with_tls(tmp_path, tls_yaml):
    text = ("server:\n  listen: 127.0.0.1:%d\nupstreams:\n  s:\n    endpoints: [\"127.0.0.1:%d\"]\n    tls:\n%s"
            "routes:\n  - name: r\n    match: { path: /*rest }\n    upstream: s\n"
            % (free_port(), free_port(), "".join("      " + line + "\n" for line in tls_yaml)))
    return write_config(tmp_path / "apigw.yaml", text)


@pytest.mark.parametrize("lines,needle", [
    (["ca: missing-ca.pem"], "cannot read"),
    (["cert: {client}", "key: {server_key}"], "does not match the certificate"),
    (["cert: {expired}", "key: {expired_key}"], "expired on"),
    (["cert: {client}"], "cert and key go together"),
    (["ca: {client_key}"], "holds no PEM certificate"),
    (["min_version: \"1.1\""], "not a TLS version"),
    (["sni: 127.0.0.1"], "is an IP address"),
    (["verify: maybe"], "verify"),
])
def test_check_reports_a_bad_tls_block_at_its_line(tmp_path, certs, lines, needle):
    names = {k: str(v) for k, v in vars(certs).items()}
    path = config_with_tls(tmp_path, [line.format(**names) for line in lines])
    rc, out = check_config(path)
    assert rc != 0, out
    assert f"{path}:" in out and needle in out, out
    assert "tls" in out, out


def test_check_accepts_a_good_tls_block_and_warns_about_verify_false(tmp_path, certs):
    path = config_with_tls(tmp_path, [f"ca: {certs.ca}", f"cert: {certs.client}", f"key: {certs.client_key}",
                                      "sni: users.test", "min_version: \"1.3\""])
    rc, out = check_config(path)
    assert rc == 0, out
    path = config_with_tls(tmp_path, ["verify: false"])
    rc, out = check_config(path)
    assert rc == 0 and "warning:" in out and "tls.verify is false" in out, out


# --- rotation ----------------------------------------------------------------------------------------------

def test_a_client_certificate_rotated_by_a_reload_under_load_fails_no_request(gateway, upstream, certs, tmp_path):
    live = tmp_path / "live"
    live.mkdir()
    shutil.copy(certs.client, live / "client.pem")
    shutil.copy(certs.client_key, live / "client.key")
    up = https_upstream(upstream, certs, client_ca=certs.ca, default=Fixed(200, b"ok"))
    tls = {"ca": str(certs.ca), "cert": str(live / "client.pem"), "key": str(live / "client.key")}
    gw = gateway(gateway_config([route("r", "/*rest", "s")], {"s": tls_config(up, tls)}))

    failures, done = [], threading.Event()

    def load():
        with Client(gw.port) as c:
            while not done.is_set():
                r = c.request("GET", "/load")
                if r.status != 200:
                    failures.append(r.status)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    shutil.copy(certs.client2, live / "client.pem")
    shutil.copy(certs.client2_key, live / "client.key")
    gw.proc.send_signal(1)  # SIGHUP
    assert wait_until(lambda: "reloaded" in gw.log(), timeout=5), gw.log()
    # The reload replaced the pools: the connections opened from now on present the new certificate.
    assert wait_until(lambda: up.last().tls_client_cn == "apigw-client-2", timeout=5)
    time.sleep(0.3)
    done.set()
    for t in threads:
        t.join(timeout=10)
    assert failures == [], failures
    assert {q.tls_client_cn for q in up.recorded()} == {"apigw-client", "apigw-client-2"}
