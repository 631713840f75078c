"""A recording HTTP/1.1 upstream server for apigw's end-to-end tests.

Raw sockets, one thread per connection, keep-alive, Content-Length and chunked request bodies. It records
every COMPLETE request it receives (a request cut short is never recorded) and answers by a behaviour set
per path: fixed, chunked, echo (streamed, spooled to a temp file so 50 MiB never sits in memory),
generated bodies, delays, resets, closes, hangs and garbage. Binds 127.0.0.1 only. With `tls=` (an
`ssl.SSLContext` from `tls_server_context`) it speaks HTTPS, and each recorded request says what the TLS
handshake of its connection carried: the SNI name, the client certificate's CN, whether the session was resumed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import socket
import ssl
import struct
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional, Union
from urllib.parse import urlsplit

from rawhttp import HeaderAccess, header_values

MAX_HEAD_BYTES = 1 << 20
BODY_KEEP_LIMIT = 1 << 20  # bodies above this are only counted and hashed

# --- the deterministic body pattern --------------------------------------------------------------------
# A prime period, so that a gateway duplicating or dropping power-of-two sized buffers changes the hash.
_PERIOD = 65521
_BLOCK = hashlib.shake_256(b"apigw test pattern").digest(_PERIOD)
_WIDE = _BLOCK * 6  # > 256 KiB + one period, so any piece up to 256 KiB is one slice


def pattern_bytes(offset: int, length: int) -> bytes:
    out = bytearray()
    while length:
        n = min(length, 256 * 1024)
        start = offset % _PERIOD
        out += _WIDE[start:start + n]
        offset += n
        length -= n
    return bytes(out)


def pattern_pieces(total: int, piece: int = 256 * 1024) -> Iterator[bytes]:
    offset = 0
    while offset < total:
        n = min(piece, total - offset)
        yield pattern_bytes(offset, n)
        offset += n


def pattern_sha256(total: int) -> str:
    h = hashlib.sha256()
    for p in pattern_pieces(total):
        h.update(p)
    return h.hexdigest()


# --- what was received ----------------------------------------------------------------------------------

@dataclass
class RecordedRequest(HeaderAccess):
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes            # the whole body, or its first BODY_KEEP_LIMIT bytes
    body_len: int
    body_sha256: str
    chunked: bool          # the request body came chunked
    conn_id: int           # 1-based counter of accepted connections
    client_port: int
    time: float = field(default_factory=time.monotonic)
    pipelined: bool = False  # its head had come with the bytes of an earlier request (HTTP/1.1 pipelining)
    tls_sni: Optional[str] = None        # the server name the client sent (HTTPS only)
    tls_client_cn: Optional[str] = None  # the CN of the client certificate, when one was presented
    tls_resumed: bool = False            # the connection's TLS session was resumed

    @property
    def path(self) -> str:
        return urlsplit(self.target).path if not self.target.startswith("/") else self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    def header_names_lower(self) -> set[str]:
        return {n.lower() for n, _ in self.headers}


class RequestError(Exception):
    pass


class PeerGone(Exception):
    pass


# --- behaviours -----------------------------------------------------------------------------------------

class Behaviour:
    """How the upstream answers one request. `respond` returns False to close the connection after it."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay  # seconds to wait after reading the request, before answering

    def respond(self, up: "Upstream", conn: "_Conn", req: RecordedRequest) -> bool:
        raise NotImplementedError


def _head(status: int, headers: list[tuple[str, str]], reason: str = "") -> bytes:
    reason = reason or _REASONS.get(status, "Status")
    return (f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers)
            + "\r\n").encode("latin-1")


_REASONS = {200: "OK", 201: "Created", 204: "No Content", 301: "Moved Permanently", 304: "Not Modified",
            400: "Bad Request", 404: "Not Found", 500: "Internal Server Error", 503: "Service Unavailable"}


def _has(headers, name):
    return any(n.lower() == name.lower() for n, _ in headers)


class Fixed(Behaviour):
    """A fixed response. Body framed by Content-Length, chunked (`chunks` or chunked=True) or by close."""

    def __init__(self, status: int = 200, body: bytes = b"", headers=(), delay: float = 0.0,
                 chunked: bool = False, chunks: Optional[list[bytes]] = None, close_delimited: bool = False,
                 close: bool = False, reason: str = ""):
        self.status, self.body, self.headers = status, body, list(headers)
        self.delay, self.chunked, self.chunks = delay, chunked or chunks is not None, chunks
        self.close_delimited, self.close, self.reason = close_delimited, close, reason

    def respond(self, up, conn, req):
        headers = list(self.headers)
        keep = req_keep_alive(req) and not self.close and not self.close_delimited
        bodyless = self.status in (204, 304) or 100 <= self.status < 200
        if not keep and not _has(headers, "Connection"):
            headers.append(("Connection", "close"))
        if bodyless:
            conn.send(conn.head(self.status, headers, self.reason))
            return keep
        if self.chunked:
            chunks = self.chunks if self.chunks is not None else [self.body]
            headers.append(("Transfer-Encoding", "chunked"))
            conn.send(conn.head(self.status, headers, self.reason))
            if req.method != "HEAD":
                for c in chunks:
                    if c:
                        conn.send(f"{len(c):x}\r\n".encode() + c + b"\r\n")
                conn.send(b"0\r\n\r\n")
            return keep
        if not self.close_delimited and not _has(headers, "Content-Length"):
            headers.append(("Content-Length", str(len(self.body))))
        conn.send(conn.head(self.status, headers, self.reason))
        if req.method != "HEAD":
            conn.send(self.body)
        return keep


class IdleClose(Behaviour):
    """Answers as `inner` does, keeping the connection alive, then closes it after `after` seconds of silence: an
    upstream whose keep-alive timeout ends while the gateway holds the connection idle."""

    def __init__(self, inner: Behaviour, after: float):
        super().__init__(inner.delay)
        self.inner, self.after = inner, after

    def respond(self, up, conn, req):
        if not self.inner.respond(up, conn, req):
            return False
        time.sleep(self.after)
        return False


class Generate(Behaviour):
    """A body of `size` pattern bytes (see pattern_bytes), streamed, Content-Length or chunked."""

    def __init__(self, size: int, chunked: bool = False, headers=(), delay: float = 0.0):
        self.size, self.chunked, self.headers, self.delay = size, chunked, list(headers), delay

    def respond(self, up, conn, req):
        headers = list(self.headers)
        headers.append(("Transfer-Encoding", "chunked") if self.chunked else ("Content-Length", str(self.size)))
        conn.send(conn.head(200, headers))
        if req.method == "HEAD":
            return req_keep_alive(req)
        for p in pattern_pieces(self.size):
            conn.send(f"{len(p):x}\r\n".encode() + p + b"\r\n" if self.chunked else p)
        if self.chunked:
            conn.send(b"0\r\n\r\n")
        return req_keep_alive(req)


class Echo(Behaviour):
    """Answers 200 with the request body, streamed back while it is read (see Upstream._echo)."""

    def __init__(self, headers=(), delay: float = 0.0):
        self.headers, self.delay = list(headers), delay


class Reset(Behaviour):
    """Reads the whole request (so it is recorded), then resets the connection (RST, SO_LINGER 0)."""

    def respond(self, up, conn, req):
        conn.reset()
        return False


class Close(Behaviour):
    """Reads the whole request, then closes the connection cleanly (FIN) without answering."""

    def respond(self, up, conn, req):
        conn.close()
        return False


class ResetMidBody(Behaviour):
    """Sends a head announcing `total` bytes (or chunked), `sent` bytes of pattern body, then `then`:
    "reset" (RST), "close" (FIN) or "hang" (nothing more until stopped)."""

    def __init__(self, total: int = 100_000, sent: int = 10_000, chunked: bool = False, then: str = "reset",
                 delay: float = 0.0):
        assert then in ("reset", "close", "hang")
        self.total, self.sent, self.chunked, self.then, self.delay = total, sent, chunked, then, delay

    def respond(self, up, conn, req):
        if self.chunked:
            conn.send(conn.head(200, [("Transfer-Encoding", "chunked")]))
            data = pattern_bytes(0, self.sent)
            conn.send(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        else:
            conn.send(conn.head(200, [("Content-Length", str(self.total))]))
            conn.send(pattern_bytes(0, self.sent))
        if self.then == "hang":
            conn.hang(up._stopping)
            return False
        time.sleep(0.05)  # let the gateway read the partial response before the reset
        conn.close() if self.then == "close" else conn.reset()
        return False


class Hang(Behaviour):
    """Reads the request, then never answers until the upstream is stopped or the peer closes."""

    def respond(self, up, conn, req):
        conn.hang(up._stopping)
        return False


class Garbage(Behaviour):
    """Answers with bytes that are not HTTP, then closes."""

    def __init__(self, data: bytes = b"this is not http at all\r\n\r\n\x00\x01\x02", delay: float = 0.0):
        self.data, self.delay = data, delay

    def respond(self, up, conn, req):
        conn.send(self.data)
        time.sleep(0.05)
        conn.close()
        return False


class Dynamic(Behaviour):
    """Calls fn(req) -> Behaviour for each request (e.g. to answer with something taken from the request)."""

    def __init__(self, fn: Callable[[RecordedRequest], Behaviour]):
        super().__init__()
        self.fn = fn

    def respond(self, up, conn, req):
        b = self.fn(req)
        if b.delay:
            up._stopping.wait(b.delay)
        return b.respond(up, conn, req)


def req_keep_alive(req: RecordedRequest) -> bool:
    tokens = {t.strip().lower() for v in req.header_all("Connection") for t in v.split(",")}
    if req.version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


# --- connection plumbing --------------------------------------------------------------------------------

class _Conn:
    def __init__(self, sock: socket.socket, conn_id: int, peer):
        self.sock, self.id, self.peer = sock, conn_id, peer
        self.buf = bytearray()
        self.closed = False
        self.lock = threading.Lock()
        self.tag: list[tuple[str, str]] = []  # headers added to every response head
        self.head_was_buffered = False  # the last head read had come with earlier bytes, no read needed
        self.tls_sni: Optional[str] = None
        self.tls_client_cn: Optional[str] = None
        self.tls_resumed = False

    def head(self, status: int, headers, reason: str = "") -> bytes:
        return _head(status, list(headers) + self.tag, reason)

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(256 * 1024)
        except OSError:
            data = b""
        if not data:
            return False
        self.buf += data
        return True

    def read_head(self) -> Optional[bytes]:
        self.head_was_buffered = True
        while True:
            idx = self.buf.find(b"\r\n\r\n")
            if idx >= 0:
                head = bytes(self.buf[: idx + 4])
                del self.buf[: idx + 4]
                return head
            self.head_was_buffered = False
            if len(self.buf) > MAX_HEAD_BYTES:
                raise RequestError("request head too large")
            if not self._fill():
                if self.buf:
                    raise PeerGone(f"closed inside a request head ({len(self.buf)} bytes)")
                return None

    def read_line(self) -> bytes:
        while True:
            idx = self.buf.find(b"\r\n")
            if idx >= 0:
                line = bytes(self.buf[:idx])
                del self.buf[: idx + 2]
                return line
            if len(self.buf) > 64 * 1024:
                raise RequestError("line too long")
            if not self._fill():
                raise PeerGone("closed inside a line")

    def read_upto(self, n: int) -> bytes:
        if not self.buf and not self._fill():
            raise PeerGone("closed inside a body")
        data = bytes(self.buf[:n])
        del self.buf[: len(data)]
        return data

    def send(self, data: bytes) -> None:
        with self.lock:
            self.sock.sendall(data)

    def unread(self) -> bool:
        """Whether request bytes have arrived that no request read yet (e.g. requests pipelined behind the one
        being answered)."""
        if self.buf:
            return True
        if self.closed:
            return False
        try:
            if isinstance(self.sock, ssl.SSLSocket):
                return self.sock.pending() > 0  # TLS has no peek at what the peer sent
            return bool(self.sock.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK))
        except OSError:
            return False

    def reset(self) -> None:
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass

    def linger(self, seconds: float = 1.0) -> bytes:
        """Closes as a server should with requests unread (RFC 9112, 9.6; NGINX's lingering_close): first only its
        sending side, then reads and drops what comes until the peer closes (or `seconds`), so that unread bytes do
        not turn the close into a reset that destroys the answers already sent. Returns the bytes never read as
        requests: the buffered ones and those dropped (at most MAX_HEAD_BYTES)."""
        dropped = bytearray(self.buf)
        self.buf.clear()
        try:
            self.sock.shutdown(socket.SHUT_WR)
            self.sock.settimeout(0.05)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                try:
                    data = self.sock.recv(65536)
                    if not data:
                        break
                    dropped += data[: max(0, MAX_HEAD_BYTES - len(dropped))]
                except socket.timeout:
                    continue
        except OSError:
            pass
        self.close()
        return bytes(dropped)

    def hang(self, stopping: threading.Event) -> None:
        # Keep reading (and discarding) so that a peer close ends the hang; otherwise wait for stop().
        self.sock.settimeout(0.2)
        while not stopping.is_set():
            try:
                if not self.sock.recv(65536):
                    return
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return


def parse_request_head(head: bytes):
    try:
        text = head.decode("latin-1")
    except Exception as e:  # pragma: no cover - latin-1 decodes everything
        raise RequestError(str(e))
    lines = text[:-4].split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[0].isalpha():
        raise RequestError(f"bad request line {lines[0]!r}")
    headers = []
    for line in lines[1:]:
        if ":" not in line or line[:1] in (" ", "\t") or "\n" in line or "\r" in line:
            raise RequestError(f"bad header line {line!r}")
        name, value = line.split(":", 1)
        if not name or name != name.strip():
            raise RequestError(f"bad header name {name!r}")
        headers.append((name, value.strip(" \t")))
    return parts[0], parts[1], parts[2], headers


# The SNI name of each handshake, by the client's port (the callback sees the connection before wrap_socket
# returns it).
_SNI_SEEN: dict[int, Optional[str]] = {}


def tls_server_context(cert, key, client_ca=None) -> ssl.SSLContext:
    """An HTTPS server's context for the recording upstream: `cert`/`key` files, and with `client_ca` a client
    certificate issued by it is required."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    if client_ca is not None:
        context.load_verify_locations(str(client_ca))
        context.verify_mode = ssl.CERT_REQUIRED

    def remember_sni(sock, server_name, _context):
        try:
            _SNI_SEEN[sock.getpeername()[1]] = server_name
        except OSError:
            pass

    context.sni_callback = remember_sni
    return context


class Upstream:
    """The recording upstream. `on(path, behaviour)` sets how a path is answered; `default` the rest."""

    def __init__(self, name: str = "", default: Optional[Behaviour] = None, tag_responses: bool = True,
                 tls: Optional[ssl.SSLContext] = None):
        self.name = name
        self.tls = tls
        self.tls_failures: list[str] = []  # handshakes that failed, with the reason Python's ssl gave
        self.default: Behaviour = default or Fixed(200, b"ok")
        self.routes: dict[str, Behaviour] = {}
        self.tag_responses = tag_responses and bool(name)
        self.requests: list[RecordedRequest] = []
        self.events: list[str] = []   # a short log of what happened, printed on test failure
        self.accepted = 0
        self.closed_unread = 0  # connections closed with request bytes never read (pipelined requests unanswered)
        self.left_unread: list[tuple[int, bytes]] = []  # (conn id, those bytes) for each of them
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: dict[int, _Conn] = {}
        self._tmpdir = tempfile.mkdtemp(prefix="apigw-upstream-")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"upstream-{self.port}", daemon=True)
        self._acceptor.start()

    # --- test API ---
    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def on(self, path: str, behaviour: Behaviour) -> "Upstream":
        self.routes[path] = behaviour
        return self

    @property
    def connections_accepted(self) -> int:
        with self._lock:
            return self.accepted

    def recorded(self, path: Optional[str] = None) -> list[RecordedRequest]:
        with self._lock:
            reqs = list(self.requests)
        return [r for r in reqs if path is None or r.path == path]

    def last(self) -> RecordedRequest:
        reqs = self.recorded()
        assert reqs, f"upstream {self.name or self.port} recorded no request"
        return reqs[-1]

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> list[RecordedRequest]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return list(self.requests)

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def stop(self) -> None:
        self._stopping.set()
        try:
            self.sock.close()
        except OSError:
            pass
        self._acceptor.join(timeout=5)
        with self._lock:
            conns = list(self._conns.values())
        for c in conns:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in list(self._threads):
            t.join(timeout=5)
        for c in conns:
            c.close()
        shutil.rmtree(self._tmpdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # --- internals ---
    def _event(self, text: str) -> None:
        with self._lock:
            if len(self.events) < 2000:
                self.events.append(f"{time.monotonic():.3f} {text}")

    def _record(self, req: RecordedRequest) -> None:
        with self._cond:
            self.requests.append(req)
            self._cond.notify_all()
        self._event(f"conn {req.conn_id}: recorded {req.method} {req.target} body={req.body_len}")

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                s, peer = self.sock.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            s.settimeout(None)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.accepted += 1
                conn = _Conn(s, self.accepted, peer)
                if self.tag_responses:
                    conn.tag = [("X-Upstream-Name", self.name)]
                self._conns[conn.id] = conn
            self._event(f"conn {conn.id}: accepted from port {peer[1]}")
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                self._threads = [x for x in self._threads if x.is_alive()]
                self._threads.append(t)
            t.start()

    def _behaviour(self, target: str) -> Behaviour:
        path = urlsplit(target).path if not target.startswith("/") else target.split("?", 1)[0]
        return self.routes.get(path, self.default)

    def _handshake(self, conn: _Conn) -> bool:
        try:
            conn.sock = self.tls.wrap_socket(conn.sock, server_side=True)
        except (ssl.SSLError, OSError) as e:
            with self._lock:
                self.tls_failures.append(str(e))
            self._event(f"conn {conn.id}: TLS handshake failed: {e}")
            try:
                conn.sock.close()
            except OSError:
                pass
            return False
        conn.tls_sni = _SNI_SEEN.pop(conn.peer[1], None)
        peer = conn.sock.getpeercert()
        if peer:
            conn.tls_client_cn = next((v for rdn in peer.get("subject", ()) for k, v in rdn if k == "commonName"),
                                      None)
        conn.tls_resumed = conn.sock.session_reused
        self._event(f"conn {conn.id}: TLS {conn.sock.version()} sni={conn.tls_sni} resumed={conn.tls_resumed}")
        return True

    def _serve(self, conn: _Conn) -> None:
        if self.tls is not None and not self._handshake(conn):
            return
        try:
            while not self._stopping.is_set():
                head = conn.read_head()
                if head is None:
                    self._event(f"conn {conn.id}: closed by peer")
                    return
                try:
                    method, target, version, headers = parse_request_head(head)
                    framing = self._framing(headers)
                except RequestError as e:
                    self._event(f"conn {conn.id}: BAD REQUEST {e}")
                    conn.send(_head(400, [("Content-Length", "0"), ("Connection", "close")]))
                    return
                behaviour = self._behaviour(target)
                if isinstance(behaviour, Echo):
                    keep = self._echo(conn, behaviour, method, target, version, headers, framing)
                else:
                    req = self._read_body(conn, method, target, version, headers, framing)
                    self._record(req)
                    if behaviour.delay:
                        self._stopping.wait(behaviour.delay)
                    if self._stopping.is_set():
                        return
                    keep = behaviour.respond(self, conn, req)
                if not keep or conn.closed:
                    return
        except PeerGone as e:
            self._event(f"conn {conn.id}: peer gone: {e}")
        except RequestError as e:
            self._event(f"conn {conn.id}: bad request: {e}")
        except OSError as e:
            self._event(f"conn {conn.id}: socket error: {e!r}")
        finally:
            unread = conn.unread()
            dropped = b""
            if unread:
                dropped = conn.linger()
            else:
                conn.close()
            with self._lock:
                self._conns.pop(conn.id, None)
                self.closed_unread += unread
                if unread:
                    self.left_unread.append((conn.id, dropped))
            if unread:
                self._event(f"conn {conn.id}: closed with {len(dropped)} request bytes unread")

    @staticmethod
    def _framing(headers):
        te = [t.strip().lower() for v in header_values(headers, "Transfer-Encoding") for t in v.split(",") if t.strip()]
        cl = [v.strip() for v in header_values(headers, "Content-Length")]
        if te and cl:
            raise RequestError("both Transfer-Encoding and Content-Length")
        if te:
            if te != ["chunked"]:
                raise RequestError(f"unsupported Transfer-Encoding {te}")
            return ("chunked", None)
        if cl:
            if len(set(cl)) != 1 or not cl[0].isdigit():
                raise RequestError(f"bad Content-Length {cl}")
            return ("length", int(cl[0]))
        return ("length", 0)

    def _body_pieces(self, conn: _Conn, framing) -> Iterator[bytes]:
        kind, n = framing
        if kind == "length":
            remaining = n
            while remaining:
                data = conn.read_upto(min(remaining, 256 * 1024))
                remaining -= len(data)
                yield data
            return
        while True:
            line = conn.read_line()
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
                if not size_text or size < 0:
                    raise ValueError
            except ValueError:
                raise RequestError(f"bad chunk size {line[:40]!r}")
            if size == 0:
                while conn.read_line() != b"":  # trailers
                    pass
                return
            remaining = size
            while remaining:
                data = conn.read_upto(min(remaining, 256 * 1024))
                remaining -= len(data)
                yield data
            if conn.read_line() != b"":
                raise RequestError("chunk not followed by CRLF")

    def _read_body(self, conn, method, target, version, headers, framing) -> RecordedRequest:
        h = hashlib.sha256()
        kept = bytearray()
        total = 0
        for piece in self._body_pieces(conn, framing):
            h.update(piece)
            total += len(piece)
            if len(kept) < BODY_KEEP_LIMIT:
                kept += piece[: BODY_KEEP_LIMIT - len(kept)]
        return RecordedRequest(method, target, version, headers, bytes(kept), total, h.hexdigest(),
                               framing[0] == "chunked", conn.id, conn.peer[1], pipelined=conn.head_was_buffered,
                               tls_sni=conn.tls_sni, tls_client_cn=conn.tls_client_cn,
                               tls_resumed=conn.tls_resumed)

    def _echo(self, conn, behaviour: Echo, method, target, version, headers, framing) -> bool:
        """Streams the request body back as it arrives, through a spool file so that the reader never
        waits on the writer: whatever order the gateway reads and writes in, nothing deadlocks."""
        if behaviour.delay:
            self._stopping.wait(behaviour.delay)
        spool = tempfile.TemporaryFile(dir=self._tmpdir, buffering=0)
        fd = spool.fileno()
        state = {"written": 0, "done": False, "failed": False, "send_error": None}
        cond = threading.Condition()
        keep = req_keep_alive(RecordedRequest(method, target, version, headers, b"", 0, "", False, 0, 0))
        is_chunked = framing[0] == "chunked"
        resp_headers = list(behaviour.headers) + [("X-Echo-Method", method), ("X-Echo-Target", target)]
        if is_chunked:
            resp_headers.append(("Transfer-Encoding", "chunked"))
        else:
            resp_headers.append(("Content-Length", str(framing[1])))
        if not keep:
            resp_headers.append(("Connection", "close"))

        def writer():
            try:
                conn.send(conn.head(200, resp_headers))
                offset = 0
                while True:
                    with cond:
                        while state["written"] <= offset and not state["done"] and not state["failed"]:
                            cond.wait(0.5)
                            if self._stopping.is_set():
                                return
                        avail, done, failed = state["written"], state["done"], state["failed"]
                    if failed:
                        return
                    while offset < avail:
                        data = os.pread(fd, min(256 * 1024, avail - offset), offset)
                        conn.send(f"{len(data):x}\r\n".encode() + data + b"\r\n" if is_chunked else data)
                        offset += len(data)
                    if done and offset >= avail:
                        if is_chunked:
                            conn.send(b"0\r\n\r\n")
                        return
            except OSError as e:
                state["send_error"] = e

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        h = hashlib.sha256()
        kept = bytearray()
        try:
            for piece in self._body_pieces(conn, framing):
                os.write(fd, piece)
                h.update(piece)
                if len(kept) < BODY_KEEP_LIMIT:
                    kept += piece[: BODY_KEEP_LIMIT - len(kept)]
                with cond:
                    state["written"] += len(piece)
                    cond.notify_all()
        except BaseException:
            with cond:
                state["failed"] = True
                cond.notify_all()
            t.join(timeout=5)
            spool.close()
            raise
        self._record(RecordedRequest(method, target, version, headers, bytes(kept), state["written"],
                                     h.hexdigest(), is_chunked, conn.id, conn.peer[1]))
        with cond:
            state["done"] = True
            cond.notify_all()
        t.join()
        spool.close()
        if state["send_error"] is not None:
            self._event(f"conn {conn.id}: echo send failed: {state['send_error']!r}")
            return False
        return keep


def serial(status=200, headers=(), delay=0.0):
    """An upstream behaviour answering every request with a JSON body that tells which request it was (`n`, counted
    from 1 per behaviour) and what it saw (target, X-User-Id, Accept-Language): a body from the cache is told apart
    from a fresh one. `headers` is a list, or a function of n giving one."""
    counter = itertools.count(1)
    lock = threading.Lock()

    def answer(req):
        with lock:
            n = next(counter)
        body = json.dumps({"n": n, "target": req.target, "user": req.header("X-User-Id"),
                           "lang": req.header("Accept-Language")}).encode()
        extra = headers(n) if callable(headers) else list(headers)
        return Fixed(status, body, [("Content-Type", "application/json")] + extra, delay=delay)

    return Dynamic(answer)
