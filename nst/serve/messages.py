"""What HTTP clients are told: the engine's one-line messages in the API's words, never a server path.

The engine speaks to a command line (`--style-scale 2`, `NST_MEMORY_CHECK=0`); a client sets `options`
and cannot touch the server's environment or its other flags, so those words are translated or dropped.
"""

from __future__ import annotations

import re
from pathlib import Path

from nst.engine.errors import NstError

from .store import disk_full

FLAG = re.compile(r"--([a-z][a-z0-9-]*)")
HINTS = re.compile(r"; try ([^;()]*)")
SWITCH = re.compile(r" ?\([^()]*\bNST_[A-Z_]+=[^()]*\)")  # "(NST_MEMORY_CHECK=0 skips this check)"
LONGEST = 300  # characters of a message sent back: enough for any of ours, never a client's whole value


def _known(alternative: str, allowed: tuple[str, ...]) -> bool:
    return all(name.replace("-", "_") in allowed for name in FLAG.findall(alternative))


def _hints(alternatives: str, allowed: tuple[str, ...]) -> str:
    kept = [a for a in alternatives.split(" or ") if _known(a, allowed)]
    return "; try " + " or ".join(kept) if kept else "; ask for a smaller size"


def _option(name: str, allowed: tuple[str, ...]) -> str:
    key = name.replace("-", "_")
    return f"options.{key}" if key in allowed else f"the server's {key} setting"


def for_client(text: str, allowed: tuple[str, ...]) -> str:
    """An engine message with its CLI flags named as options and its advice limited to what a client can do."""
    text = SWITCH.sub("", text)
    text = HINTS.sub(lambda m: _hints(m.group(1), allowed), text)
    return clip(FLAG.sub(lambda m: _option(m.group(1), allowed), text))


def clip(text: str) -> str:
    """One line of at most LONGEST characters."""
    line = " ".join(text.split())
    return line if len(line) <= LONGEST else line[: LONGEST - 3] + "..."


def without_paths(text: str, root: Path, labels: dict[str, str]) -> str:
    """`text` with the server's files named as the client knows them (`labels`: path -> name), others hidden."""
    for path, label in sorted(labels.items(), key=lambda item: -len(item[0])):
        text = text.replace(path, label)
    for prefix in {str(root), str(root.resolve())}:
        text = re.sub(re.escape(prefix) + r"[^\s'\":,;)]*", "a server file", text)
    return text


def failure_line(exc: BaseException, allowed: tuple[str, ...]) -> str:
    """A failure as the client is told it (before paths are hidden): what went wrong, in one line."""
    if disk_full(exc):
        return "the server's disk is full; submit the transfer again later"
    if isinstance(exc, NstError):
        return for_client(str(exc), allowed)
    if isinstance(exc, MemoryError):
        return "not enough memory for this transfer; ask for a smaller size"
    if isinstance(exc, OSError):
        return f"internal error ({type(exc).__name__}: {exc.strerror or exc.errno}); the server log has more"
    text = str(exc).strip().splitlines()
    return f"internal error ({type(exc).__name__}: {text[0] if text else 'no message'}); the server log has more"
