"""The worker pool: a fixed number of threads, each with its own `StyleTransfer` (one transfer at a time per
instance), taking jobs from one queue in the order they were accepted."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections import deque

from nst.engine.errors import NstError

from .config import ServeConfig
from .events import Hub
from .intake import ALLOWED
from .messages import clip, failure_line, without_paths
from .metrics import Metrics
from .reporting import Reporter
from .store import RESULT, Job, JobStore

log = logging.getLogger("nst.serve")


def _check_options(options: dict) -> None:
    """A record's options are a client's (a newer version's record may hold more): never anything else."""
    unknown = sorted(set(options) - set(ALLOWED))
    if unknown:
        raise NstError(f"options.{unknown[0][:40]}: this server version does not run it; submit the transfer again")


class QueueFull(Exception):
    """No place left in the queue for another job."""


class Pool:
    """Runs accepted jobs on `config.workers` threads; cancels, resumes after a restart, and shuts down.

    A worker never dies of a job: whatever one job does, it ends `failed` and the worker takes the next."""

    def __init__(self, config: ServeConfig, store: JobStore, hub: Hub, metrics: Metrics) -> None:
        self.config, self.store, self.hub, self.metrics = config, store, hub, metrics
        self.jobs: dict[str, Job] = {}
        self.progress: dict[str, dict] = {}
        self.running: set[str] = set()
        self.broken: str | None = None  # why a worker stopped, for /healthz
        self._queue: deque[str] = deque()
        self._cancelled: set[str] = set()
        self._unsaved: set[str] = set()  # records a full or failing disk kept from being written; retried
        self._reserved = 0  # uploads being received, counted against the queue
        self._ready = 0  # workers with a model, taking jobs
        self._cond = threading.Condition()
        self._closing = False
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Load the jobs on disk (queued and running ones are queued again) and start the workers."""
        for job in self.store.load_all():
            if job.status in ("queued", "running"):
                job.status = "queued"
                self._queue.append(job.id)
            elif job.status == "cancelled":
                self._remove_inputs(job)  # a crash may have come between the cancel and the removal
            self.jobs[job.id] = job
        for line in self.store.set_aside:
            log.warning("start-up: %s", line)
        for index in range(self.config.workers):
            thread = threading.Thread(target=self._work, name=f"nst-worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self, timeout: float = 30.0) -> None:
        """Stop taking jobs and stop running ones; they stay queued on disk and resume at the next start."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def uploading(self) -> int:
        """Places held by uploads still being received."""
        return self._reserved

    def health(self) -> str | None:
        """None while the pool can run jobs; otherwise why not, in one line."""
        starting = any(t.is_alive() for t in self._threads) and self._ready == 0 and self.broken is None
        if self._ready > 0 or starting or self._closing:
            return None
        return self.broken or "no worker is running"

    @contextlib.contextmanager
    def place(self):
        """Hold a queue place while an upload is received, decided atomically: QueueFull when none is left."""
        with self._cond:
            if len(self._queue) + self._reserved >= self.config.queue:
                raise QueueFull
            self._reserved += 1
        try:
            yield
        finally:
            with self._cond:
                self._reserved -= 1

    def submit(self, job: Job) -> None:
        with self._cond:
            self.jobs[job.id] = job
            self._queue.append(job.id)
            self._cond.notify()

    def stopping(self, job_id: str) -> bool:
        return self._closing or job_id in self._cancelled

    def cancel(self, job: Job) -> None:
        """Cancel a queued or running job: its record says so at once, its images go when it has stopped."""
        with self._cond:
            job.status = "cancelled"
            job.finished = time.time()
            self._persist(job)
            if job.id in self._queue:
                self._queue.remove(job.id)
            if job.id in self.running:
                self._cancelled.add(job.id)  # the worker removes the images when the run has stopped
            else:
                self._remove_inputs(job)
        self.metrics.finish("cancelled")
        self.hub.publish(job.id, "cancelled", self.status(job))

    def forget(self, job: Job) -> bool:
        """Remove a finished job whole; False while its run is still stopping (its worker owns the folder)."""
        with self._cond:
            if job.id in self.running:
                return False
        self.store.remove(job.id)  # first: when the disk refuses, the job is still here to delete again
        with self._cond:
            self.jobs.pop(job.id, None)
            self.progress.pop(job.id, None)
            self._unsaved.discard(job.id)
        return True

    def expire(self) -> int:
        """Remove finished jobs older than the keep time, and write records a full disk held back."""
        self.flush()
        old = self.store.expired(list(self.jobs.values()), self.config.keep_hours * 3600)
        return sum(self.forget(job) for job in old)

    def flush(self) -> None:
        """Write the records that could not be written when they changed."""
        with self._cond:
            for job_id in list(self._unsaved):
                if job_id in self.jobs:
                    self._persist(self.jobs[job_id])

    def status(self, job: Job) -> dict:
        """A job's answer to GET /v1/transfers/{id}."""
        progress = self.progress.get(job.id) or job.progress
        empty = {"scale": 0, "scales": 0, "iteration": 0, "iterations": 0, "loss": None, "fraction": 0.0}
        empty |= {"elapsed": 0.0, "left": None}  # the same fields as a running job's, before it starts
        return {"id": job.id, "status": job.status, "progress": progress or empty, "error": job.error}

    def _persist(self, job: Job) -> None:
        """Write a job's record; when the disk refuses, keep the state in memory and retry it later."""
        try:
            self.store.save(job)
            self._unsaved.discard(job.id)
        except (OSError, sqlite3.Error) as exc:
            self._unsaved.add(job.id)
            log.warning("job %s: its record could not be written (%s); retried later", job.id, exc)

    def _remove_inputs(self, job: Job) -> None:
        try:
            self.store.remove_inputs(job)
        except OSError as exc:  # left for the expiry to remove with the folder
            log.warning("job %s: its images could not be removed (%s)", job.id, exc)

    def _take(self) -> Job | None:
        with self._cond:
            while not self._queue and not self._closing:
                self._cond.wait()
            if self._closing:
                return None
            job = self.jobs[self._queue.popleft()]
            job.status, job.started, job.attempts = "running", time.time(), job.attempts + 1
            self.running.add(job.id)
            self._persist(job)
            self.flush()  # records a full disk held back, now that it may have room
        return job

    def _work(self) -> None:
        from nst.engine import StyleTransfer

        try:  # made in this thread: numba's thread count is set per thread
            st = StyleTransfer(device=self.config.device, threads=self.config.threads)
        except Exception as exc:
            log.exception("a worker could not load the model")
            self.broken = f"a worker could not load the model ({failure_line(exc, ALLOWED)})"
            return
        with self._cond:
            self._ready += 1
        try:
            while (job := self._take()) is not None:
                self._run_safely(st, job)
        except BaseException as exc:  # a fault outside any job: say so on /healthz rather than vanish
            log.exception("a worker stopped")
            self.broken = f"a worker stopped ({failure_line(exc, ALLOWED)})"
            raise
        finally:
            with self._cond:
                self._ready -= 1

    def _run_safely(self, st, job: Job) -> None:
        """Run one job; any failure, even in recording its end, ends that job and leaves the worker running."""
        try:
            self.hub.publish(job.id, "progress", self.status(job))
            self._run(st, job)
        except Exception as exc:
            log.exception("job %s: its run failed outside the transfer", job.id)
            self._finish(job, self._client_error(job, exc))

    def _client_error(self, job: Job, exc: BaseException) -> str:
        folder = self.store.folder(job.id)
        labels = {str(folder / job.content): "content image"}
        labels.update({str(folder / s): f"style image {i + 1}" for i, s in enumerate(job.styles)})
        return clip(without_paths(failure_line(exc, ALLOWED), self.store.root, labels))

    def _run(self, st, job: Job) -> None:
        folder = self.store.folder(job.id)
        overrides = {k: v for k, v in job.options.items() if k not in ("preset", "format")}
        result, error = None, None
        try:
            _check_options(job.options)
            result = st.stylize(
                str(folder / job.content),
                [str(folder / s) for s in job.styles],
                job.options.get("preset"),
                Reporter(self, job),
                **overrides,
            )
        except Exception as exc:  # any failure is the job's, never the worker's
            if not isinstance(exc, NstError):
                log.exception("job %s failed", job.id)
            error = self._client_error(job, exc)
        if error is None and not self.stopping(job.id):
            try:
                self._save_result(folder / RESULT, result)
            except Exception as exc:
                log.warning("job %s: the result could not be saved (%s)", job.id, exc)
                (folder / RESULT).unlink(missing_ok=True)  # never a partial result, and the space back
                error = self._client_error(job, exc)
        self._finish(job, error)

    @staticmethod
    def _save_result(path, result) -> None:
        from nst.engine.images import save_result

        save_result(path, result)
        with open(path, "rb") as fh:  # on disk before the record says done
            os.fsync(fh.fileno())

    def _finish(self, job: Job, error: str | None) -> None:
        with self._cond:
            self.running.discard(job.id)
            job.progress = self.progress.get(job.id)
            if job.id in self._cancelled:
                self._cancelled.discard(job.id)
                self._remove_inputs(job)
                return
            if self._closing:  # shutting down: left queued on disk, resumed at the next start
                job.status = "queued"
                self._persist(job)
                return
            job.status, job.error, job.finished = (
                ("failed", error, time.time()) if error else ("done", None, time.time())
            )
            self._persist(job)
        self.metrics.finish(job.status, job.finished - (job.started or job.finished))
        self.hub.publish(job.id, job.status, self.status(job))
