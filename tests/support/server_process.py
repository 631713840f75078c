"""A server process for the end-to-end tests (redis-server, memcached, ...): started on a 127.0.0.1 port and
waited for until it answers, stopped by its own PID (SIGKILL, then wait, as a crash would end it), paused and
resumed with SIGSTOP/SIGCONT. Nothing is ever stopped by name."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from typing import Callable, Optional, Sequence

from apigw_harness import HOST, free_port, wait_for_port


class ServerProcess:
    """Subclasses say how to start the server (`command()`), how to tell that it answers (`answers()`), and may
    act after it stopped (`stopped()`). `args` are extra options for the server."""

    name = "server"

    def __init__(self, port: Optional[int] = None, args: Sequence[str] = (), start_timeout: float = 10.0):
        self.port = port or free_port()
        self.args = [str(a) for a in args]
        self.start_timeout = start_timeout
        self.proc: Optional[subprocess.Popen] = None

    # --- for subclasses --------------------------------------------------------------------------------------

    def command(self) -> list[str]:
        raise NotImplementedError

    def answers(self, s: socket.socket) -> bool:
        raise NotImplementedError

    def prepare(self) -> None:
        """Runs before each start."""

    def stopped(self) -> None:
        """Runs after each stop."""

    def startup_report(self) -> str:
        """What to show when the server did not start (its log)."""
        return ""

    # --- lifetime ---------------------------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    @property
    def address(self) -> str:
        """"127.0.0.1:port", the way apigw's config lists servers."""
        return f"{HOST}:{self.port}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, stderr=subprocess.DEVNULL):
        """Starts the server (again, on the same port) and waits until it answers."""
        if self.alive():
            return self
        self.prepare()
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=stderr)
        probe: Callable[[socket.socket], bool] = self.answers
        try:
            wait_for_port(self.port, self.start_timeout, self.proc, probe=probe)
        except Exception as e:
            report = self.startup_report()
            self.stop()
            raise RuntimeError(f"{self.name} did not start on {self.port}: {e}\n{report}") from None
        return self

    def stop(self) -> None:
        """SIGKILL by PID (a paused server too), then wait. start() brings it back on the same port."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=10)
        self.stopped()

    def pause(self, timeout: float = 5.0) -> None:
        """SIGSTOP: connections stay open (new ones still complete in the kernel) but nothing is answered until
        resume(). Returns once every thread has stopped: a multi-threaded process stops only when one of its threads
        has run to take the signal, which a loaded machine can delay by milliseconds, and meanwhile another thread
        could still answer a request sent right after kill() returned."""
        os.kill(self.pid, signal.SIGSTOP)
        deadline = time.monotonic() + timeout
        while not self._all_threads_stopped():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} {self.pid} did not stop within {timeout}s of SIGSTOP")
            time.sleep(0.001)

    def _all_threads_stopped(self) -> bool:
        task_dir = f"/proc/{self.pid}/task"
        for tid in os.listdir(task_dir):
            try:
                with open(f"{task_dir}/{tid}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except (FileNotFoundError, ProcessLookupError):
                continue  # a thread that just exited
            if state not in ("T", "t"):
                return False
        return True

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def close(self) -> None:
        """The same as stop(): for `with`."""
        self.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.address}, pid={self.proc.pid if self.proc else None})"
