"""Jobs on disk: records in SQLite (`jobs.sqlite3`, WAL, one transaction per state change), images in files.

`jobs/<id>/` holds a job's inputs and, once done, its result.  A job is accepted only when its images are
flushed and its record committed, so a crash leaves either no job or a whole one; a restarted server finds
every job and runs queued and running ones again from the start.  Nothing the server did not create is
deleted: a record it cannot read (a newer version's, a damaged one) is set aside and reported, and folders it
does not know are left alone.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import secrets
import shutil
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from nst.engine.errors import NstError

from .lock import DataLock

DATABASE = "jobs.sqlite3"
LEGACY_RECORD = "job.json"  # where versions before the database kept each record; imported once
RESULT = "result.png"  # lossless; other formats are encoded when asked for
TERMINAL = ("done", "failed", "cancelled")
SQLITE_FULL = 13
VERSION = 1  # PRAGMA user_version: a newer version's database is used as far as this one understands it
SCHEMA = "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, created REAL NOT NULL, record TEXT NOT NULL)"
log = logging.getLogger("nst.serve")


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
    extra: dict = field(default_factory=dict, repr=False)  # fields of a newer version's record, kept as they were

    @property
    def finished_state(self) -> bool:
        return self.status in TERMINAL

    def record(self) -> str:
        """The JSON kept in the database: this version's fields over any a newer version wrote."""
        own = asdict(self)
        return json.dumps({**own.pop("extra"), **own})

    @classmethod
    def from_record(cls, text: str) -> Job:
        """A job from its JSON; fields this version does not know are kept aside, not lost (ValueError if unusable)."""
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        known = {f.name for f in fields(cls)} - {"extra"}
        try:
            job = cls(**{k: v for k, v in raw.items() if k in known})
        except TypeError as exc:  # a field this version needs is missing
            raise ValueError(str(exc)) from None
        if not valid_id(str(job.id)) or job.status not in ("queued", "running", *TERMINAL):
            raise ValueError(f"id {str(job.id)[:40]!r} or status {str(job.status)[:20]!r} is not one this version runs")
        if not isinstance(job.styles, list) or not all(_plain(name) for name in (job.content, *job.styles)):
            raise ValueError("its image names are not plain file names")  # never follow a record out of its folder
        job.extra = {k: v for k, v in raw.items() if k not in known}
        return job


def _plain(name) -> bool:
    return isinstance(name, str) and name not in ("", ".", "..") and not any(c in name for c in "/\\:")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(path: Path, data: bytes) -> None:
    """Write an upload and flush it to disk (it is renamed into `jobs/` only once every file is written)."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def disk_full(exc: BaseException) -> bool:
    """Whether a write failed for want of space (the system's errno, or SQLite's own SQLITE_FULL)."""
    if exc.__context__ is not None and disk_full(exc.__context__):  # an error raised while handling ENOSPC
        return True
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == SQLITE_FULL
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def new_id() -> str:
    return secrets.token_hex(16)


def valid_id(job_id: str) -> bool:
    """Ids are 32 hex digits: nothing a client sends as an id can name another path."""
    return len(job_id) == 32 and all(c in "0123456789abcdef" for c in job_id)


class JobStore:
    """The jobs under a data folder (the caller holds its `DataLock`): records, uploads, results."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.jobs_dir = self.root / "jobs"
        self.incoming = self.root / "incoming"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.incoming.mkdir(exist_ok=True)
        self._lock = threading.Lock()  # one connection shared by the workers and the request threads
        self._db = sqlite3.connect(self.root / DATABASE, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a 202 promises the job survives a power loss
        self._db.execute(SCHEMA)
        if self._db.execute("PRAGMA quick_check").fetchone()[0] != "ok":  # damage the opening did not meet
            raise sqlite3.DatabaseError("its pages do not check out")
        self._identity = _identity(self.root / DATABASE)
        self.set_aside: list[str] = []  # what start-up found and left alone, one line each
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > VERSION:
            self.set_aside.append(f"{DATABASE} is of a newer version ({version}); only the records this one reads run")
        elif version < VERSION:
            self._db.execute(f"PRAGMA user_version = {VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def database_problem(self) -> str | None:
        """None while the database this store writes is the one at its path; a file moved, removed or replaced
        under a running server would take every record written from then on with it."""
        if _identity(self.root / DATABASE) != self._identity:
            return f"its job database ({DATABASE}) was moved or removed while it ran; restart the server"
        return None

    def folder(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def staging(self) -> tuple[str, Path]:
        """A fresh id and a folder outside `jobs/` where its uploads are written before acceptance."""
        job_id = new_id()
        path = self.incoming / job_id
        path.mkdir()
        return job_id, path

    def _write(self, sql: str, args: tuple) -> None:
        """One statement in its own transaction: committed (and synced) when this returns."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(sql, args)

    def accept(self, job: Job, staged: Path) -> None:
        """Make a staged job durable and visible: its images flushed, its record committed, then renamed in.

        A crash after the commit leaves the folder in `incoming/`; `load_all` finishes the move."""
        fsync_dir(staged)
        self._write("INSERT INTO jobs (id, created, record) VALUES (?, ?, ?)", (job.id, job.created, job.record()))
        try:
            os.replace(staged, self.folder(job.id))
            fsync_dir(self.jobs_dir)
        except BaseException:
            self._write("DELETE FROM jobs WHERE id = ?", (job.id,))
            raise

    def save(self, job: Job) -> None:
        self._write("UPDATE jobs SET record = ? WHERE id = ?", (job.record(), job.id))

    def load_all(self) -> list[Job]:
        """Every job this version can run, oldest first; anything else is listed in `set_aside`, untouched."""
        self._finish_moves()
        self._import_legacy()
        with self._lock:
            rows = self._db.execute("SELECT id, record FROM jobs ORDER BY created").fetchall()
        jobs = []
        for job_id, text in rows:
            try:
                jobs.append(Job.from_record(text))
            except (ValueError, TypeError, RecursionError) as exc:  # TypeError: not text at all
                self.set_aside.append(f"record {str(job_id)[:40]!r} is not one this version reads ({exc}); kept")
        return jobs

    def _finish_moves(self) -> None:
        """Uploads of a crashed server: a committed job is moved in, an unacknowledged one removed."""
        with self._lock:
            committed = {row[0] for row in self._db.execute("SELECT id FROM jobs")}
        for path in self.incoming.iterdir():
            if not valid_id(path.name):
                continue  # not the server's: left alone
            if path.name in committed and not self.folder(path.name).exists():
                os.replace(path, self.folder(path.name))
            else:
                shutil.rmtree(path, ignore_errors=True)

    def _import_legacy(self) -> None:
        """Records of versions before the database (`jobs/<id>/job.json`), taken over once; the file stays."""
        with self._lock:
            known = {row[0] for row in self._db.execute("SELECT id FROM jobs")}
        for path in sorted(self.jobs_dir.iterdir()):
            if path.name in known:
                continue
            if not (valid_id(path.name) and (path / LEGACY_RECORD).is_file()):
                self.set_aside.append(f"jobs/{path.name[:40]} is not a job of this server; left alone")
                continue
            try:
                job = Job.from_record((path / LEGACY_RECORD).read_text())
            except (OSError, ValueError, RecursionError) as exc:
                self.set_aside.append(f"jobs/{path.name}/{LEGACY_RECORD} cannot be read ({exc}); kept")
                continue
            self._write("INSERT INTO jobs (id, created, record) VALUES (?, ?, ?)", (job.id, job.created, job.record()))

    def remove_inputs(self, job: Job) -> None:
        """Drop a job's images (inputs and result) and keep its record, so its status still answers."""
        folder = self.folder(job.id)
        for name in (job.content, *job.styles, RESULT):
            (folder / name).unlink(missing_ok=True)

    def remove(self, job_id: str) -> None:
        """Remove a finished job whole: its folder first, which gives a full disk room for the record's removal."""
        shutil.rmtree(self.folder(job_id), ignore_errors=True)
        self._write("DELETE FROM jobs WHERE id = ?", (job_id,))

    def expired(self, jobs: list[Job], keep_seconds: float, now: float | None = None) -> list[Job]:
        """Finished jobs older than the keep time."""
        now = time.time() if now is None else now
        return [j for j in jobs if j.finished_state and (j.finished or j.created) + keep_seconds < now]


def _identity(path: Path) -> tuple[int, int] | None:
    """The file's device and inode (None when there is none): what stays the same while it is the same file."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def open_data(data: Path) -> tuple[DataLock, JobStore]:
    """Lock the data folder for this server and open its jobs; a folder it cannot use is one line (NstError)."""
    data = Path(data)
    if data.exists() and not data.is_dir():
        raise NstError(f"--data {data} is a file; give a folder (it is created when missing)")
    try:
        data.mkdir(parents=True, exist_ok=True)
        lock = DataLock.acquire(data)
    except OSError as exc:
        raise NstError(f"--data {data}: {exc.strerror or exc}; give a folder this user can write") from None
    try:
        return lock, JobStore(data)
    except (OSError, sqlite3.OperationalError) as exc:
        lock.release()
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise NstError(f"--data {data}: {reason}; give a folder this user can write") from None
    except sqlite3.DatabaseError as exc:  # damaged: nothing is deleted, the operator decides
        lock.release()
        raise NstError(f"--data {data}: {DATABASE} cannot be read ({exc}); move it aside to start afresh") from None
