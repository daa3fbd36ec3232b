"""Server-sent events: workers publish from their threads, each open stream reads its own queue."""

from __future__ import annotations

import asyncio
import json
import threading

QUEUE_LIMIT = 256  # events a slow reader may fall behind by; beyond it progress events are dropped


class Hub:
    """Fan-out of job events to the streams watching each job (thread-safe publish, asyncio delivery)."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._streams: dict[str, set[asyncio.Queue]] = {}
        self._lock = threading.Lock()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def subscribe(self, job_id: str) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(QUEUE_LIMIT)
        with self._lock:
            self._streams.setdefault(job_id, set()).add(queue)
        return queue

    def unsubscribe(self, job_id: str, queue: asyncio.Queue) -> None:
        with self._lock:
            streams = self._streams.get(job_id, set())
            streams.discard(queue)
            if not streams:
                self._streams.pop(job_id, None)

    def watched(self, job_id: str) -> bool:
        """Whether any stream reads this job (previews are only made for someone)."""
        return job_id in self._streams

    def publish(self, job_id: str, event: str, data: dict) -> None:
        """Queue an event for every stream of the job; safe to call from any thread."""
        if self.loop is None or not self.watched(job_id):
            return
        try:
            self.loop.call_soon_threadsafe(self._deliver, job_id, event, data)
        except RuntimeError:  # the loop has closed: the server is stopping
            pass

    def _deliver(self, job_id: str, event: str, data: dict) -> None:
        with self._lock:
            queues = list(self._streams.get(job_id, ()))
        for queue in queues:
            try:
                queue.put_nowait((event, data))
            except asyncio.QueueFull:  # a reader this far behind re-reads the job's state on its next wait
                pass


def frame(event: str, data: dict) -> str:
    """One event in the text/event-stream format."""
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"
