"""Real memcached processes for apigw's end-to-end tests, a small text-protocol client to look inside them, and
memc_ketama (tests/tools), libmemcached's own client configured as the legacy clients of a shared pool are.

Every server listens on a free 127.0.0.1 port, TCP only (`-U 0`), and is stopped by its own PID (SIGKILL, then
wait); nothing is ever stopped by name.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import time
from typing import Optional, Sequence, Union
from urllib.parse import unquote_to_bytes

from apigw_harness import HOST, executable_from_env
from server_process import ServerProcess

IO_TIMEOUT = 5.0


class MemcachedError(RuntimeError):
    """memcached answered ERROR, CLIENT_ERROR or SERVER_ERROR, or something this client does not understand."""


class MemcachedServer(ServerProcess):
    """One memcached on 127.0.0.1. `args` are extra memcached options (e.g. ["-I", "1m"] for a 1 MiB item limit).
    get/set/delete/stats open a short connection per call, so they work across stop()/start(). A stop loses every
    item, as a crash would."""

    name = "memcached"

    def __init__(self, port: Optional[int] = None, args: Sequence[str] = (), start: bool = True,
                 start_timeout: float = 10.0, tls: Optional[tuple] = None):
        """With `tls=(cert, key)` the server speaks only TLS (`-Z`), and this client does too."""
        super().__init__(port, args, start_timeout)
        self.tls = tls
        if start:
            self.start()

    def command(self) -> list[str]:
        argv = ["memcached", "-l", HOST, "-p", str(self.port), "-U", "0", "-t", "1", "-m", "64"]
        if os.geteuid() == 0:
            argv += ["-u", "root"]  # memcached refuses to run as root without -u
        if self.tls:
            argv += ["-Z", "-o", f"ssl_chain_cert={self.tls[0]},ssl_key={self.tls[1]}"]
        return argv + self.args

    def _wrap(self, s: socket.socket) -> socket.socket:
        """The harness's own view of a TLS server: encrypted, not verified (apigw's side is what tests verify)."""
        if not self.tls:
            return s
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context.wrap_socket(s)

    def answers(self, s: socket.socket) -> bool:
        s = self._wrap(s)
        s.sendall(b"version\r\n")
        return s.recv(64).startswith(b"VERSION")

    def start(self, stderr=subprocess.PIPE) -> "MemcachedServer":
        return super().start(stderr)

    def startup_report(self) -> str:
        if self.proc is None or self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read().decode(errors="replace")

    def stopped(self) -> None:
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()

    # --- the text protocol ----------------------------------------------------------------------------------

    def _exchange(self, request: bytes, done) -> bytes:
        """Sends `request` on a fresh connection and reads until `done(reply so far)` holds."""
        with self._wrap(socket.create_connection((HOST, self.port), timeout=IO_TIMEOUT)) as s:
            s.sendall(request)
            reply = b""
            while not done(reply):
                chunk = s.recv(65536)
                if not chunk:
                    raise MemcachedError(f"{self.address} closed the connection after {reply[:80]!r}")
                reply += chunk
            if reply.startswith((b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR")):
                raise MemcachedError(f"{self.address}: {reply.strip().decode(errors='replace')}")
            return reply

    @staticmethod
    def _line_done(reply: bytes) -> bool:
        return reply.endswith(b"\r\n")

    @staticmethod
    def _check_key(key: str) -> bytes:
        raw = key.encode()
        if not 0 < len(raw) <= 250 or any(b <= 0x20 or b == 0x7F for b in raw):
            raise ValueError(f"not a memcached key: {key!r}")
        return raw

    def get(self, key: str) -> Optional[bytes]:
        """The value stored under `key`, or None."""
        found = self.item(key)
        return None if found is None else found[0]

    def item(self, key: str) -> Optional[tuple[bytes, int]]:
        """(value, client flags) stored under `key`, or None."""
        def done(reply: bytes) -> bool:
            if reply.startswith((b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR")):
                return reply.endswith(b"\r\n")
            return reply.endswith(b"END\r\n") and (reply == b"END\r\n" or len(reply) >= _value_end(reply))

        reply = self._exchange(b"get " + self._check_key(key) + b"\r\n", done)
        if reply == b"END\r\n":
            return None
        header, _, rest = reply.partition(b"\r\n")
        fields = header.split()
        size = int(fields[3])
        return rest[:size], int(fields[2])

    def set(self, key: str, value: bytes, ttl: int = 0, flags: int = 0) -> None:
        """Stores `value` (bytes) under `key`; `ttl` seconds (0: no expiry), client `flags`."""
        request = b"set %s %d %d %d\r\n%s\r\n" % (self._check_key(key), flags, ttl, len(value), value)
        reply = self._exchange(request, self._line_done)
        if reply != b"STORED\r\n":
            raise MemcachedError(f"{self.address}: set {key}: {reply.strip().decode(errors='replace')}")

    def delete(self, key: str) -> bool:
        """True when the key existed."""
        reply = self._exchange(b"delete " + self._check_key(key) + b"\r\n", self._line_done)
        if reply not in (b"DELETED\r\n", b"NOT_FOUND\r\n"):
            raise MemcachedError(f"{self.address}: delete {key}: {reply.strip().decode(errors='replace')}")
        return reply == b"DELETED\r\n"

    def stats(self, group: str = "") -> dict[str, str]:
        """`stats [group]` as a dict of strings (e.g. stats()["curr_items"], stats("settings")["item_size_max"])."""
        request = b"stats" + (b" " + group.encode() if group else b"") + b"\r\n"
        reply = self._exchange(request, lambda r: r.endswith(b"END\r\n") or r.startswith(b"ERROR"))
        result = {}
        for line in reply.decode(errors="replace").split("\r\n"):
            fields = line.split(" ", 2)
            if len(fields) == 3 and fields[0] == "STAT":
                result[fields[1]] = fields[2]
        return result

    def curr_items(self) -> int:
        """Items the server holds now (`stats` curr_items; expired items count until memcached reclaims them)."""
        return int(self.stats()["curr_items"])

    def metadump(self) -> list[dict[str, Union[str, int]]]:
        """Every item the server holds, from `lru_crawler metadump all` (memcached has no other way to list keys):
        dicts with "key" (decoded), "exp" (Unix time, -1 for no expiry) and "size". One crawl may miss an item that
        memcached is moving between its LRU queues at that moment, so this crawls again (for up to half a second)
        while it finds fewer items than `curr_items` counts; expired items that memcached has not reclaimed yet
        count there but are not listed."""
        best: list[dict[str, Union[str, int]]] = []
        for _ in range(25):
            found = self._metadump_once()
            if found is not None:
                if len(found) >= len(best):
                    best = found
                if len(best) >= self.curr_items():
                    break
            time.sleep(0.02)
        return best

    def _metadump_once(self) -> Optional[list[dict[str, Union[str, int]]]]:
        reply = self._exchange(b"lru_crawler metadump all\r\n",
                               lambda r: r.endswith(b"END\r\n") or (r.startswith(b"BUSY") and r.endswith(b"\r\n")))
        if reply.startswith(b"BUSY"):  # another crawl is still running
            return None
        items = []
        for line in reply[: -len(b"END\r\n")].split(b"\n"):
            fields = dict(f.split(b"=", 1) for f in line.split() if b"=" in f)
            if b"key" not in fields:
                continue
            items.append({"key": unquote_to_bytes(fields[b"key"]).decode(errors="surrogateescape"),
                          "exp": int(fields.get(b"exp", b"-1")), "size": int(fields.get(b"size", b"0"))})
        return items

    def keys(self) -> list[str]:
        """The keys of every item the server holds (see metadump), sorted."""
        return sorted(item["key"] for item in self.metadump())


# --- memc_ketama: libmemcached's own client, as legacy clients of a pool are configured ------------------------

def memc_ketama_bin() -> str:
    """The memc_ketama helper (tests/tools/memc_ketama.cpp) from $MEMC_KETAMA_BIN."""
    return executable_from_env("MEMC_KETAMA_BIN")


def memc_ketama(servers: Sequence[Union["MemcachedServer", str]], *args: str, input: Optional[bytes] = None,
                timeout: float = 20.0) -> subprocess.CompletedProcess:
    """Runs `memc_ketama --servers A,B,... args...` (servers in this order, as a libmemcached client with
    MEMCACHED_BEHAVIOR_KETAMA lists them). Exit status 0: done, 1: a miss, 2: an error. stdout is bytes."""
    listed = ",".join(s.address if isinstance(s, MemcachedServer) else str(s) for s in servers)
    return subprocess.run([memc_ketama_bin(), "--servers", listed, *args], input=input, capture_output=True,
                          timeout=timeout)


def _value_end(reply: bytes) -> int:
    """The length of a complete `VALUE <key> <flags> <bytes>\\r\\n<data>\\r\\nEND\\r\\n` reply, from its header."""
    header, sep, _ = reply.partition(b"\r\n")
    if not sep:
        return len(reply) + 1
    size = int(header.split()[3])
    return len(header) + 2 + size + 2 + 5
