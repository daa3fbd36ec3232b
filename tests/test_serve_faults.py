"""`nst serve` under faults (issue 22): a job that fails, a full disk, concurrent uploads, a data folder shared,
damaged or left by another version. Each test starts a real server on 127.0.0.1; a full disk is simulated by a
seam (the server's writes raise ENOSPC while a flag file exists), a read-only folder by a read-only tmpfs."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from .serving import CONTENT, STYLE, TINY, need, record, submit, wait_for

httpx = need("httpx", "the server tests need httpx")
need("fastapi", "nst serve needs its extra")

from nst.serve.launch import ServerProcess, free_port  # noqa: E402

LONG = {"size": 64, "iterations": 300}  # runs for seconds: long enough to act on while it runs
FULL_DISK = """
import errno, pathlib
import nst.serve.app as app, nst.serve.store as store, nst.serve.workers as workers
FLAG = pathlib.Path({flag!r})

def full(real):
    def seam(*args, **kwargs):
        if FLAG.exists():
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)
    return seam

if hasattr(app, "write_file"):  # uploads
    app.write_file = full(app.write_file)
store.JobStore.save = full(store.JobStore.save)  # every change of a record
workers.Pool._save_result = staticmethod(full(workers.Pool._save_result))  # results
"""
NO_MODEL = """
import nst.engine

def broken(*args, **kwargs):
    raise RuntimeError("the model file is damaged")

nst.engine.StyleTransfer = broken
"""


class SeamedServer(ServerProcess):
    """A server whose process first runs `prelude` (Python that patches it), and that counts any answer of
    /healthz as started when `any_health` (a server that cannot run jobs answers 503)."""

    def __init__(self, data, prelude: str, any_health: bool = False, **kwargs) -> None:
        super().__init__(data, **kwargs)
        self.prelude, self.any_health = prelude, any_health

    def command(self) -> list[str]:
        argv = ["nst", *super().command()[3:]]
        code = f"{self.prelude}\nimport sys\nsys.argv = {argv!r}\nfrom nst.cli.main import main\nmain()\n"
        return [sys.executable, "-c", code]

    def healthy(self) -> bool:
        if not self.any_health:
            return super().healthy()
        try:
            return httpx.get(self.url + "/healthz", timeout=2).status_code in (200, 503)
        except httpx.HTTPError:
            return False


@contextlib.contextmanager
def client_of(server):
    with httpx.Client(base_url=server.url, headers=server.headers(), timeout=60) as client:
        yield client


def no_traceback(server) -> None:
    text = server.log.read_text(errors="replace")
    assert "Traceback" not in text and "CancelledError" not in text, server.tail(40)


def test_a_second_delete_of_a_running_job_leaves_the_worker_running(tmp_path):
    with ServerProcess(tmp_path / "data", args=("--workers", 1)) as server, client_of(server) as client:
        job_id = submit(client, LONG).json()["id"]
        wait_for(client, job_id, ("running",))
        for _ in range(2):  # the second one came while the run was still stopping
            answer = client.delete(f"/v1/transfers/{job_id}")
            assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
        after = submit(client, TINY).json()["id"]
        assert wait_for(client, after)["status"] == "done"
        assert client.get("/healthz").json()["status"] == "ok"
        assert client.delete(f"/v1/transfers/{job_id}").status_code == 200  # now it is removed whole
        assert client.get(f"/v1/transfers/{job_id}").status_code == 404


def test_a_full_disk_fails_the_job_not_the_worker(tmp_path):
    flag = tmp_path / "disk-full"
    with SeamedServer(tmp_path / "data", FULL_DISK.format(flag=str(flag)), args=("--workers", 1)) as server:
        with client_of(server) as client:
            job_id = submit(client, {"size": 64, "iterations": 40}).json()["id"]
            wait_for(client, job_id, ("running",))
            flag.touch()  # the disk fills while it runs: neither the result nor the record can be written
            failed = wait_for(client, job_id)
            assert failed["status"] == "failed" and "disk is full" in failed["error"]
            assert str(tmp_path) not in failed["error"] and "\n" not in failed["error"]
            refused = submit(client, TINY)  # an upload meets the full disk too
            assert refused.status_code == 507 and "disk is full" in refused.json()["error"]
            flag.unlink()
            after = submit(client, TINY).json()["id"]
            assert wait_for(client, after)["status"] == "done"
            assert record(server.data, job_id)["status"] == "failed"  # written once the disk had room
            assert not (server.data / "jobs" / job_id / "result.png").exists()
            assert client.get("/healthz").status_code == 200
    no_traceback(server)


def test_health_is_503_when_no_worker_can_run(tmp_path):
    with SeamedServer(tmp_path / "data", NO_MODEL, any_health=True, args=("--workers", 1)) as server:
        with client_of(server) as client:
            deadline = time.monotonic() + 60
            while (health := client.get("/healthz")).status_code == 200 and time.monotonic() < deadline:
                time.sleep(0.2)  # the worker is still loading its model
            assert health.status_code == 503, health.text
            assert "could not load the model" in health.json()["error"]
            refused = submit(client, TINY)  # it would wait for ever
            assert refused.status_code == 503 and "could not load the model" in refused.json()["error"]


def test_the_queue_limit_holds_under_concurrent_uploads(tmp_path):
    queue, senders = 3, 20
    args = ("--workers", 1, "--queue", queue)
    with ServerProcess(tmp_path / "data", args=args) as server, client_of(server) as client:
        start, codes = threading.Barrier(senders), []

        def send() -> None:
            with client_of(server) as own:
                start.wait(30)
                answer = submit(own, LONG)
                codes.append((answer.status_code, answer.json().get("id")))

        threads = [threading.Thread(target=send) for _ in range(senders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        accepted = [job_id for code, job_id in codes if code == 202]
        assert len(codes) == senders and {code for code, _ in codes} <= {202, 429}
        assert 1 <= len(accepted) <= queue + 1, codes  # the queue, and one a worker may already have taken
        for job_id in accepted:
            client.delete(f"/v1/transfers/{job_id}")


def _other_versions_data(data) -> dict:
    """A data folder as another version and the system may leave it: what start-up must not delete."""
    jobs = data / "jobs"
    (jobs / "lost+found").mkdir(parents=True)
    (jobs / "lost+found" / "#1234").write_bytes(b"recovered by fsck")
    newer, option = "a" * 32, "d" * 32  # records of a newer version, after a rollback: a field, an option unknown
    for job_id, options in ((newer, TINY), (option, TINY | {"init": "/etc/passwd"})):
        (jobs / job_id).mkdir()
        (jobs / job_id / "content").write_bytes(CONTENT)
        (jobs / job_id / "style1").write_bytes(STYLE)
        fields = {"id": job_id, "options": options, "content": "content", "styles": ["style1"], "priority": "high"}
        (jobs / job_id / "job.json").write_text(json.dumps(fields))
    broken = "b" * 32
    (jobs / broken).mkdir()
    (jobs / broken / "job.json").write_text('{"id": "' + broken + '", "status": "qu')  # cut short
    with contextlib.closing(sqlite3.connect(data / "jobs.sqlite3")) as db, db:
        db.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, created REAL NOT NULL, record TEXT NOT NULL)")
        db.execute("INSERT INTO jobs VALUES (?, 0, ?)", ("c" * 32, '{"id": "' + "c" * 32 + '", "version": 9'))
        db.execute("INSERT INTO jobs VALUES (?, 0, ?)", ("e" * 32, 42))  # not even text
    return {"newer": newer, "option": option, "broken": broken, "row": "c" * 32, "number": "e" * 32}


def test_start_up_deletes_nothing_it_did_not_create(tmp_path):
    data = tmp_path / "data"
    ids = _other_versions_data(data)
    before = sorted(str(p.relative_to(data)) for p in (data / "jobs").rglob("*"))
    with ServerProcess(data, args=("--workers", 1)) as server, client_of(server) as client:
        health = client.get("/healthz").json()
        assert health["set_aside"] == 4, server.tail()  # lost+found, the cut record, the unreadable rows
        assert wait_for(client, ids["newer"])["status"] == "done"
        assert record(data, ids["newer"])["priority"] == "high"  # the newer version's field is kept
        refused = wait_for(client, ids["option"])  # a record never runs what a client may not ask
        assert refused["status"] == "failed" and "options.init: this server version does not run it" in refused["error"]
        assert client.get(f"/v1/transfers/{ids['broken']}").status_code == 404
    after = {str(p.relative_to(data)) for p in (data / "jobs").rglob("*")}
    assert set(before) <= after  # nothing was removed (the finished job gained its result)
    with contextlib.closing(sqlite3.connect(data / "jobs.sqlite3")) as db:
        kept = db.execute("SELECT count(*) FROM jobs WHERE id IN (?, ?)", (ids["row"], ids["number"])).fetchone()[0]
        assert kept == 2
    for what in ("lost+found", ids["broken"], ids["row"], ids["number"]):
        assert what in server.log.read_text(), f"start-up did not report {what}"


def _serve(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "nst", "serve", "--port", str(free_port()), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


def _one_line(done: subprocess.CompletedProcess, says: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and says in lines[0], done.stderr


def test_a_second_server_on_the_same_data_is_refused(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NST_TOKEN"} | {"XDG_DATA_HOME": str(tmp_path / "xdg")}
    (tmp_path / "xdg" / "nst").mkdir(parents=True)
    first = ServerProcess(tmp_path / "xdg" / "nst" / "serve", args=("--workers", 1)).start()  # the default folder
    try:
        with client_of(first) as client:
            job_id = submit(client, LONG).json()["id"]
        _one_line(_serve(env=env), f"is in use by another nst serve (process {first.pid})")
        _one_line(_serve("--data", str(first.data)), "give this one its own --data")
        assert (first.data / "jobs" / job_id / "content").exists()  # the first one's uploads are untouched
        first.kill()  # a crash leaves the lock file, but not the lock
        second = ServerProcess(first.data, args=("--workers", 1)).start()
        second.stop()
    finally:
        first.stop()


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder this process cannot write: permissions for a user, a read-only tmpfs for root."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    mount = ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)]
    if not shutil.which("mount") or subprocess.run(mount, capture_output=True).returncode:
        pytest.skip("root cannot mount a read-only tmpfs here, and ignores permissions")
    try:
        yield folder
    finally:
        subprocess.run(["umount", folder], check=True)


@pytest.mark.parametrize("case", ["a file", "read-only", "inf", "damaged database", "port in use"])
def test_start_up_refusals_are_one_line(tmp_path, request, case):
    if case == "a file":
        (tmp_path / "data").write_text("not a folder")
        _one_line(_serve("--data", str(tmp_path / "data")), "is a file; give a folder")
    elif case == "read-only":
        folder = request.getfixturevalue("read_only_folder")
        _one_line(_serve("--data", str(folder / "data")), "give a folder this user can write")
    elif case == "port in use":
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            command = [sys.executable, "-m", "nst", "serve", "--port", str(port), "--data", str(tmp_path / "data")]
            _one_line(subprocess.run(command, capture_output=True, text=True, timeout=120), "choose another port")
    elif case == "inf":
        _one_line(_serve("--data", str(tmp_path / "data"), "--max-upload-mb", "inf"), "--max-upload-mb inf")
    else:
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "jobs.sqlite3").write_bytes(b"not a database, but the operator's to judge" * 100)
        _one_line(_serve("--data", str(tmp_path / "data")), "jobs.sqlite3 cannot be read")
        assert (tmp_path / "data" / "jobs.sqlite3").stat().st_size == 4300  # left as it was
        import sqlite3

        damaged = tmp_path / "damaged"
        damaged.mkdir()
        with sqlite3.connect(damaged / "jobs.sqlite3") as db:  # whole header, a damaged page past it
            db.execute("CREATE TABLE filler (x TEXT)")
            db.executemany("INSERT INTO filler VALUES (?)", [("x" * 500,)] * 200)
        db.close()
        with open(damaged / "jobs.sqlite3", "r+b") as fh:
            fh.seek(4096 * 3)
            fh.write(os.urandom(4096))
        _one_line(_serve("--data", str(damaged)), "jobs.sqlite3 cannot be read")


def test_sigterm_with_open_event_streams_stops_quietly(tmp_path):
    server = ServerProcess(tmp_path / "data", args=("--workers", 1)).start()
    try:
        with client_of(server) as client:
            job_id = submit(client, {"size": 64, "iterations": 2000, "preset": "johnson"}).json()["id"]
            wait_for(client, job_id, ("running",))
            opened = threading.Barrier(3)

            def watch() -> None:
                with client_of(server) as own, own.stream("GET", f"/v1/transfers/{job_id}/events") as stream:
                    opened.wait(30)
                    with contextlib.suppress(httpx.HTTPError):
                        for _ in stream.iter_lines():
                            pass

            watchers = [threading.Thread(target=watch) for _ in range(2)]
            for thread in watchers:
                thread.start()
            opened.wait(30)
            started = time.monotonic()
            server.stop()  # SIGTERM
            assert time.monotonic() - started < 30
            for thread in watchers:
                thread.join(30)
        assert record(server.data, job_id)["status"] == "queued"  # resumed at the next start
        no_traceback(server)
    finally:
        server.kill()


def test_engine_messages_name_options_for_clients():
    from nst.serve.intake import ALLOWED
    from nst.serve.messages import for_client

    engine = (
        "a 1024x768 transfer needs about 3.1 GB of memory but about 1.2 GB is available; try --size 512 or "
        "--tile 512 or --history 5 (NST_MEMORY_CHECK=0 skips this check)"
    )
    assert for_client(engine, ALLOWED) == (
        "a 1024x768 transfer needs about 3.1 GB of memory but about 1.2 GB is available; try options.size 512"
    )
    only_flags = "a 64x48 transfer needs more GPU memory than is free; try --device cpu (NST_MEMORY_CHECK=0 skips it)"
    assert for_client(only_flags, ALLOWED).endswith("is free; ask for a smaller size")


def test_ctrl_c_stops_the_server_in_one_line(tmp_path):
    import signal

    # A child of a shell that ignores SIGINT (a background job) would ignore it too: start it with the default.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        server = ServerProcess(tmp_path / "data").start()
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        assert server.proc is not None
        server.proc.send_signal(signal.SIGINT)
        assert server.proc.wait(60) == 130
        last = server.log.read_text().strip().splitlines()[-1]
        assert last == "nst serve stopped; running and queued jobs stay queued and resume at the next start"
        no_traceback(server)
    finally:
        server.kill()
