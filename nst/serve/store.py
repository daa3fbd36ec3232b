"""Jobs on disk: each job is a folder holding its inputs, its record (job.json) and, once done, its result.

A job is accepted only after its folder is complete and flushed (files, record and both folders fsynced) and
renamed into `jobs/`, so a crash leaves either no job or a whole one.  A restarted server finds every job
there; queued and running ones run again from the start.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

RECORD = "job.json"
RESULT = "result.png"  # lossless; other formats are encoded when asked for
TERMINAL = ("done", "failed", "cancelled")


@dataclass
class Job:
    """One transfer as the server keeps it: the client's settings, its state and its inputs' names."""

    id: str
    options: dict
    content: str
    styles: list[str]
    status: str = "queued"
    error: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    attempts: int = 0  # runs started; more than one after a restart resumed it
    progress: dict | None = None  # the last progress of a finished run

    @property
    def finished_state(self) -> bool:
        return self.status in TERMINAL


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes) -> None:
    """Write a file through a temporary name, flushed to disk before and after the rename."""
    tmp = path.with_name(f".{path.name}.part")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def new_id() -> str:
    return secrets.token_hex(16)


def valid_id(job_id: str) -> bool:
    """Ids are 32 hex digits: nothing a client sends as an id can name another path."""
    return len(job_id) == 32 and all(c in "0123456789abcdef" for c in job_id)


class JobStore:
    """The jobs under a data folder: create them durably, update their records, remove their files."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.jobs_dir = self.root / "jobs"
        self.incoming = self.root / "incoming"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.incoming, ignore_errors=True)  # half-received uploads of a crashed server
        self.incoming.mkdir(parents=True)

    def folder(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def staging(self) -> tuple[str, Path]:
        """A fresh id and a folder outside `jobs/` where its uploads are written before acceptance."""
        job_id = new_id()
        path = self.incoming / job_id
        path.mkdir()
        return job_id, path

    def accept(self, job: Job, staged: Path) -> None:
        """Make a staged job durable and visible: the record written, everything flushed, then renamed in."""
        for item in staged.iterdir():
            with open(item, "rb") as fh:
                os.fsync(fh.fileno())
        write_durably(staged / RECORD, json.dumps(asdict(job)).encode())
        os.replace(staged, self.folder(job.id))
        _fsync_dir(self.jobs_dir)
        _fsync_dir(self.incoming)

    def save(self, job: Job) -> None:
        write_durably(self.folder(job.id) / RECORD, json.dumps(asdict(job)).encode())

    def load_all(self) -> list[Job]:
        """Every job on disk, oldest first; unreadable records (never written whole) are dropped."""
        jobs = []
        for path in self.jobs_dir.iterdir():
            try:
                jobs.append(Job(**json.loads((path / RECORD).read_text())))
            except (OSError, ValueError, TypeError):
                shutil.rmtree(path, ignore_errors=True)
        return sorted(jobs, key=lambda j: j.created)

    def remove_inputs(self, job: Job) -> None:
        """Drop a job's images (inputs and result) and keep its record, so its status still answers."""
        for item in self.folder(job.id).iterdir():
            if item.name != RECORD:
                item.unlink(missing_ok=True)

    def remove(self, job_id: str) -> None:
        shutil.rmtree(self.folder(job_id), ignore_errors=True)

    def expired(self, jobs: list[Job], keep_seconds: float, now: float | None = None) -> list[Job]:
        """Finished jobs older than the keep time."""
        now = time.time() if now is None else now
        return [j for j in jobs if j.finished_state and (j.finished or j.created) + keep_seconds < now]
