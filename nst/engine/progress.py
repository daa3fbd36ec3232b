"""What a transfer tells its callback each iteration, and ready-made callbacks (metrics, snapshots) that the
CLI composes and hosts can reuse."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TextIO

import numpy as np

from nst import kernels

from .errors import NstError


@dataclass
class Progress:
    """One iteration (objective evaluation) of a transfer.

    iteration counts from 0 within the current scale; losses holds loss, content, style and tv (weighted terms).
    Call `image()`
    for the image that was evaluated (HxWx3 uint8, computed only when asked) and `stop()` to end the run.
    """

    iteration: int
    iterations: int
    losses: dict[str, float]
    elapsed: float
    _x: np.ndarray = field(repr=False)
    scale: int = 0  # index of the current scale (multi-scale runs), from 0
    scales: int = 1
    stopped: bool = False
    shares: tuple[float, ...] = (1.0,)  # each scale's share of the run's work (work_shares)

    @property
    def fraction(self) -> float:
        """How much of the whole run is done, 0..1, each scale weighted by its work."""
        return overall_fraction(self.shares, self.scale, self.iteration + 1, self.iterations)

    def image(self) -> np.ndarray:
        return kernels.nchw_to_hwc_uint8(self._host())

    def image_float(self) -> np.ndarray:
        """The evaluated image as HxWx3 float32 in 0..255 (full optimiser precision)."""
        return kernels.nchw_to_hwc_float(self._host())

    def _host(self) -> np.ndarray:
        """The image as a host array (a device-resident run passes an OrtValue: copied here, when asked)."""
        return self._x if isinstance(self._x, np.ndarray) else self._x.numpy()

    def stop(self) -> None:
        self.stopped = True


Callback = Callable[[Progress], object]


def work_shares(pixels: list[int], iterations: list[int]) -> tuple[float, ...]:
    """Each scale's share of a run's work, pixels x iterations: the coarse scales are quick, so equal
    shares would show a run nearly done at a quarter of its time."""
    work = [p * n for p, n in zip(pixels, iterations)]
    total = sum(work)
    return tuple(w / total for w in work) if total > 0 else tuple(1.0 / len(work) for _ in work)


def overall_fraction(shares, scale: int, iteration: int, iterations: int) -> float:
    """The part of a run done once `iteration` of `iterations` of scale `scale` ran (counted from 1)."""
    if not shares or not 0 <= scale < len(shares):
        return 0.0
    within = min(1.0, max(0.0, iteration / iterations)) if iterations > 0 else 1.0
    return min(1.0, sum(shares[:scale]) + shares[scale] * within)


def seconds_left(elapsed: float, fraction: float) -> float | None:
    """The time left at the rate so far, or None before there is a rate to go by."""
    if fraction <= 0.01 or elapsed <= 0:
        return None
    return elapsed * (1.0 - fraction) / fraction


def chain(*callbacks: Callback | None) -> Callback:
    """One callback that calls each given one in turn."""
    active = [cb for cb in callbacks if cb is not None]

    def call(progress: Progress) -> None:
        for cb in active:
            if cb(progress) is True:
                progress.stop()

    return call


class MetricsWriter:
    """One JSON object per iteration (iteration, loss, content, style, tv, seconds), written to a temporary
    file beside `path` and moved into place by `close()`: an existing file is replaced whole, in one step,
    and never truncated while a run is checked or going on."""

    def __init__(self, path: str | Path) -> None:
        from .images import temporary_beside

        self.path, fd, self._tmp = temporary_beside(path)
        self._fh: TextIO = os.fdopen(fd, "w", encoding="utf-8")
        self.rows = 0

    def __call__(self, p: Progress) -> None:
        record = {
            "iteration": p.iteration,
            **{k: float(v) for k, v in p.losses.items()},
            "seconds": round(p.elapsed, 4),
        }
        self._fh.write(json.dumps(record) + "\n")
        self._fh.flush()
        self.rows += 1

    def close(self, keep: bool = True) -> bool:
        """Move the records into place when `keep` and at least one iteration ran (else drop them); returns
        whether the file was written."""
        from .images import move_into_place

        if self._fh.closed:
            return False
        self._fh.close()
        if keep and self.rows:
            move_into_place(self._tmp, self.path)
            return True
        Path(self._tmp).unlink(missing_ok=True)
        return False


class SaveEvery:
    """Writes the evaluated image every `every` iterations beside `output`: `<stem>_<iteration><suffix>`, or
    with several scales `<stem>_s<scale>_<iteration><suffix>` (scales counted from 1, the coarsest), so no
    scale's snapshots replace another's."""

    def __init__(self, output: str | Path, every: int) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 0:
            raise NstError(f"--save-every {every!r}: give 0 (no snapshots) or a positive number of iterations")
        self.output = Path(output)
        self.every = every
        self.written: list[Path] = []

    def path(self, iteration: int, scale: int = 0, scales: int = 1) -> Path:
        tag = f"_s{scale + 1}" if scales > 1 else ""
        return self.output.with_name(f"{self.output.stem}{tag}_{iteration:04d}{self.output.suffix}")

    def paths(self, counts: list[int]) -> list[Path]:
        """Every file a run with these iterations per scale would write."""
        if not self.every:
            return []
        return [self.path(k, s, len(counts)) for s, n in enumerate(counts) for k in range(self.every, n, self.every)]

    def __call__(self, p: Progress) -> None:
        if self.every > 0 and p.iteration > 0 and p.iteration % self.every == 0:
            from .images import write_image

            self.written.append(write_image(self.path(p.iteration, p.scale, p.scales), p.image()))
