"""Progress lines: one for a whole transfer (every scale, weighted by its work), one over a video's frames."""

from __future__ import annotations

import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from nst.engine.progress import seconds_left

STEPS = 1000  # the bar's resolution: a thousandth of the run


def clock(seconds: float | None) -> str:
    """Seconds as m:ss or h:mm:ss; '-:--' when not known yet."""
    if seconds is None:
        return "-:--"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class ProgressBar:
    """One line for the whole run: the part done (scales weighted by pixels x iterations, the engine's
    Progress.fraction), the scale, the loss, the time so far and an estimate of the time left. Callable as a
    transfer callback; use as a context manager around the run."""

    def __init__(self) -> None:
        self._progress = Progress(
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("scale {task.fields[scale]}"),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[elapsed]} so far, about {task.fields[left]} left"),
            transient=False,
        )
        self._task = self._progress.add_task(
            "transfer", total=STEPS, loss="-", scale="-", elapsed=clock(0), left=clock(None)
        )
        self._start = time.monotonic()

    def __enter__(self) -> ProgressBar:
        self._start = time.monotonic()
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def __call__(self, p) -> None:
        fraction, elapsed = p.fraction, time.monotonic() - self._start
        self._progress.update(
            self._task,
            completed=round(fraction * STEPS),
            scale=f"{p.scale + 1}/{p.scales}",
            loss=f"{p.losses['loss']:.4g}",
            elapsed=clock(elapsed),
            left=clock(seconds_left(elapsed, fraction)),
        )


class FrameBar:
    """A bar over the frames of a video, showing the current frame's iteration and loss."""

    def __init__(self, total: int, done: int = 0) -> None:
        self._progress = Progress(
            TextColumn("frames"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[step]}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
        )
        self._task = self._progress.add_task("video", total=total, completed=done, step="")

    def __enter__(self) -> FrameBar:
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def iteration(self, p) -> None:
        """A transfer callback: the iteration within the current frame and its loss."""
        self._progress.update(self._task, step=f"iteration {p.iteration + 1}, loss {p.losses['loss']:.4g}")

    def frame(self, record, index: int) -> None:
        """A frame finished (record) or found already written (None): counts only the former, the start
        having counted the latter."""
        if record is not None:
            self._progress.advance(self._task)
