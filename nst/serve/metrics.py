"""Counters the server keeps and their Prometheus text exposition."""

from __future__ import annotations

import threading
from collections import Counter


class Metrics:
    """Jobs by outcome, refusals by status code, and time per iteration (a summary's sum and count)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.finished: Counter = Counter()  # done | failed | cancelled
        self.refused: Counter = Counter()  # HTTP status -> count
        self.accepted = 0
        self.iteration_seconds = 0.0
        self.iterations = 0
        self.job_seconds = 0.0  # run time of done jobs, for the queue's Retry-After estimate

    def accept(self) -> None:
        with self._lock:
            self.accepted += 1

    def refuse(self, status: int) -> None:
        with self._lock:
            self.refused[status] += 1

    def finish(self, status: str, seconds: float = 0.0) -> None:
        with self._lock:
            self.finished[status] += 1
            if status == "done":
                self.job_seconds += seconds

    def iteration(self, seconds: float) -> None:
        with self._lock:
            self.iteration_seconds += seconds
            self.iterations += 1

    def mean_job_seconds(self, default: float = 30.0) -> float:
        done = self.finished["done"]
        return self.job_seconds / done if done else default

    def render(self, queued: int, running: int, workers: int) -> str:
        """The Prometheus text format (version 0.0.4)."""
        lines = [
            "# HELP nst_queue_depth Jobs waiting for a worker.",
            "# TYPE nst_queue_depth gauge",
            f"nst_queue_depth {queued}",
            "# HELP nst_running Jobs being transferred now.",
            "# TYPE nst_running gauge",
            f"nst_running {running}",
            "# HELP nst_workers Transfers that may run at once.",
            "# TYPE nst_workers gauge",
            f"nst_workers {workers}",
            "# HELP nst_jobs_accepted_total Jobs accepted since start.",
            "# TYPE nst_jobs_accepted_total counter",
            f"nst_jobs_accepted_total {self.accepted}",
            "# HELP nst_jobs_finished_total Jobs finished since start, by outcome.",
            "# TYPE nst_jobs_finished_total counter",
        ]
        lines += [
            f'nst_jobs_finished_total{{status="{s}"}} {self.finished[s]}' for s in ("done", "failed", "cancelled")
        ]
        lines += [
            "# HELP nst_requests_refused_total Requests refused, by HTTP status.",
            "# TYPE nst_requests_refused_total counter",
        ]
        lines += [f'nst_requests_refused_total{{code="{code}"}} {n}' for code, n in sorted(self.refused.items())]
        lines += [
            "# HELP nst_seconds_per_iteration Time of one objective evaluation of a running transfer.",
            "# TYPE nst_seconds_per_iteration summary",
            f"nst_seconds_per_iteration_sum {self.iteration_seconds:.6f}",
            f"nst_seconds_per_iteration_count {self.iterations}",
        ]
        return "\n".join(lines) + "\n"
