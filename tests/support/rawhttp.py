"""A small HTTP/1.1 client over raw sockets, for end-to-end tests of apigw.

It sends exactly the bytes a test gives it and parses responses strictly (Content-Length, chunked and
close-delimited bodies), so a test sees what the gateway really sent. Only ever talks to 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

HOST = "127.0.0.1"
DEFAULT_TIMEOUT = 10.0
MAX_HEAD_BYTES = 1 << 20


class ProtocolError(Exception):
    """The peer sent something that is not valid HTTP/1.1 framing."""


class ConnectionClosed(Exception):
    """The peer closed (FIN or RST) before sending a single byte of a response."""


class TruncatedResponse(Exception):
    """The peer closed after part of a response; `.response` holds what was received."""

    def __init__(self, message: str, response: "Response"):
        super().__init__(message)
        self.response = response


def header_values(headers: list[tuple[str, str]], name: str) -> list[str]:
    lname = name.lower()
    return [v for n, v in headers if n.lower() == lname]


def connection_tokens(headers: list[tuple[str, str]]) -> set[str]:
    tokens = set()
    for v in header_values(headers, "Connection"):
        tokens.update(t.strip().lower() for t in v.split(",") if t.strip())
    return tokens


class HeaderAccess:
    """Header look-ups for a message holding `headers` as a list of (name, value), case-insensitively."""

    headers: list[tuple[str, str]]

    def header(self, name: str) -> Optional[str]:
        values = header_values(self.headers, name)
        return values[0] if values else None

    def header_all(self, name: str) -> list[str]:
        return header_values(self.headers, name)

    def has_header(self, name: str) -> bool:
        return bool(header_values(self.headers, name))


@dataclass
class Response(HeaderAccess):
    version: str = ""
    status: int = 0
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    body_len: int = 0          # counts bytes also when a sink consumed them
    chunked: bool = False
    raw_head: bytes = b""

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def wants_close(self) -> bool:
        return "close" in connection_tokens(self.headers)

    def __repr__(self) -> str:  # short, for assertion messages
        body = self.body[:300]
        return f"<Response {self.status} {self.reason!r} headers={self.headers!r} body={body!r}>"


class HttpReader:
    """Buffered reader of HTTP messages on one socket; keeps leftover bytes for pipelined responses."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = bytearray()
        self.eof = False

    def _fill(self) -> bool:
        if self.eof:
            return False
        try:
            data = self.sock.recv(256 * 1024)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def read_head(self, limit: int = MAX_HEAD_BYTES) -> Optional[bytes]:
        """Bytes up to and including the blank line; None on a close before any byte."""
        while True:
            idx = self.buf.find(b"\r\n\r\n")
            if idx >= 0:
                head = bytes(self.buf[: idx + 4])
                del self.buf[: idx + 4]
                return head
            if len(self.buf) > limit:
                raise ProtocolError("response head too large")
            if not self._fill():
                if not self.buf:
                    return None
                raise ProtocolError(f"connection closed inside a response head: {bytes(self.buf[:200])!r}")

    def read_line(self) -> Optional[bytes]:
        while True:
            idx = self.buf.find(b"\r\n")
            if idx >= 0:
                line = bytes(self.buf[:idx])
                del self.buf[: idx + 2]
                return line
            if len(self.buf) > 64 * 1024:
                raise ProtocolError("line too long")
            if not self._fill():
                return None

    def read_some(self, max_bytes: int) -> bytes:
        if not self.buf and not self._fill():
            return b""
        data = bytes(self.buf[:max_bytes])
        del self.buf[: len(data)]
        return data

    def read_response(self, method: str = "GET",
                      sink: Optional[Callable[[bytes], None]] = None,
                      keep_body_limit: Optional[int] = None) -> Response:
        """Reads one final response (1xx interim responses other than 101 are skipped).

        `sink` receives body pieces as they arrive (for large bodies); the body is then not kept unless
        keep_body_limit allows. Raises ConnectionClosed, TruncatedResponse or ProtocolError.
        """
        while True:
            head = self.read_head()
            if head is None:
                raise ConnectionClosed("connection closed before a response")
            resp = parse_response_head(head)
            if 100 <= resp.status < 200 and resp.status != 101:
                continue
            break
        body = bytearray()
        keep_all = sink is None

        def take(data: bytes) -> None:
            resp.body_len += len(data)
            if sink is not None:
                sink(data)
            if keep_all or (keep_body_limit is not None and len(body) < keep_body_limit):
                body.extend(data)

        def truncated(why: str):
            resp.body = bytes(body)
            return TruncatedResponse(why, resp)

        no_body = (method.upper() == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200)
        te = [t.strip().lower() for v in resp.header_all("Transfer-Encoding") for t in v.split(",") if t.strip()]
        cls = resp.header_all("Content-Length")
        if no_body:
            pass
        elif te:
            if te[-1] != "chunked":
                raise ProtocolError(f"response Transfer-Encoding not ending in chunked: {te}")
            resp.chunked = True
            while True:
                line = self.read_line()
                if line is None:
                    raise truncated("closed inside chunked body (size line)")
                size_text = line.split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise ProtocolError(f"bad chunk size line {line!r}")
                if size == 0:
                    while True:  # trailers
                        t = self.read_line()
                        if t is None:
                            raise truncated("closed inside trailers")
                        if t == b"":
                            break
                        resp.headers.append(tuple(x.strip() for x in t.decode("latin-1").split(":", 1)))
                    break
                remaining = size
                while remaining:
                    if not self.buf and not self._fill():
                        raise truncated("closed inside a chunk")
                    piece = bytes(self.buf[:remaining])
                    del self.buf[: len(piece)]
                    remaining -= len(piece)
                    take(piece)
                crlf = self.read_line()
                if crlf is None:
                    raise truncated("closed after chunk data")
                if crlf != b"":
                    raise ProtocolError(f"chunk data not followed by CRLF: {crlf[:50]!r}")
        elif cls:
            if len(set(v.strip() for v in cls)) != 1:
                raise ProtocolError(f"conflicting Content-Length values {cls}")
            remaining = int(cls[0])
            while remaining:
                if not self.buf and not self._fill():
                    raise truncated(f"closed with {remaining} body bytes missing")
                piece = bytes(self.buf[:remaining])
                del self.buf[: len(piece)]
                remaining -= len(piece)
                take(piece)
        else:
            # Close-delimited body (only valid without Content-Length and Transfer-Encoding).
            while True:
                if self.buf:
                    piece = bytes(self.buf)
                    self.buf.clear()
                    take(piece)
                if not self._fill():
                    break
        resp.body = bytes(body)
        return resp


def parse_response_head(head: bytes) -> Response:
    text = head.decode("latin-1")
    lines = text[:-4].split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"bad status line {lines[0]!r}")
    resp = Response(version=parts[0], status=int(parts[1]), reason=parts[2] if len(parts) > 2 else "",
                    raw_head=head)
    for line in lines[1:]:
        if ":" not in line or line[:1] in (" ", "\t"):
            raise ProtocolError(f"bad response header line {line!r}")
        name, value = line.split(":", 1)
        if name != name.strip() or not name:
            raise ProtocolError(f"bad response header name {name!r}")
        resp.headers.append((name, value.strip(" \t")))
    return resp


def connect(port: int, timeout: float = DEFAULT_TIMEOUT) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def build_request(method: str, target: str, headers: Iterable[tuple[str, str]] = (),
                  body: Optional[bytes] = None, host: Optional[str] = "127.0.0.1",
                  version: str = "HTTP/1.1") -> bytes:
    """Request bytes. Adds Host (unless host is None or given) and Content-Length for a body."""
    headers = list(headers)
    names = {n.lower() for n, _ in headers}
    if host is not None and "host" not in names:
        headers.insert(0, ("Host", host))
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        headers.append(("Content-Length", str(len(body))))
    out = f"{method} {target} {version}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers) + "\r\n"
    return out.encode("latin-1") + (body or b"")


def chunked(pieces: Iterable[bytes], trailers: Iterable[tuple[str, str]] = ()) -> bytes:
    out = bytearray()
    for p in pieces:
        if p:
            out += f"{len(p):x}\r\n".encode() + p + b"\r\n"
    out += b"0\r\n" + "".join(f"{n}: {v}\r\n" for n, v in trailers).encode("latin-1") + b"\r\n"
    return bytes(out)


class Client:
    """One client connection, kept alive across requests (a raw socket + HttpReader)."""

    def __init__(self, port: int, timeout: float = DEFAULT_TIMEOUT):
        self.port = port
        self.sock = connect(port, timeout)
        self.reader = HttpReader(self.sock)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, method: str, target: str, headers: Iterable[tuple[str, str]] = (),
                body: Optional[bytes] = None, **kw) -> Response:
        self.send(build_request(method, target, headers, body))
        return self.reader.read_response(method, **kw)

    def read_response(self, method: str = "GET", **kw) -> Response:
        return self.reader.read_response(method, **kw)

    def wait_closed(self, timeout: float = 3.0) -> bool:
        """True when the server closes within `timeout` (data still sent before the close is dropped)."""
        self.reader.buf.clear()
        return wait_closed(self.sock, timeout)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def request(port: int, method: str, target: str, headers: Iterable[tuple[str, str]] = (),
            body: Optional[bytes] = None, timeout: float = DEFAULT_TIMEOUT) -> Response:
    """One request on a fresh connection."""
    with Client(port, timeout) as c:
        return c.request(method, target, headers, body)


def send_raw(port: int, data: bytes, timeout: float = DEFAULT_TIMEOUT, method: str = "GET") -> Response:
    """Sends raw bytes on a fresh connection and reads one response."""
    with Client(port, timeout) as c:
        c.send(data)
        return c.read_response(method)


def wait_closed(sock: socket.socket, timeout: float = 3.0) -> bool:
    """Reads and discards until the peer closes (FIN or RST): True; False if still open after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        if not data:
            return True


def read_all_until_close(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """Everything the peer sends until it closes; (data, closed_within_timeout)."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(data), False
        sock.settimeout(left)
        try:
            piece = sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return bytes(data), False
        except ConnectionResetError:
            return bytes(data), True
        if not piece:
            return bytes(data), True
        data += piece


class StreamingExchange:
    """Sends a request body from an iterable in a background thread while the caller reads the response.

    Full duplex, so neither side can deadlock on full socket buffers however the gateway schedules its
    reads and writes.
    """

    def __init__(self, port: int, head: bytes, body_pieces: Iterable[bytes], timeout: float = 60.0):
        self.client = Client(port, timeout)
        self.head = head
        self.pieces = body_pieces
        self.sent = 0
        self.send_error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._send, daemon=True)

    def _send(self) -> None:
        try:
            self.client.send(self.head)
            for p in self.pieces:
                self.client.send(p)
                self.sent += len(p)
        except BaseException as e:  # reported by the test if it matters
            self.send_error = e

    def run(self, method: str = "POST", sink=None, keep_body_limit=None) -> Response:
        self.thread.start()
        try:
            return self.client.read_response(method, sink=sink, keep_body_limit=keep_body_limit)
        finally:
            self.thread.join(timeout=60)

    def close(self) -> None:
        self.client.close()


class Sha256Sink:
    """A body sink that hashes and counts what it is given, with an optional pause after some bytes."""

    def __init__(self, pause_after: Optional[int] = None, pause_seconds: float = 0.0):
        self.h = hashlib.sha256()
        self.count = 0
        self.pause_after = pause_after
        self.pause_seconds = pause_seconds

    def __call__(self, data: bytes) -> None:
        before = self.count
        self.h.update(data)
        self.count += len(data)
        if self.pause_after is not None and before < self.pause_after <= self.count:
            time.sleep(self.pause_seconds)

    def hexdigest(self) -> str:
        return self.h.hexdigest()
