"""The edge from the same route table: `apigw edge-export` (worker, nginx, json) and `apigw route-test`.

The differential test sends the same 10,000+ requests (generated from the route table's own patterns, plus random
paths, methods and hosts) to the real gateway, to the exported worker module under Node.js and to NGINX running the
exported include file, and checks that all three choose the same site for every one of them.
"""

import hashlib
import json
import os
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from apigw_harness import HOST, free_port, run_apigw, stop_process, wait_for_port, write_config
from rawhttp import Client
from recording_upstream import Fixed

NODE = shutil.which("node") or shutil.which("nodejs")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
REPO = Path(__file__).resolve().parents[2]

# Every precedence rule: static over :param over *wildcard, explicit methods over any method, exact host over
# wildcard hosts (longest suffix first) over any host, and static text with characters NGINX and JavaScript
# would otherwise read as syntax.
ROUTES = """routes:
  - { name: users-me, match: { path: /users/me }, upstream: svc, site: cloud }
  - { name: users-get, match: { path: /users/:id, methods: [GET, HEAD] }, upstream: svc, site: cloud }
  - { name: users-any, match: { path: /users/:id }, upstream: svc }
  - { name: users-write, match: { path: /users/:id, methods: [PUT, PATCH] }, upstream: svc, site: cloud }
  - { name: users-orders, match: { path: /users/:id/orders/:order }, upstream: svc, site: cloud }
  - { name: users-orders-all, match: { path: /users/:id/orders }, upstream: svc }
  - { name: users-files, match: { path: /users/:id/files/*rest }, upstream: svc, site: cloud }
  - { name: users-me-files, match: { path: /users/me/files/*rest, methods: [GET] }, upstream: svc }
  - { name: static, match: { path: /static/*path }, upstream: svc, site: cloud }
  - { name: static-app, match: { path: /static/app.js }, upstream: svc }
  - { name: root, match: { path: / }, upstream: svc, site: cloud }
  - { name: post-forms, match: { path: /forms/*rest, methods: [POST] }, upstream: svc, site: cloud }
  - { name: api-v1, match: { path: /api/v1/*rest }, upstream: svc }
  - { name: api-v1-item, match: { path: /api/v1/items/:id }, upstream: svc, site: cloud }
  - { name: api-v1-items, match: { path: /api/v1/items/ }, upstream: svc, site: cloud }
  - { name: api-v2, match: { path: /api/v2/:kind/:id/:part }, upstream: svc, site: cloud }
  - { name: search, match: { path: /search }, upstream: svc, site: cloud }
  - { name: searches, match: { path: /searches }, upstream: svc }
  - { name: search-q, match: { path: /search/:q }, upstream: svc }
  - { name: payments, match: { path: /payments/:id, methods: [POST, DELETE] }, upstream: svc }
  - { name: dotted, match: { path: "/v1.0/a+b/:x" }, upstream: svc, site: cloud }
  - { name: odd-chars, match: { path: "/~user/$x;y=z/(1)" }, upstream: svc, site: cloud }
  - { name: api-host-users, match: { path: /users/:id, host: api.example.com }, upstream: svc }
  - { name: api-host-admin, match: { path: /admin/*rest, host: api.example.com }, upstream: svc, site: cloud }
  - { name: admin-root, match: { path: /, host: admin.example.com }, upstream: svc }
  - { name: admin-get, match: { path: /*rest, host: admin.example.com, methods: [GET] }, upstream: svc }
  - { name: wild-me, match: { path: /users/me, host: "*.example.com" }, upstream: svc }
  - { name: wild-tenant, match: { path: /tenant/:t, host: "*.example.com" }, upstream: svc, site: cloud }
  - { name: wild-eu-tenant, match: { path: /tenant/:t, host: "*.eu.example.com" }, upstream: svc }
  - { name: shop, match: { path: /*rest, host: "*.shop.test" }, upstream: svc, site: cloud }
"""


def edge_config(onprem: str, cloud: str, upstream: str, listen: str = "", admin: str = "") -> str:
    server = f"server: {{ listen: {listen}, workers: 1 }}\nadmin: {{ listen: {admin} }}\n" if listen else ""
    return (f"{server}edge:\n  sites: {{ onprem: \"{onprem}\", cloud: \"{cloud}\" }}\n  default: onprem\n"
            f"upstreams:\n  svc: {{ endpoints: [{upstream}] }}\n{ROUTES}")


def export(config: Path, fmt: str, *extra: str):
    return run_apigw(["edge-export", "-c", str(config), "--format", fmt, *extra])


def config_sha256(*files: Path) -> str:
    digest = hashlib.sha256()
    for path in files:
        data = path.read_bytes()
        digest.update(f"{len(data)}\n".encode() + data)
    return digest.hexdigest()


# --- edge-export --------------------------------------------------------------------------------------------------

def test_export_json_is_versioned_and_deterministic(tmp_path):
    config = write_config(tmp_path / "apigw.yaml", edge_config("https://onprem.example.com",
                                                                "https://cloud.example.com", "127.0.0.1:9"))
    first = export(config, "json")
    assert first.rc == 0, first.output
    table = json.loads(first.stdout)
    assert table["format"] == "apigw-edge-table" and table["format_version"] == 1
    assert table["config"] == "apigw.yaml"
    assert table["config_sha256"] == config_sha256(config)
    assert re.fullmatch(r"[0-9a-f]{16}", table["table_version"])
    assert table["generated_by"].startswith("apigw ")
    assert table["default"] == "onprem" and table["header"] == "X-Apigw-Site"
    assert table["sites"] == {"onprem": "https://onprem.example.com", "cloud": "https://cloud.example.com"}
    names = [r["name"] for r in table["routes"]]
    assert names[:3] == ["users-me", "users-get", "users-any"]
    assert table["routes"][2]["site"] == "onprem" and table["routes"][2]["at"] == "apigw.yaml:9:5"
    assert [t["kind"] for t in table["tables"]] == ["exact", "exact", "wildcard", "wildcard", "wildcard", "any"]
    # Same YAML, same bytes; every format.
    for fmt in ("json", "worker", "nginx"):
        assert export(config, fmt).stdout == export(config, fmt).stdout
    # A comment changes the config's digest, not the table's version.
    config.write_text("# edited\n" + config.read_text())
    again = json.loads(export(config, "json").stdout)
    assert again["config_sha256"] != table["config_sha256"]
    assert again["table_version"] == table["table_version"]


def test_export_writes_output_file_whole(tmp_path):
    config = write_config(tmp_path / "apigw.yaml", edge_config("https://a.example.com", "https://b.example.com",
                                                                "127.0.0.1:9"))
    out = tmp_path / "edge" / "worker.js"
    out.parent.mkdir()
    out.write_text("old")
    r = export(config, "worker", "-o", str(out))
    assert r.rc == 0, r.output
    assert r.stdout == ""
    version = json.loads(export(config, "json").stdout)["table_version"]
    assert f"wrote {out}" in r.stderr and version in r.stderr
    assert out.read_text() == export(config, "worker").stdout
    assert not (tmp_path / "edge" / "worker.js.tmp").exists()
    bad = export(config, "worker", "-o", str(tmp_path / "missing" / "worker.js"))
    assert bad.rc == 1 and "missing/worker.js" in bad.stderr, bad.output


def test_export_refuses_bad_input(tmp_path):
    plain = write_config(tmp_path / "plain.yaml", "upstreams:\n  svc: { endpoints: [127.0.0.1:9] }\n"
                                                  "routes:\n  - { name: a, match: { path: /a }, upstream: svc }\n")
    r = export(plain, "json")
    assert r.rc == 1 and "no edge section" in r.stderr and r.stdout == "", r.output
    config = write_config(tmp_path / "apigw.yaml", edge_config("https://a.example.com", "https://b.example.com",
                                                                "127.0.0.1:9"))
    r = export(config, "yaml")
    assert r.rc == 2 and "--format" in r.stderr and "worker|nginx|json" in r.stderr, r.output
    r = run_apigw(["edge-export", "--format", "json"])
    assert r.rc == 2 and "-c" in r.stderr, r.output
    # A bad edge section: the loader's file:line:column and reason, from edge-export and from -t alike.
    broken = write_config(tmp_path / "broken.yaml",
                          "edge:\n  sites: { onprem: https://a.example.com/v1 }\n  colour: blue\n"
                          "upstreams:\n  svc: { endpoints: [127.0.0.1:9] }\n"
                          "routes:\n  - { name: a, match: { path: /a }, upstream: svc, site: cloud }\n")
    for args in (["edge-export", "-c", str(broken), "--format", "nginx"], ["-t", "-c", str(broken)]):
        r = run_apigw(args)
        assert r.rc != 0, r.output
        assert re.search(r"broken\.yaml:2:\d+: .*must be an origin alone", r.output), r.output
        assert re.search(r"broken\.yaml:3:3: .*colour", r.output), r.output
        assert re.search(r"broken\.yaml:7:\d+: route 'a' site: 'cloud' is not in edge\.sites", r.output), r.output


def nginx_conf(tmp_path: Path, port: int, include: Path) -> Path:
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"""
daemon off;
worker_processes 1;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    include {include};
    server {{
        listen {HOST}:{port};
        location / {{
            proxy_pass $apigw_edge_pass;
            proxy_set_header X-Apigw-Site $apigw_edge_site;
            proxy_set_header Host $host;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
""")
    return conf


def test_nginx_include_passes_nginx_check(tmp_path):
    # NGINX resolves upstream names at load: names that resolve here.
    config = write_config(tmp_path / "apigw.yaml", edge_config("https://localhost", "http://[::1]:8080",
                                                               "127.0.0.1:9"))
    include = tmp_path / "apigw-edge.conf"
    r = export(config, "nginx", "-o", str(include))
    assert r.rc == 0, r.output
    text = include.read_text()
    assert text.startswith("# apigw edge routing, generated by apigw ")
    assert "upstream apigw_edge_cloud {\n    server [::1]:8080;" in text
    assert "    onprem https://apigw_edge_onprem;" in text
    assert "upstream apigw_edge_onprem {\n    server localhost:443;" in text
    assert "map $apigw_edge_site $apigw_edge_tls_name {\n    onprem localhost;\n    cloud ::1;\n}" in text
    check = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(nginx_conf(tmp_path, free_port(), include))],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr


# --- route-test ----------------------------------------------------------------------------------------------------

CASES = """
cases:
  - name: my profile is served by the cloud
    request: GET /users/me?fields=name
    expect: { route: users-me, site: cloud, upstream: svc, path: "/users/me?fields=name" }
  - request: DELETE /users/7
    expect: { route: users-any, site: onprem }
  - request: GET /nowhere/at/all
    host: other.test
    expect: { status: 404, site: onprem }
  - request: GET /payments/7
    expect: { status: 405 }
"""


def test_route_test_cases_pass(tmp_path):
    config = write_config(tmp_path / "apigw.yaml", edge_config("https://a.example.com", "https://b.example.com",
                                                                "127.0.0.1:9"))
    cases = tmp_path / "cases.yaml"
    cases.write_text(CASES)
    r = run_apigw(["route-test", "-c", str(config), str(cases)])
    assert r.rc == 0, r.output
    assert "route-test: 4 cases, 4 passed, 0 failed" in r.output


def test_route_test_failures_name_the_route_that_matched(tmp_path):
    config = write_config(tmp_path / "apigw.yaml", edge_config("https://a.example.com", "https://b.example.com",
                                                                "127.0.0.1:9"))
    cases = tmp_path / "cases.yaml"
    cases.write_text(CASES + """
  - name: the admin page is the cloud's
    request: GET /admin/x
    host: api.example.com
    expect: { route: api-host-users, site: onprem }
  - request: POST /static/app.js
    expect: { status: 404 }
""")
    r = run_apigw(["route-test", "-c", str(config), str(cases)])
    assert r.rc == 1, r.output
    lines = r.stdout.splitlines()
    assert (f"{cases}:14:5: the admin page is the cloud's: route: expected api-host-users, got route "
            "api-host-admin (apigw.yaml:30:5)") in lines, r.stdout
    assert (f"{cases}:14:5: the admin page is the cloud's: site: expected onprem, got cloud by route "
            "api-host-admin (apigw.yaml:30:5)") in lines, r.stdout
    assert (f"{cases}:18:5: POST /static/app.js: status: expected 404, got route static-app "
            "(apigw.yaml:16:5)") in lines, r.stdout
    assert "route-test: 6 cases, 4 passed, 2 failed" in r.output
    # A case file with an error is refused whole, with the error's position.
    cases.write_text("- request: GET /a\n  expect: { colour: red }\n")
    r = run_apigw(["route-test", "-c", str(config), str(cases)])
    assert r.rc == 1 and f"{cases}:2:13: case 1 expect: unknown key 'colour'" in r.output, r.output
    r = run_apigw(["route-test", "-c", str(config)])
    assert r.rc == 2 and "CASES.yaml" in r.stderr, r.output


def test_route_test_explain(tmp_path):
    config = write_config(tmp_path / "apigw.yaml", edge_config("https://a.example.com", "https://b.example.com",
                                                               "127.0.0.1:9"))
    r = run_apigw(["route-test", "-c", str(config), "--explain", "GET", "/users/42/files/a/b?x=1",
                   "--host", "API.example.com:443", "-H", "X-Device-Id: 5"])
    assert r.rc == 0, r.output
    assert "route     users-files (apigw.yaml:13:5): /users/:id/files/*rest" in r.stdout, r.stdout
    assert "params    id=42 rest=a/b" in r.stdout, r.stdout
    assert "path      /users/42/files/a/b?x=1 (sent upstream)" in r.stdout, r.stdout
    assert "site      cloud (https://b.example.com)" in r.stdout, r.stdout
    r = run_apigw(["route-test", "-c", str(config), "--explain", "PUT", "/payments/1"])
    assert r.rc == 0 and "405: no route for PUT on /payments/1; Allow: DELETE, POST" in r.stdout, r.output
    assert "site      onprem (https://a.example.com), the default site" in r.stdout, r.stdout
    r = run_apigw(["route-test", "-c", str(config), "--explain", "GET"])
    assert r.rc == 2, r.output


def test_example_cases_pass_against_example_config():
    """The route-test example shipped under tests/ (and quoted in the docs) passes against its config."""
    r = run_apigw(["route-test", "-c", str(REPO / "tests/data/edge/apigw.yaml"),
                   str(REPO / "tests/data/edge/route-tests.yaml")])
    assert r.rc == 0, r.output
    assert re.search(r"route-test: (\d+) cases, \1 passed, 0 failed", r.output), r.output


# --- the worker under Node.js -----------------------------------------------------------------------------------

# A minimal edge runtime: each HTTP request becomes a fetch Request handed to the worker's fetch(), and its
# Response is written back.
RUNTIME = r"""
import http from "node:http";
import { Readable } from "node:stream";
const worker = (await import(process.argv[2])).default;
const server = http.createServer(async (req, res) => {
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
  const init = { method: req.method, headers };
  if (req.method !== "GET" && req.method !== "HEAD") {
    init.body = Readable.toWeb(req);
    init.duplex = "half";
  }
  try {
    const response = await worker.fetch(new Request(`http://${req.headers.host}${req.url}`, init));
    const out = {};
    for (const [name, value] of response.headers) {
      if (!["content-length", "transfer-encoding", "connection", "keep-alive"].includes(name)) out[name] = value;
    }
    res.writeHead(response.status, out);
    if (response.body) for await (const chunk of response.body) res.write(chunk);
    res.end();
  } catch (error) {
    res.writeHead(502, { "content-type": "text/plain" });
    res.end(String(error && error.stack || error));
  }
});
server.listen(Number(process.argv[3]), "127.0.0.1", () => console.log("listening"));
"""


@pytest.fixture
def processes():
    """Started processes, stopped by PID at teardown."""
    procs = []
    yield procs
    for proc in procs:
        stop_process(proc)


def test_worker_forwards_requests_unchanged(tmp_path, upstream, processes):
    assert NODE, "node is missing: scripts/setup.sh installs nodejs"
    onprem = upstream("onprem", default=Fixed(200, b"from onprem"))
    cloud = upstream("cloud", default=Fixed(201, b"from cloud", headers=[("X-Answer", "yes")]))
    config = write_config(tmp_path / "apigw.yaml", edge_config(f"http://{onprem.endpoint}",
                                                               f"http://{cloud.endpoint}/", "127.0.0.1:9"))
    worker = tmp_path / "worker.mjs"
    assert export(config, "worker", "-o", str(worker)).rc == 0
    (tmp_path / "runtime.mjs").write_text(RUNTIME)
    port = free_port()
    proc = subprocess.Popen([NODE, str(tmp_path / "runtime.mjs"), str(worker), str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    processes.append(proc)
    wait_for_port(port, proc=proc)

    body = os.urandom(200_000)
    with Client(port) as c:
        r = c.request("POST", "/users/7/files/a/b%20c?x=1&y=%2F&x=2",
                      headers=[("Host", "api.example.com:8443"), ("X-Custom", "one"), ("X-Custom", "two"),
                               ("Content-Type", "application/octet-stream"), ("Authorization", "Bearer t0k")],
                      body=body)
        assert r.status == 201 and r.body == b"from cloud" and r.header("X-Answer") == "yes", r
        got = cloud.last()
        assert got.method == "POST"
        assert got.target == "/users/7/files/a/b%20c?x=1&y=%2F&x=2"
        assert got.body_len == len(body) and got.body_sha256 == hashlib.sha256(body).hexdigest()
        assert got.header("X-Custom") == "one, two"
        assert got.header("Authorization") == "Bearer t0k"
        assert got.header("Content-Type") == "application/octet-stream"
        assert got.header("X-Apigw-Site") == "cloud"
        assert got.header("X-Forwarded-Host") == "api.example.com:8443"
        assert got.header("X-Forwarded-Proto") == "http"
        assert got.header("Host") == cloud.endpoint

        # No route (apigw: 404) and no route for the method (apigw: 405): the default site.
        r = c.request("GET", "/nowhere?q=1", headers=[("Host", "other.test")])
        assert r.status == 200 and r.body == b"from onprem", r
        assert onprem.last().target == "/nowhere?q=1" and onprem.last().header("X-Apigw-Site") == "onprem"
        r = c.request("GET", "/payments/3", headers=[("Host", "other.test")])
        assert r.body == b"from onprem" and onprem.last().target == "/payments/3", r
        r = c.request("DELETE", "/payments/3", headers=[("Host", "other.test")])
        assert r.body == b"from onprem" and onprem.last().method == "DELETE", r
        # Hop-by-hop fields stay on the client's connection.
        r = c.request("GET", "/users/me", headers=[("Host", "x.example.com"), ("Connection", "keep-alive, X-Hop"),
                                                   ("X-Hop", "1"), ("X-Kept", "2")])
        assert r.status == 200 and r.body == b"from onprem", r
        seen = onprem.last()
        assert seen.target == "/users/me" and seen.header("X-Kept") == "2" and seen.header("X-Hop") is None


# --- the differential test ------------------------------------------------------------------------------------------

METHODS = ["GET"] * 6 + ["HEAD", "POST", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PURGE"]
HOSTS = ["api.example.com", "API.Example.COM", "api.example.com:8443", "api.example.com.", "admin.example.com",
         "x.example.com", "a.b.example.com", "example.com", "eu.example.com", "x.eu.example.com", "shop.test",
         "x.shop.test", "other.test", "127.0.0.1", "localhost:8080", "[::1]", "www.Shop.Test"]
SEGMENT_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-._~"
SPECIAL_SEGMENTS = ["me", "orders", "files", "items", "app.js", "%41b", "%2F", "a%20b", "a:b", "@x", "!$&'()*+,;=",
                    "v1.0", "a+b", "..x", ".x", "~user", "$x;y=z", "(1)", "users", "api", "v1", "v2", "tenant"]


def random_segment(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return rng.choice(SPECIAL_SEGMENTS)
    return "".join(rng.choice(SEGMENT_CHARS) for _ in range(rng.randint(1, 8)))


def instance(pattern: str, rng: random.Random) -> str:
    """A path the pattern matches (params and wildcards filled at random)."""
    out = []
    for segment in pattern.split("/")[1:]:
        if segment.startswith(":"):
            out.append(random_segment(rng))
        elif segment.startswith("*"):
            out.extend(random_segment(rng) for _ in range(rng.randint(0, 3)))
        else:
            out.append(segment)
    return "/" + "/".join(out)


def mutate(path: str, rng: random.Random) -> str:
    """A near miss: a path one edit away from a route's own."""
    kind = rng.randrange(8)
    if kind == 0:
        return path.rstrip("/") + "/"
    if kind == 1 and len(path) > 1:
        return path[:-1]
    if kind == 2:
        return path + "/" + random_segment(rng)
    if kind == 3:
        return path.upper()
    if kind == 4 and "/" in path[1:]:
        cut = path.index("/", 1)
        return path[:cut] + "/" + path[cut:]  # an empty segment
    if kind == 5 and "%" not in path:
        # Dot segments, which every router resolves before routing (only without other escapes: NGINX resolves
        # them on a decoded path).
        cut = path.rfind("/")
        return path[:cut] + "/" + rng.choice(["./", "zz/../", "%2e/", "q/%2E%2e/"]) + path[cut + 1:]
    if kind == 6:
        return path + "x"
    return path


def generate(routes: list[dict], count: int, seed: int = 20) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    patterns = [r["path"] for r in routes]
    requests = []
    while len(requests) < count:
        route = rng.choice(routes)
        roll = rng.random()
        if roll < 0.45:
            path = instance(route["path"], rng)
        elif roll < 0.8:
            path = mutate(instance(rng.choice(patterns), rng), rng)
        else:
            path = "/" + "/".join(random_segment(rng) for _ in range(rng.randint(0, 4)))
        if "//" in path and re.search(r"(^|/)(\.|%2e){1,2}(/|$)", path, re.I):
            continue  # NGINX merges slashes on the path it resolved; see docs/decisions.md
        if re.search(r"%(?![0-9A-Fa-f]{2})", path):
            continue  # a broken escape: NGINX answers 400 itself
        if route["host"] and rng.random() < 0.6:
            host = route["host"].replace("*", rng.choice(["x", "a.b", "EU", "x.eu"]))
            host = rng.choice([host, host.upper(), host + ":8080", host + "."])
        else:
            host = rng.choice(HOSTS)
        methods = route["methods"]
        method = rng.choice(methods) if methods and rng.random() < 0.5 else rng.choice(METHODS)
        if rng.random() < 0.25:
            path += "?" + rng.choice(["q=1", "x=/users/me", "a=%2e%2e&b", "", "users/me"])
        requests.append((method, host, path))
    return requests


DIFF_SCRIPT = r"""
import { readFileSync, writeFileSync } from "node:fs";
const worker = await import(process.argv[2]);
const requests = JSON.parse(readFileSync(process.argv[3], "utf8"));
const sites = [];
let sent = null;
globalThis.fetch = async (url, init) => {
  sent = { url, site: init.headers.get(worker.table.header) };
  return new Response(null, { status: 204 });
};
for (const [method, host, target] of requests) {
  sent = null;
  await worker.default.fetch(new Request(`http://${host}${target}`, { method }));
  const origin = worker.table.sites[sent.site];
  if (!sent.url.startsWith(origin + "/")) throw new Error(`${sent.url} is not on ${sent.site}'s origin ${origin}`);
  sites.push(sent.site);
}
writeFileSync(process.argv[4], JSON.stringify(sites));
"""


def responses(port: int, requests):
    """Each request's response, over one kept-alive connection at a time (a new one when the server closes)."""
    c = Client(port)
    try:
        for method, host, target in requests:
            r = c.request(method, target, headers=[("Host", host)])
            yield r
            if r.wants_close():
                c.close()
                c = Client(port)
    finally:
        c.close()


def site_of_gateway(gw_port: int, requests, route_sites: dict, default: str) -> list[str]:
    sites = []
    for request, r in zip(requests, responses(gw_port, requests)):
        name = r.header("X-Apigw-Route")
        if name is None:
            assert r.status in (404, 405), (request, r)
            sites.append(default)
        else:
            assert r.status == 200, (request, r)
            sites.append(route_sites[name])
    return sites


def site_of_nginx(port: int, requests, ups: dict) -> list[str]:
    sites = []
    for request, r in zip(requests, responses(port, requests)):
        assert r.status == 200, (request, r)
        sites.append(r.header("X-Upstream-Name"))
    for name, up in ups.items():
        assert all(req.header("X-Apigw-Site") == name for req in up.recorded())
    return sites


def test_gateway_worker_and_nginx_agree_on_every_site(tmp_path, gateway, upstream, processes):
    assert NODE, "node is missing: scripts/setup.sh installs nodejs"
    svc = upstream("svc", default=Fixed(200, b""))
    sites = {name: upstream(name, default=Fixed(200, b"")) for name in ("onprem", "cloud")}
    gw_port, admin_port = free_port(), free_port()
    text = edge_config(f"http://{sites['onprem'].endpoint}", f"http://{sites['cloud'].endpoint}", svc.endpoint,
                       listen=f"{HOST}:{gw_port}", admin=f"{HOST}:{admin_port}")
    config = write_config(tmp_path / "apigw.yaml", text)
    table = json.loads(export(config, "json").stdout)
    route_sites = {r["name"]: r["site"] for r in table["routes"]}
    routes = [{"path": r["path"], "host": r["host"], "methods": r["methods"]} for r in table["routes"]]
    requests = generate(routes, 10_500)
    assert len(set(requests)) > 6_000

    # 1. apigw itself.
    gw = gateway(text, port=gw_port)
    by_gateway = site_of_gateway(gw.port, requests, route_sites, table["default"])
    gw.stop()

    # 2. The worker module under Node.js (its fetch() handler, the outgoing fetch captured).
    worker = tmp_path / "worker.mjs"
    assert export(config, "worker", "-o", str(worker)).rc == 0
    (tmp_path / "diff.mjs").write_text(DIFF_SCRIPT)
    (tmp_path / "requests.json").write_text(json.dumps(requests))
    run = subprocess.run([NODE, str(tmp_path / "diff.mjs"), str(worker), str(tmp_path / "requests.json"),
                          str(tmp_path / "worker-sites.json")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    by_worker = json.loads((tmp_path / "worker-sites.json").read_text())

    # 3. NGINX with the exported include, proxying to one recording upstream per site.
    include = tmp_path / "apigw-edge.conf"
    assert export(config, "nginx", "-o", str(include)).rc == 0
    nginx_port = free_port()
    conf = nginx_conf(tmp_path, nginx_port, include)
    proc = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    processes.append(proc)
    wait_for_port(nginx_port, proc=proc)
    by_nginx = site_of_nginx(nginx_port, requests, sites)

    disagreements = [(request, a, w, n) for request, a, w, n in zip(requests, by_gateway, by_worker, by_nginx)
                     if not a == w == n]
    assert not disagreements, f"{len(disagreements)} of {len(requests)} disagree, e.g. {disagreements[:10]}"
    assert len(by_gateway) == len(by_worker) == len(by_nginx) == len(requests)
    # The requests cover both sites, each route, and the unrouted.
    assert {"onprem", "cloud"} <= set(by_gateway)
    assert len(sites["cloud"].recorded()) > 2_000 and len(sites["onprem"].recorded()) > 2_000
    assert len(svc.recorded()) < len(requests)  # some were 404 or 405 at the gateway
