"""The server's settings: limits, workers, where jobs live, and the start-up checks on them."""

from __future__ import annotations

import ipaddress
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from nst.engine.errors import NstError


def cores() -> int:
    """CPU cores this process may run on (a container's or taskset's share, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_data_dir() -> Path:
    """The platform's user data folder for nst, where jobs are kept by default."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("nst")) / "serve"


def default_workers() -> int:
    """One transfer at a time per two cores, so concurrent jobs never oversubscribe the CPU."""
    return max(1, cores() // 2)


@dataclass(frozen=True)
class ServeConfig:
    """Everything `nst serve` and `create_app` take; the CLI's flags are these fields."""

    data: Path = field(default_factory=default_data_dir)
    token: str | None = None
    workers: int = field(default_factory=default_workers)
    max_upload_mb: float = 20.0  # a whole request: content, styles and options
    max_megapixels: float = 40.0  # per uploaded image, read from its header before decoding
    max_size: int = 1024  # longest side of a result
    max_iterations: int = 2000  # evaluations of a whole transfer, all scales together
    max_styles: int = 4
    queue: int = 16  # jobs waiting (not running) before new ones get 429
    keep_hours: float = 24.0  # finished results (and cancelled records) are removed after this
    upload_seconds: float = 60.0  # the longest a request's body may take to arrive: a stalled one holds a place
    device: str = "cpu"

    @property
    def threads(self) -> int:
        """Threads of each worker's transfer: the cores shared out between the workers."""
        return max(1, cores() // self.workers)

    def checked(self) -> ServeConfig:
        """The same settings after checks that make a bad start-up one line."""
        for name in ("workers", "max_size", "max_iterations", "max_styles", "queue"):
            if getattr(self, name) < 1:
                raise NstError(f"--{name.replace('_', '-')} {getattr(self, name)}: give at least 1")
        for name in ("max_upload_mb", "max_megapixels", "keep_hours", "upload_seconds"):
            if not 0 < getattr(self, name) < math.inf:
                raise NstError(f"--{name.replace('_', '-')} {getattr(self, name)}: give a finite positive number")
        return self


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token: anyone who can reach it could run work."""
    if not token and not is_loopback(host):
        raise NstError(
            f"--host {host} is reachable from other machines; set --token (or NST_TOKEN) so every request "
            "needs it, or bind 127.0.0.1"
        )
