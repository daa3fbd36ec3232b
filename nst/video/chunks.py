"""A long clip cut into chunks that can run at once: each chunk starts a few frames early (its lead-in,
stylised from scratch and then warm-started), and over those overlap frames the output fades from the
previous chunk's frames to this chunk's, so no seam shows in time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nst.engine.images import read_image, save_result

from .stylize import frame_path

LEAD, TAIL = ".lead", ".tail"  # overlap frames of the next and of the previous chunk, kept until blended


@dataclass(frozen=True)
class Chunk:
    """Frames start..stop-1 are stylised; own..stop-1 are this chunk's; from tail on, the next chunk's
    lead-in overlaps them."""

    start: int
    own: int
    stop: int
    tail: int

    def place(self, folder: Path, index: int) -> Path:
        """Where this chunk writes frame `index`: its own frames into the folder, overlaps aside."""
        if index < self.own:
            return frame_path(folder / LEAD, index)
        if index >= self.tail:
            return frame_path(folder / TAIL, index)
        return frame_path(folder, index)


def plan_chunks(indices: range, length: int, overlap: int) -> list[Chunk]:
    """Chunks of `length` frames over `indices`, each after the first starting `overlap` frames early."""
    overlap = max(0, min(overlap, length - 1))
    starts = list(range(indices.start, indices.stop, length))
    chunks = []
    for k, own in enumerate(starts):
        stop = min(own + length, indices.stop)
        start = own - overlap if k else own
        tail = stop - overlap if k + 1 < len(starts) else stop
        chunks.append(Chunk(start, own, stop, tail))
    return chunks


def blend_overlaps(folder: Path, chunks: list[Chunk], bit_depth: int = 8) -> None:
    """Each overlap frame, once both chunks wrote theirs: a linear fade from the earlier chunk's frame to
    the later one's, written atomically into the folder; the two originals are then removed."""
    for chunk in chunks[1:]:
        count = chunk.own - chunk.start
        for j, index in enumerate(range(chunk.start, chunk.own)):
            target, earlier, later = (frame_path(folder / sub, index) for sub in ("", TAIL, LEAD))
            if not target.exists():
                weight = (j + 1) / (count + 1)
                mixed = (1 - weight) * read_image(earlier) + weight * read_image(later)
                save_result(target, np.asarray(mixed, np.float32), bit_depth)
            earlier.unlink(missing_ok=True)
            later.unlink(missing_ok=True)
    for name in (LEAD, TAIL):
        if (folder / name).is_dir() and not any((folder / name).iterdir()):
            (folder / name).rmdir()
