"""What a transfer tells its callback each iteration, and ready-made callbacks (metrics, saves, the
assignment's report) that the CLI composes and hosts can reuse."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TextIO

import numpy as np

from nst import kernels


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


def chain(*callbacks: Callback | None) -> Callback:
    """One callback that calls each given one in turn."""
    active = [cb for cb in callbacks if cb is not None]

    def call(progress: Progress) -> None:
        for cb in active:
            if cb(progress) is True:
                progress.stop()

    return call


class MetricsWriter:
    """Appends one JSON object per iteration: iteration, loss, content, style, tv, seconds."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fh: TextIO = open(self.path, "w", encoding="utf-8")

    def __call__(self, p: Progress) -> None:
        record = {
            "iteration": p.iteration,
            **{k: float(v) for k, v in p.losses.items()},
            "seconds": round(p.elapsed, 4),
        }
        self._fh.write(json.dumps(record) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


class SaveEvery:
    """Writes the evaluated image every `every` iterations to `<stem>_<iteration><suffix>` beside `output`."""

    def __init__(self, output: str | Path, every: int) -> None:
        self.output = Path(output)
        self.every = every

    def __call__(self, p: Progress) -> None:
        if self.every > 0 and p.iteration > 0 and p.iteration % self.every == 0:
            from .images import write_image

            name = f"{self.output.stem}_{p.iteration:04d}{self.output.suffix}"
            write_image(self.output.with_name(name), p.image())


class SeedReport:
    """The assignment's output: every 20 iterations print the three costs and save output/<i>.png.

    The assignment prints "Iteration i" after Adam step i, i.e. at the image the next evaluation reads,
    so evaluation k reports iteration k - 1.  Its costs are the unweighted J_content and J_style.
    """

    def __init__(
        self,
        content_weight: float,
        style_weight: float,
        folder: str | Path = "output",
        stream: TextIO | None = None,
        every: int = 20,
    ) -> None:
        self.alpha, self.beta = content_weight, style_weight
        self.folder = Path(folder)
        self.stream = stream or sys.stdout
        self.every = every

    def __call__(self, p: Progress) -> None:
        i = p.iteration - 1
        if i < 0 or i % self.every:
            return
        j_content = p.losses["content"] / self.alpha if self.alpha else 0.0
        j_style = p.losses["style"] / self.beta if self.beta else 0.0
        total = self.alpha * j_content + self.beta * j_style
        print(
            f"Iteration {i} : total cost = {total:g} content cost = {j_content:g} style cost = {j_style:g}",
            file=self.stream,
            flush=True,
        )
        from .images import write_image

        self.folder.mkdir(parents=True, exist_ok=True)
        write_image(self.folder / f"{i}.png", p.image())

    def finish(self, result: np.ndarray) -> None:
        """Save the final image as output/generated_image.jpg, as the assignment does."""
        from .images import write_image

        self.folder.mkdir(parents=True, exist_ok=True)
        write_image(self.folder / "generated_image.jpg", result)
