"""One server per data folder: a lock file held for the server's lifetime.

Two servers on one folder would run the same jobs and wipe each other's uploads.  The lock is an advisory
`flock` on `<data>/serve.lock`: the kernel frees it when the process ends, however it ends, so a crash or
`kill -9` never leaves a stale lock to clear by hand.
"""

from __future__ import annotations

import os
from pathlib import Path

from nst.engine.errors import NstError

LOCK_NAME = "serve.lock"


class DataLock:
    """The exclusive hold of one server on its data folder; `release()` (or the process's end) frees it."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd: int | None = fd
        self.path = path

    @classmethod
    def acquire(cls, data: Path) -> DataLock:
        """Lock `data` for this process, or refuse in one line naming the process that holds it."""
        path = Path(data) / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(fd)
        except (BlockingIOError, PermissionError):  # held (POSIX says EAGAIN or EACCES; Windows EACCES)
            holder = _holder(fd)
            os.close(fd)
            raise NstError(
                f"--data {data} is in use by another nst serve{holder}; stop it, or give this one its own --data"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # for the refusal above: who holds it
        return cls(fd, path)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor frees the lock
            self.fd = None


def _lock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # not on POSIX: msvcrt locks a byte range the same way, freed when the process ends
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        return
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except (OSError, AttributeError, UnicodeDecodeError):
        return ""
    return f" (process {pid})" if pid.isdigit() else ""
