"""A rich progress bar that shows the iteration, the current loss and the time left."""
from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class ProgressBar:
    """Callable as a transfer callback; use as a context manager around the run."""

    def __init__(self, total: int) -> None:
        self._progress = Progress(TextColumn("stylising"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(),
                                  TextColumn("left"), TimeRemainingColumn(), transient=False)
        self._task = self._progress.add_task("transfer", total=total, loss="-")

    def __enter__(self) -> "ProgressBar":
        self._progress.start()
        return self

    def __exit__(self, *exc) -> bool:
        self._progress.stop()
        return False

    def __call__(self, p) -> None:
        self._progress.update(self._task, completed=p.iteration + 1, loss=f"{p.losses['loss']:.4g}")
