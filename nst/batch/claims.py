"""Claims on shared work: processes working through one folder each take an item by creating its claim
file atomically (O_CREAT | O_EXCL), so no item is done twice; a claim whose process has died is taken over.

A claim holds the owner's pid, host and process start time (so a reused pid is not mistaken for the
owner) and a random token. Taking over a dead owner's claim goes through a second exclusive file, so two
processes that both find it dead cannot both take it.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from pathlib import Path

BREAK_TIMEOUT_S = 30.0  # a breaker file older than this was left by a process that died while holding it
UNWRITTEN_S = 10.0  # an empty or garbled claim this old was left by a process that died creating it


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid from the owner."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(owner: dict) -> bool:
    """Whether the claim's owner may still be running (a process on another host is assumed to be)."""
    if owner.get("host") != socket.gethostname():
        return True
    pid = int(owner.get("pid", 0))
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by another user
    started = _start_time(pid)
    return started is None or owner.get("started") in (None, started)


class Claim:
    """An item taken by this process; `release()` (or leaving the `with` block) gives it back."""

    def __init__(self, path: Path, token: str) -> None:
        self.path, self.token = path, token

    def release(self) -> None:
        if _read(self.path).get("token") == self.token:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _create(path: Path) -> Claim | None:
    """Create the claim file if nobody has; None when it exists."""
    token = secrets.token_hex(8)
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": _start_time(os.getpid()), "token": token}
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return None
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(owner))
    return Claim(path, token)


def owner_of(path: Path) -> dict | None:
    """The owner recorded in a live claim at `path`; None when there is no claim or its owner is gone."""
    owner = _read(path)
    if not owner:
        try:
            age = time.time() - path.stat().st_mtime
        except OSError:
            return None
        return {"pid": "?", "host": "?"} if age < UNWRITTEN_S else None
    return owner if _alive(owner) else None


def claim(path: str | os.PathLike) -> Claim | None:
    """Take the item whose claim file is `path`: a Claim, or None while another live process holds it."""
    path = Path(path)
    for _ in range(3):
        taken = _create(path)
        if taken is not None:
            return taken
        stale = _read(path)
        if owner_of(path) is not None:
            return None
        if not _break(path, stale.get("token")):
            return None
    return None


def _break(path: Path, token: str | None) -> bool:
    """Remove a dead owner's claim, unless it changed meanwhile; False when another process is at it."""
    breaker = path.with_name(path.name + ".break")
    try:
        fd = os.open(breaker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        try:
            if time.time() - breaker.stat().st_mtime > BREAK_TIMEOUT_S:
                breaker.unlink(missing_ok=True)
        except OSError:
            pass
        return False
    os.close(fd)
    try:
        if _read(path).get("token") == token and owner_of(path) is None:
            path.unlink(missing_ok=True)
    finally:
        breaker.unlink(missing_ok=True)
    return True
