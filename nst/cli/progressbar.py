"""A rich progress bar that shows the iteration, the current loss and the time left."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class ProgressBar:
    """Callable as a transfer callback; use as a context manager around the run."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("scale {task.fields[scale]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            transient=False,
        )
        self._task = None

    def __enter__(self) -> ProgressBar:
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def __call__(self, p) -> None:
        scale = f"{p.scale + 1}/{p.scales}"
        if self._task is None or self._scale != scale:  # a new bar for each scale
            self._task = self._progress.add_task("transfer", total=p.iterations, loss="-", scale=scale)
            self._scale = scale
        self._progress.update(self._task, completed=p.iteration + 1, loss=f"{p.losses['loss']:.4g}")


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
