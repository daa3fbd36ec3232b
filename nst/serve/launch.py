"""`nst serve` as a child process on the loopback address: started, waited for, killed, restarted.

For whatever supervises a server from outside it: the contract tests, the load test, a host's own checks.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port nothing listens on now (the kernel's choice)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class ServerProcess:
    """One `python -m nst serve` on 127.0.0.1 with its data folder, log file and arguments."""

    def __init__(self, data: Path, token: str | None = None, args: tuple = (), port: int | None = None) -> None:
        self.data, self.token, self.args = Path(data), token, tuple(str(a) for a in args)
        self.port = port or free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log = self.data.parent / f"{self.data.name}-server.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 180.0) -> ServerProcess:
        """Start it and return once /healthz answers; the log's tail is in the error when it does not."""
        env = dict(os.environ)
        env.pop("NST_TOKEN", None)
        if self.token:
            env["NST_TOKEN"] = self.token
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nst serve exited with {self.proc.returncode}: {self.tail()}")
            if self.healthy():
                return self
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"nst serve did not answer within {timeout:.0f} s: {self.tail()}")

    def command(self) -> list[str]:
        """The command line that starts it."""
        serve = ["serve", "--port", str(self.port), "--data", str(self.data), *self.args]
        return [sys.executable, "-m", "nst", *serve]

    def healthy(self) -> bool:
        request = urllib.request.Request(self.url + "/healthz", headers=self.headers())
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def tail(self, lines: int = 15) -> str:
        try:
            return " | ".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("the server has not been started")
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM and wait for the graceful shutdown; SIGKILL when it takes too long."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
