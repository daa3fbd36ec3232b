"""Ctrl-C that is never lost: Python drops an exception raised inside a destructor (numba's compiler runs
some), so a KeyboardInterrupt that lands there would be printed as 'Exception ignored' and the run would go on;
and numba's dispatcher turns one that lands inside it into a SystemError, which would end the run in a traceback.
"""

from __future__ import annotations

import signal
import sys
from typing import NoReturn

import typer

INTERRUPTED = 130  # the exit status of a command stopped by Ctrl-C, as shells report a SIGINT death
GENERIC = "interrupted; files written before the interruption are kept, none is half-written"
_reported = False


class Interrupts:
    """While active, Ctrl-C raises KeyboardInterrupt as usual and is also remembered; called as a transfer
    callback, it raises a remembered one that a destructor swallowed."""

    def __init__(self) -> None:
        self.seen = False

    def __enter__(self) -> Interrupts:
        self._handler = signal.signal(signal.SIGINT, self._interrupt)
        self._hook, sys.unraisablehook = sys.unraisablehook, self._unraisable
        return self

    def __exit__(self, kind, error, traceback) -> None:
        signal.signal(signal.SIGINT, self._handler)
        sys.unraisablehook = self._hook
        if self.seen and error is not None and not isinstance(error, KeyboardInterrupt) and _from_interrupt(error):
            raise KeyboardInterrupt from None  # what numba's dispatcher wrapped

    def _interrupt(self, signum, frame) -> None:
        self.seen = True
        raise KeyboardInterrupt

    def _unraisable(self, unraisable) -> None:
        if not issubclass(unraisable.exc_type, KeyboardInterrupt):  # remembered: raised again at the next check
            self._hook(unraisable)

    def __call__(self, progress=None) -> None:
        if self.seen:
            raise KeyboardInterrupt


def _from_interrupt(error: BaseException | None) -> bool:
    """Whether a KeyboardInterrupt is among the causes of `error`."""
    while error is not None:
        if isinstance(error, KeyboardInterrupt):
            return True
        error = error.__cause__ or error.__context__
    return False


def interrupted(message: str) -> NoReturn:
    """Say on stderr what an interrupted command kept, then exit 130 (`main` adds no line of its own)."""
    global _reported
    _reported = True
    typer.echo(message, err=True)
    raise typer.Exit(INTERRUPTED)


def report_interruption() -> None:
    """The line for a command that did not say what it kept: every file is written whole and renamed into
    place, so what exists was completed before the stop."""
    if not _reported:
        typer.echo(GENERIC, err=True)
