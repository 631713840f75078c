"""The access log: one line per request (request id, method, path, status, route) to a file or stdout;
none when off."""

from apigw_harness import gateway_config, route, wait_until
from rawhttp import Client


def lines_with(text: str, needle: str) -> list[str]:
    return [l for l in text.splitlines() if needle in l]


def make(gateway, upstream, access):
    up = upstream("api")
    return gateway(gateway_config([route("user_route", "/users/:id", "api", methods=["GET"])], {"api": up},
                                  log={"access": access, "level": "info"})), up


def do_requests(gw):
    with Client(gw.port) as c:
        assert c.request("GET", "/users/17?q=1", [("X-Request-Id", "acc-ok-1")]).status == 200
        assert c.request("GET", "/nowhere", [("X-Request-Id", "acc-404-2")]).status == 404
        assert c.request("DELETE", "/users/17", [("X-Request-Id", "acc-405-3")]).status == 405


def check_lines(text: str):
    ok = lines_with(text, "acc-ok-1")
    assert len(ok) == 1, f"expected one access line for acc-ok-1, got {ok}"
    for field in ["GET", "/users/17", "200", "user_route"]:
        assert field in ok[0], f"{field!r} missing from access line {ok[0]!r}"
    assert ok[0].split()[-2] == "-", ok  # the upstream answered: no error code
    assert ok[0].split()[-1] == "-", ok  # no tracing section: no trace id
    nf = lines_with(text, "acc-404-2")
    assert len(nf) == 1 and "/nowhere" in nf[0] and "404" in nf[0], nf
    assert nf[0].split()[-2] == "not_found", nf  # apigw's own answer has its error code
    na = lines_with(text, "acc-405-3")
    assert len(na) == 1 and "DELETE" in na[0] and "405" in na[0], na
    assert na[0].split()[-2] == "method_not_allowed", na


def test_access_log_to_file(gateway, upstream, tmp_path):
    path = tmp_path / "access.log"
    gw, up = make(gateway, upstream, str(path))
    do_requests(gw)

    def read():
        return path.read_text(errors="replace") if path.exists() else ""

    if not wait_until(lambda: "acc-405-3" in read(), timeout=5):
        gw.stop()  # a buffered log must at least be complete after a clean shutdown
    check_lines(read())
    assert not lines_with(gw.log(), "acc-ok-1"), "access line also written to stdout"


def test_access_log_to_stdout(gateway, upstream):
    gw, up = make(gateway, upstream, "stdout")
    do_requests(gw)
    if not gw.wait_log("acc-405-3", timeout=5):
        gw.stop()
    check_lines(gw.log())


def test_access_log_off(gateway, upstream, tmp_path):
    gw, up = make(gateway, upstream, "off")
    do_requests(gw)
    assert len(up.recorded()) == 1
    gw.stop()
    for rid in ["acc-ok-1", "acc-404-2", "acc-405-3"]:
        assert rid not in gw.log(), f"{rid} logged with log.access: off"
    assert not (gw.workdir / "off").exists(), "log.access: off wrote a file named 'off'"
