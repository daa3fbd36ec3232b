"""The worker pool: a fixed number of threads, each with its own `StyleTransfer` (one transfer at a time per
instance), taking jobs from one queue in the order they were accepted."""

from __future__ import annotations

import base64
import logging
import os
import threading
import time
from collections import deque

from nst.engine.errors import NstError

from .config import ServeConfig
from .events import Hub
from .metrics import Metrics
from .store import RESULT, Job, JobStore

log = logging.getLogger("nst.serve")
PROGRESS_INTERVAL = 0.1  # at most 10 progress events a second per job
PREVIEW_INTERVAL = 2.0  # seconds between preview images
PREVIEW_SIDE = 256


def preview_jpeg(rgb) -> str:
    """A small JPEG of an HxWx3 uint8 image, base64-encoded for an event."""
    import cv2

    h, w = rgb.shape[:2]
    scale = min(1.0, PREVIEW_SIDE / max(h, w))
    small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", small[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 80])
    return base64.b64encode(buf.tobytes()).decode() if ok else ""


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, NstError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "not enough memory for this transfer; ask for a smaller size"
    text = str(exc).strip().splitlines()
    return f"internal error ({type(exc).__name__}: {text[0] if text else 'no message'}); the server log has more"


class Reporter:
    """A transfer's callback: records progress, publishes events, and stops the run when asked."""

    def __init__(self, pool: Pool, job: Job) -> None:
        self.pool, self.job = pool, job
        self.last_event = self.last_preview = 0.0
        self.last_elapsed = 0.0

    def __call__(self, p) -> None:
        if self.pool.stopping(self.job.id):
            p.stop()
            return
        progress = {
            "scale": p.scale,
            "scales": p.scales,
            "iteration": p.iteration + 1,  # evaluations done in this scale
            "iterations": p.iterations,
            "loss": float(p.losses["loss"]),
        }
        self.pool.progress[self.job.id] = progress
        if p.iteration > 0:
            self.pool.metrics.iteration(p.elapsed - self.last_elapsed)
        self.last_elapsed = p.elapsed
        hub, now = self.pool.hub, time.monotonic()
        if not hub.watched(self.job.id):
            return
        if now - self.last_event >= PROGRESS_INTERVAL or p.iteration + 1 == p.iterations:
            self.last_event = now
            hub.publish(self.job.id, "progress", self.pool.status(self.job))
        if now - self.last_preview >= PREVIEW_INTERVAL:
            self.last_preview = now
            hub.publish(
                self.job.id, "preview", {"id": self.job.id, "jpeg": preview_jpeg(p.image()), "progress": progress}
            )


class Pool:
    """Runs accepted jobs on `config.workers` threads; cancels, resumes after a restart, and shuts down."""

    def __init__(self, config: ServeConfig, store: JobStore, hub: Hub, metrics: Metrics) -> None:
        self.config, self.store, self.hub, self.metrics = config, store, hub, metrics
        self.jobs: dict[str, Job] = {}
        self.progress: dict[str, dict] = {}
        self.running: set[str] = set()
        self._queue: deque[str] = deque()
        self._cancelled: set[str] = set()
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
                self.store.remove_inputs(job)  # a crash may have come between the cancel and the removal
            self.jobs[job.id] = job
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
            self.store.save(job)
            if job.id in self._queue:
                self._queue.remove(job.id)
            if job.id in self.running:
                self._cancelled.add(job.id)  # the worker removes the images when the run has stopped
            else:
                self.store.remove_inputs(job)
        self.metrics.finish("cancelled")
        self.hub.publish(job.id, "cancelled", self.status(job))

    def expire(self) -> int:
        """Remove finished jobs older than the keep time; returns how many."""
        with self._cond:
            old = self.store.expired(list(self.jobs.values()), self.config.keep_hours * 3600)
            for job in old:
                if job.id not in self.running:
                    self.jobs.pop(job.id, None)
                    self.progress.pop(job.id, None)
                    self.store.remove(job.id)
        return len(old)

    def status(self, job: Job) -> dict:
        """A job's answer to GET /v1/transfers/{id}."""
        progress = self.progress.get(job.id) or job.progress
        empty = {"scale": 0, "scales": 0, "iteration": 0, "iterations": 0, "loss": None}
        return {"id": job.id, "status": job.status, "progress": progress or empty, "error": job.error}

    def _take(self) -> Job | None:
        with self._cond:
            while not self._queue and not self._closing:
                self._cond.wait()
            if self._closing:
                return None
            job = self.jobs[self._queue.popleft()]
            job.status, job.started, job.attempts = "running", time.time(), job.attempts + 1
            self.running.add(job.id)
            self.store.save(job)
        return job

    def _work(self) -> None:
        from nst.engine import StyleTransfer

        try:  # made in this thread: numba's thread count is set per thread
            st = StyleTransfer(device=self.config.device, threads=self.config.threads)
        except Exception:
            log.exception("a worker could not load the model")
            return
        while (job := self._take()) is not None:
            self.hub.publish(job.id, "progress", self.status(job))
            self._run(st, job)

    def _run(self, st, job: Job) -> None:
        folder = self.store.folder(job.id)
        overrides = {k: v for k, v in job.options.items() if k not in ("preset", "format")}
        result, error = None, None
        try:
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
            error = _one_line(exc)
        if error is None and not self.stopping(job.id):
            try:
                self._save_result(folder / RESULT, result)
            except Exception as exc:
                log.exception("job %s: the result could not be saved", job.id)
                error = _one_line(exc)
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
                self.store.remove_inputs(job)
                return
            if self._closing:  # shutting down: left queued on disk, resumed at the next start
                job.status = "queued"
                self.store.save(job)
                return
            job.status, job.error, job.finished = (
                ("failed", error, time.time()) if error else ("done", None, time.time())
            )
            self.store.save(job)
        self.metrics.finish(job.status, job.finished - (job.started or job.finished))
        self.hub.publish(job.id, job.status, self.status(job))
