"""The course assignment's reporting for `--preset seed`: its printed costs and its output/ images, kept at
the edge of the engine so that nothing else depends on them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

import numpy as np

from nst.engine.errors import NstError
from nst.engine.progress import Progress


class SeedReport:
    """The assignment's output: every 20 iterations print the three costs and save <folder>/<i>.png.

    The assignment prints "Iteration i" after Adam step i, i.e. at the image the next evaluation reads,
    so evaluation k reports iteration k - 1.  Its costs are the unweighted J_content and J_style.
    """

    def __init__(
        self,
        content_weight: float,
        style_weight: float,
        folder: str | Path,
        stream: TextIO | None = None,
        every: int = 20,
    ) -> None:
        self.alpha, self.beta = content_weight, style_weight
        self.folder = Path(folder)
        self.stream = stream or sys.stdout
        self.every = every

    @classmethod
    def beside(cls, output: str | Path, content_weight: float, style_weight: float) -> SeedReport:
        """The report for a run writing `output`: its images go to output/ in the same folder as `output`
        (never the working directory, which may be read-only or someone else's)."""
        return cls(content_weight, style_weight, Path(output).parent / "output")

    def paths(self, evaluations: int) -> list[Path]:
        """Every file a run of this many evaluations writes."""
        names = [f"{i}.png" for i in range(0, evaluations - 1, self.every)] + ["generated_image.jpg"]
        return [self.folder / name for name in names]

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
        self._write(f"{i}.png", p.image())

    def finish(self, result: np.ndarray) -> None:
        """Save the final image as <folder>/generated_image.jpg, as the assignment does."""
        self._write("generated_image.jpg", result)

    def _write(self, name: str, image: np.ndarray) -> None:
        from nst.engine.images import write_image

        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise NstError(f"{self.folder}: cannot create the report folder ({exc.strerror or exc})") from None
        write_image(self.folder / name, image)
