"""A running transfer's callback: its progress kept and published (throttled), previews now and then, and the
stop a cancel or a shutdown asks for."""

from __future__ import annotations

import base64
import time
from typing import TYPE_CHECKING

from nst.engine.progress import seconds_left

from .store import Job

if TYPE_CHECKING:
    from .workers import Pool

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


class Reporter:
    """A transfer's callback: records progress, publishes events, and stops the run when asked."""

    def __init__(self, pool: Pool, job: Job) -> None:
        self.pool, self.job = pool, job
        self.last_event = self.last_preview = 0.0
        self.last_elapsed = 0.0
        self.started: float | None = None  # the first iteration's time: the run's clock

    def __call__(self, p) -> None:
        if self.pool.stopping(self.job.id):
            p.stop()
            return
        now = time.monotonic()
        self.started = now if self.started is None else self.started
        fraction = p.fraction
        left = seconds_left(now - self.started, fraction)
        progress = {
            "scale": p.scale,
            "scales": p.scales,
            "iteration": p.iteration + 1,  # evaluations done in this scale
            "iterations": p.iterations,
            "loss": float(p.losses["loss"]),
            "fraction": round(fraction, 4),  # of the whole run, scales weighted by their work
            "elapsed": round(now - self.started, 1),
            "left": None if left is None else round(left, 1),
        }
        self.pool.progress[self.job.id] = progress
        if p.iteration > 0:
            self.pool.metrics.iteration(p.elapsed - self.last_elapsed)
        self.last_elapsed = p.elapsed
        hub = self.pool.hub
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
