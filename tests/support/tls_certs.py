"""Test certificates, made with the `openssl` command for each test session (never committed).

`make_certs(directory)` writes a small PKI and returns the paths:
- `ca` / `ca_key`: the test CA every good certificate chains to;
- `server` / `server_key`: for `localhost`, `users.test` and 127.0.0.1, issued by the CA;
- `wrong_name`: issued by the CA for `wrong.test` only;
- `expired`: issued by the CA for `localhost` and 127.0.0.1, expired yesterday;
- `untrusted`: for `localhost` and 127.0.0.1, issued by another CA that no test trusts;
- `client` / `client_key`: a client certificate (clientAuth) issued by the CA, CN `apigw-client`;
- `client2` / `client2_key`: another one, CN `apigw-client-2`, for rotation tests;
- `server2` / `server2_key`: a second server certificate, for rotation tests.
Keys are P-256, unencrypted.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Certs:
    dir: Path
    ca: Path
    ca_key: Path
    server: Path
    server_key: Path
    server2: Path
    server2_key: Path
    wrong_name: Path
    wrong_name_key: Path
    expired: Path
    expired_key: Path
    untrusted: Path
    untrusted_key: Path
    client: Path
    client_key: Path
    client2: Path
    client2_key: Path


def _run(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {done.stderr}")


def _key_and_csr(d: Path, name: str, cn: str) -> None:
    _run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{name}.key",
         "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)


def _issue(d: Path, name: str, ca: str, extensions: str, days: int = 30) -> None:
    (d / f"{name}.ext").write_text(extensions + "\n")
    _run("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
         "-out", f"{name}.pem", "-days", str(days), "-extfile", f"{name}.ext", cwd=d)


def _self_signed_ca(d: Path, name: str, cn: str) -> None:
    _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{name}.key",
         "-out", f"{name}.pem", "-subj", f"/CN={cn}", "-days", "30", cwd=d)


SERVER_EXT = ("subjectAltName=DNS:localhost,DNS:users.test,IP:127.0.0.1\n"
              "extendedKeyUsage=serverAuth")


def make_certs(directory: Path) -> Certs:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    _self_signed_ca(d, "ca", "apigw test CA")
    _self_signed_ca(d, "other-ca", "a CA nobody trusts")
    for name, cn in (("server", "localhost"), ("server2", "localhost"), ("wrong", "wrong.test"),
                     ("expired", "localhost"), ("untrusted", "localhost"), ("client", "apigw-client"),
                     ("client2", "apigw-client-2")):
        _key_and_csr(d, name, cn)
    _issue(d, "server", "ca", SERVER_EXT)
    _issue(d, "server2", "ca", SERVER_EXT)
    _issue(d, "wrong", "ca", "subjectAltName=DNS:wrong.test\nextendedKeyUsage=serverAuth")
    _issue(d, "expired", "ca", SERVER_EXT, days=-1)
    _issue(d, "untrusted", "other-ca", SERVER_EXT)
    _issue(d, "client", "ca", "extendedKeyUsage=clientAuth")
    _issue(d, "client2", "ca", "extendedKeyUsage=clientAuth")
    return Certs(dir=d, ca=d / "ca.pem", ca_key=d / "ca.key", server=d / "server.pem", server_key=d / "server.key",
                 server2=d / "server2.pem", server2_key=d / "server2.key", wrong_name=d / "wrong.pem",
                 wrong_name_key=d / "wrong.key", expired=d / "expired.pem", expired_key=d / "expired.key",
                 untrusted=d / "untrusted.pem", untrusted_key=d / "untrusted.key", client=d / "client.pem",
                 client_key=d / "client.key", client2=d / "client2.pem", client2_key=d / "client2.key")
