"""Which input a frames folder was made from: a rerun on another clip (or changed frames) must not resume
into frames made from the old one, as `nst batch` keeps a digest of each result's input."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from nst.engine.errors import NstError
from nst.engine.images import file_sha256

from .frames import FrameSource


def input_record(source: FrameSource, indices: range) -> dict:
    """A video file by its size and digest; a folder by the name and digest of each frame of the range."""
    record: dict = {"path": str(source.path.resolve())}
    if source.files is None:
        return record | {"bytes": source.path.stat().st_size, "sha256": file_sha256(source.path)}
    frames = {str(i): {"name": source.files[i].name, "sha256": file_sha256(source.files[i])} for i in indices}
    return record | {"frames": frames}


def holds_frames(folder: Path) -> bool:
    """Whether a frames folder holds any frame made (with a Ray run's overlap frames in its subfolders)."""
    return folder.is_dir() and any(p.stem.isdigit() for p in folder.rglob("*.png"))


def merge_input(old: dict | None, new: dict, done: Callable[[int], bool], folder: Path) -> dict:
    """The record to keep for `new` over the folder's `old` one; refuses (NstError) when a frame already made
    (`done(index)`) came from another input, since resuming would keep it."""
    again = "give another output, or delete that folder to start again"
    if old and "frames" in old and "frames" in new:
        for index, frame in new["frames"].items():
            before = old["frames"].get(index)
            if before and before["sha256"] != frame["sha256"] and done(int(index)):
                raise NstError(
                    f"{folder}: frame {index} was made from another {before['name']} than the one in "
                    f"{new['path']} now; {again}"
                )
        return new | {"frames": old["frames"] | new["frames"]}
    if old and old.get("sha256") is not None and old.get("sha256") == new.get("sha256"):
        return new
    if holds_frames(folder):
        what = f"of {old['path']}" if old else "with no record of their input"
        raise NstError(f"{folder}: holds frames {what}, not of {new['path']}; {again}")
    return new
