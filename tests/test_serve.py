"""The HTTP contract of `nst serve`, against a real server started on 127.0.0.1 (docs/serve.md)."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import struct
import subprocess
import sys
import time
import zlib

import pytest

from .serving import CONTENT, STYLE, TINY, events, need, record, submit, wait_for

httpx = need("httpx", "the server tests need httpx")
need("fastapi", "nst serve needs its extra")

from nst.serve.launch import ServerProcess, free_port  # noqa: E402

TOKEN = "test-token-1"
LIMITS = ("--max-upload-mb", 1, "--max-size", 128, "--max-iterations", 400, "--queue", 2, "--workers", 1)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ServerProcess(tmp_path_factory.mktemp("serve") / "data", token=TOKEN, args=LIMITS) as proc:
        yield proc


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, headers=server.headers(), timeout=60) as c:
        yield c


def folder_items(server, job_id: str) -> list[str]:
    path = server.data / "jobs" / job_id
    return sorted(p.name for p in path.iterdir()) if path.exists() else []


def image_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.size


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares a huge size but holds almost nothing: what a decompression bomb looks like."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + b"\0" * 64


def test_transfer_events_and_result(server, client):
    response = submit(client, {**TINY, "format": "jpg"})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued" and len(body["id"]) == 32
    job_id = body["id"]
    assert record(server.data, job_id)["status"] in ("queued", "running")  # committed before the 202
    assert folder_items(server, job_id) == ["content", "style1"]
    seen = events(client, job_id)
    names = [name for name, _ in seen]
    assert names[-1] == "done" and "progress" in names and "preview" in names
    preview = next(data for name, data in seen if name == "preview")
    assert image_size(base64.b64decode(preview["jpeg"]))[0] <= 256
    final = seen[-1][1]
    assert final["status"] == "done" and final["error"] is None
    assert final["progress"]["iteration"] == final["progress"]["iterations"] == 3
    assert final["progress"]["fraction"] == 1.0 and final["progress"]["elapsed"] >= 0  # the run's clock
    fractions = [data["progress"]["fraction"] for name, data in seen if name == "progress" and data["progress"]]
    assert fractions == sorted(fractions)  # one overall share of the work, never back to 0 at a new scale
    status = client.get(f"/v1/transfers/{job_id}").json()
    assert status == final
    result = client.get(f"/v1/transfers/{job_id}/result")
    assert result.status_code == 200 and result.headers["content-type"] == "image/jpeg"
    assert image_size(result.content) == (48, 36)
    for fmt, media in (("png", "image/png"), ("webp", "image/webp")):
        other = client.get(f"/v1/transfers/{job_id}/result", params={"format": fmt})
        assert other.headers["content-type"] == media and image_size(other.content) == (48, 36)
    assert client.get(f"/v1/transfers/{job_id}/result", params={"format": "gif"}).status_code == 422


def test_a_damaged_or_deleted_result_is_410(server, client):
    job_id = submit(client, TINY).json()["id"]
    assert events(client, job_id)[-1][0] == "done"
    result = server.data / "jobs" / job_id / "result.png"
    whole = result.read_bytes()
    result.write_bytes(whole[: len(whole) // 2])  # cut short: its signature is still there
    answer = client.get(f"/v1/transfers/{job_id}/result")
    assert answer.status_code == 410 and "lost" in answer.json()["error"], answer.text
    (server.data / "jobs" / job_id / "result.png").write_bytes(b"\x89PNG damaged")
    answer = client.get(f"/v1/transfers/{job_id}/result", params={"format": "jpg"})
    assert answer.status_code == 410 and "lost" in answer.json()["error"], answer.text
    (server.data / "jobs" / job_id / "result.png").unlink()
    for fmt in ("png", "jpg"):
        answer = client.get(f"/v1/transfers/{job_id}/result", params={"format": fmt})
        assert answer.status_code == 410 and "lost" in answer.json()["error"], answer.text


def test_cancel_running_removes_files(server, client):
    job_id = submit(client, {"size": 64, "iterations": 300}).json()["id"]
    running = wait_for(client, job_id, ("running",))
    assert running["status"] == "running"
    assert client.get(f"/v1/transfers/{job_id}/result").status_code == 409  # not done yet
    response = client.delete(f"/v1/transfers/{job_id}")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert events(client, job_id)[-1][0] == "cancelled"
    deadline = time.monotonic() + 60
    while folder_items(server, job_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert folder_items(server, job_id) == []  # images gone, the record answers
    assert client.get(f"/v1/transfers/{job_id}").json()["status"] == "cancelled"
    assert client.get(f"/v1/transfers/{job_id}/result").status_code == 409


def test_full_queue_answers_429_with_retry_after(server, client):
    accepted, refused = [], None
    for _ in range(5):  # one running, two queued, then the queue is full
        response = submit(client, {"size": 64, "iterations": 300})
        if response.status_code == 429:
            refused = response
            break
        assert response.status_code == 202
        accepted.append(response.json()["id"])
    assert refused is not None, "the queue of 2 never filled"
    assert int(refused.headers["retry-after"]) >= 1 and "queue is full" in refused.json()["error"]
    for job_id in accepted:  # a queued job is cancelled at once, its files removed
        assert client.delete(f"/v1/transfers/{job_id}").status_code == 200
    for job_id in accepted:
        wait_for(client, job_id, ("cancelled",))


def test_a_stalled_upload_frees_its_place_and_health_tells_a_lost_data_folder(tmp_path):
    """A client that sends headers and then stalls holds a queue place only until --upload-seconds; /healthz
    says failing (and uploads get 503) while the server cannot store an upload or its database was moved."""
    import socket

    args = ("--upload-seconds", 2, "--queue", 1, "--workers", 1, "--max-size", 64)
    with ServerProcess(tmp_path / "data", args=args) as proc, httpx.Client(base_url=proc.url, timeout=60) as c:
        stalled = socket.create_connection(("127.0.0.1", proc.port), timeout=30)
        head = "POST /v1/transfers HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        stalled.sendall((head + "Content-Length: 100000\r\n\r\n--b\r\n").encode())
        deadline = time.monotonic() + 10
        while c.get("/healthz").json()["uploading"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        full = submit(c, TINY)
        assert full.status_code == 429 and "1 being uploaded" in full.json()["error"], full.text
        answer = ""  # the server gives up on it after 2 s; its answer may come in more than one packet
        while "did not arrive" not in answer and (chunk := stalled.recv(4096).decode()):
            answer += chunk
        assert answer.startswith("HTTP/1.1 408") and "did not arrive within 2 s" in answer, answer
        stalled.close()
        assert submit(c, TINY).status_code == 202
        jobs = proc.data / "jobs"
        jobs.rename(proc.data / "moved")
        try:
            health = c.get("/healthz")
            assert health.status_code == 503 and health.json()["error"] == "the server cannot use its data folder"
        finally:
            (proc.data / "moved").rename(jobs)
        assert c.get("/healthz").status_code == 200
        database = proc.data / "jobs.sqlite3"
        database.rename(proc.data / "moved.sqlite3")  # the server would go on writing the moved file
        try:
            health, refused = c.get("/healthz"), submit(c, TINY)
            assert health.status_code == 503 and "job database (jobs.sqlite3) was moved" in health.json()["error"]
            assert refused.status_code == 503 and "restart the server" in refused.json()["error"], refused.text
        finally:
            (proc.data / "moved.sqlite3").rename(database)
        assert c.get("/healthz").status_code == 200


def test_upload_over_limit_is_413(client):
    response = submit(client, content=CONTENT + b"\0" * (1 << 20))
    assert response.status_code == 413 and "MB" in response.json()["error"]


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"init": "noise"}, "options.init: not accepted here"),
        ({"style_masks": "/etc/passwd"}, "options.style_masks: not accepted here"),
        ({"preset": "../../etc/passwd"}, "looks like a path"),
        ({"preserve_colors": "C:\\x"}, "looks like a path"),
        ({"size": "64"}, "is not an integer"),
        ({"size": True}, "is not an integer"),
        ({"style_weight": "heavy"}, "is not a number"),
        ({"size": 256}, "above this server's limit of 128"),
        ({"size": 64, "iterations": 500}, "above this server's limit of 400"),
        ({"optimizer": "sgd"}, "unknown optimizer 'sgd'"),
        ({"style_loss": "w3"}, "unknown style loss 'w3'"),
        ({"average": 1.5}, "options.average 1.5 is out of range"),
        ({"padding": "mirror"}, "unknown padding 'mirror'"),
        ({"style_at_final": "yes"}, 'options.style_at_final: "yes" is not true or false'),
        ({"size": 64, "style_blend": [1, 2]}, "options.style_blend has 2 weight(s) for 1 style image(s)"),
        ({"format": "tiff"}, "options.format 'tiff'"),
        ({"preset": "fast"}, "unknown preset 'fast'"),
        ({"size": 128, "style_scale": 8}, "options.style_scale 8 makes the style images 1024 px"),
        ({"size": 64, "style_scale": 9}, "options.style_scale 9 is out of range"),
        ({"preset": "x" * 200_000}, "options.preset: a string of 200000 characters"),
        ({"style_blend": [1] * 100_000}, "options.style_blend: a list of 100000 items"),
    ],
)
def test_bad_options_are_422_with_one_line(client, options, says):
    response = submit(client, options)
    assert response.status_code == 422
    reason = response.json()["error"]
    assert says in reason and "\n" not in reason and len(response.content) < 1000
    assert "--" not in reason and "NST_" not in reason  # a client sets options, not the server's flags


@pytest.mark.parametrize(
    ("content", "extra", "says"),
    [
        (b"hello, not an image", {}, "content image: not a PNG, JPEG, WebP, BMP or GIF image"),
        (b"", {}, "content image: the file is empty"),
        (png_header(20000, 20000), {}, "content image: the image is 20000x20000, more than"),
        (png_header(40, 40), {}, "content image: not a readable image"),  # the CLI's decode message
        (png_header(4000, 2), {}, "even at this server's largest options.size 128; crop it to at most 4:1"),
        (CONTENT, {"options": json.dumps({"size": 36})}, "the network needs at least 32 px on each side: give options"),
        (CONTENT, {"options": "[1, 2]"}, "options: send a JSON object"),
        (CONTENT, {"options": "{nope"}, "options: not valid JSON"),
        (CONTENT, {"options": '{"size": 48, "size": 2000}'}, "options.size: given twice"),
        (CONTENT, {"extra": "1"}, "unknown field 'extra'"),
    ],
)
def test_bad_uploads_are_422(server, client, content, extra, says):
    before = set((server.data / "jobs").iterdir())
    response = submit(client, content=content, form=extra)
    assert response.status_code == 422 and says in response.json()["error"], response.text
    assert set((server.data / "jobs").iterdir()) == before  # nothing was accepted
    assert not any((server.data / "incoming").iterdir())  # nothing was left half-received


def test_too_many_styles_says_how_many(client):
    files = [("content", ("c.png", CONTENT, "image/png"))] + [
        ("style", (f"{i}.png", STYLE, "image/png")) for i in range(5)
    ]
    response = client.post("/v1/transfers", files=files, data={"options": json.dumps(TINY)})
    assert response.status_code == 422 and "at most 4 styles" in response.json()["error"], response.text


def test_unknown_routes_answer_in_the_api_shape(client):
    for method, path, code in (("GET", "/v2/nothing", 404), ("PUT", "/v1/transfers", 405), ("GET", "/healthz/", 404)):
        response = client.request(method, path, headers={"Host": "evil.example"})
        assert response.status_code == code and set(response.json()) == {"error"}, response.text
        assert "location" not in response.headers  # no redirect built from the client's Host header
    assert "POST" in client.put("/v1/transfers").headers["allow"]  # a 405 says what is allowed
    head = client.head("/healthz")
    assert head.status_code == 200 and head.content == b""  # HEAD wherever GET is (health checks use it)


def test_missing_style_is_422(client):
    files = [("content", ("c.png", CONTENT, "image/png"))]
    response = client.post("/v1/transfers", files=files, data={"options": json.dumps(TINY)})
    assert response.status_code == 422 and "style" in response.json()["error"]


def test_two_options_fields_are_422(client):
    files = [("content", ("c.png", CONTENT, "image/png")), ("style", ("s.png", STYLE, "image/png"))]
    response = client.post("/v1/transfers", files=files, data={"options": [json.dumps(TINY), '{"size": 2000}']})
    assert response.status_code == 422 and "options: sent twice" in response.json()["error"], response.text


def test_token_is_needed_everywhere_but_the_page(server):
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        for method, path in (("GET", "/healthz"), ("GET", "/metrics"), ("POST", "/v1/transfers"), ("GET", "/v1/x")):
            response = anonymous.request(method, path)
            assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        wrong = anonymous.get("/healthz", headers={"Authorization": "Bearer nope"})  # RFC 6750, 3.1
        assert wrong.status_code == 401 and "token" in wrong.json()["error"]
        assert wrong.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        page = anonymous.get("/")
        assert page.status_code == 200 and '<script src="static/app.js">' in page.text
        assert anonymous.get("/static/paintings/starry_night.jpg").status_code == 200


def test_unknown_ids_are_404(client):
    assert client.get("/v1/transfers/" + "0" * 32).status_code == 404
    assert client.get("/v1/transfers/..%2F..%2Fetc").status_code == 404
    assert client.delete("/v1/transfers/" + "f" * 32).status_code == 404


def metric(text: str, name: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith(name + " "))
    return float(line.split()[-1])


def test_health_and_metrics(client):
    assert client.get("/healthz").json()["status"] == "ok"
    before = client.get("/metrics").text
    assert submit(client, {"seed": "x"}).status_code == 422
    after = client.get("/metrics").text
    refused = 'nst_requests_refused_total{code="422"}'
    assert metric(after, refused) == metric(before, refused) + 1 if refused in before else metric(after, refused) == 1
    for name in ("nst_queue_depth", "nst_running", "nst_workers", "nst_seconds_per_iteration_count"):
        assert metric(after, name) >= 0
    assert metric(after, "nst_workers") == 1


def test_restart_after_sigkill_resumes_and_serves(tmp_path):
    proc = ServerProcess(tmp_path / "data", args=("--workers", 1)).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=60) as client:
            finished = submit(client).json()["id"]
            wait_for(client, finished, ("done",))
            before = client.get(f"/v1/transfers/{finished}/result").content
            running = submit(client, {"size": 64, "iterations": 30}).json()["id"]
            queued = submit(client, {"size": 48, "iterations": 4}).json()["id"]
            wait_for(client, running, ("running",))
        proc.kill()
        proc.start()
        with httpx.Client(base_url=proc.url, timeout=60) as client:
            assert client.get(f"/v1/transfers/{finished}/result").content == before
            for job_id, size in ((running, (64, 48)), (queued, (48, 36))):
                assert wait_for(client, job_id)["status"] == "done"
                assert image_size(client.get(f"/v1/transfers/{job_id}/result").content) == size
            interrupted = submit(client, {"size": 64, "iterations": 300}).json()["id"]
            wait_for(client, interrupted, ("running",))
        proc.stop()  # SIGTERM (uvicorn re-raises it after its shutdown): the transfer stops, stays queued
        kept = record(proc.data, interrupted)
        assert kept is not None and kept["status"] == "queued" and kept["attempts"] == 1
    finally:
        proc.stop()


def test_non_loopback_without_token_is_refused_at_start(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NST_TOKEN"}
    command = [sys.executable, "-m", "nst", "serve", "--host", "0.0.0.0", "--port", str(free_port())]
    done = subprocess.run([*command, "--data", str(tmp_path)], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and "--token" in done.stderr


def test_without_the_extra_one_line(tmp_path):
    code = (
        "import sys; sys.modules['uvicorn'] = None; sys.argv = ['nst', 'serve']; from nst.cli.main import main; main()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (
        done.returncode == 2
        and done.stderr.strip()
        == 'error: nst serve needs the serve extra: pip install -e ".[cpu,serve]" in the nst clone'
    )


def test_expired_jobs_are_removed(tmp_path):
    from nst.serve.config import ServeConfig
    from nst.serve.events import Hub
    from nst.serve.metrics import Metrics
    from nst.serve.store import Job, JobStore
    from nst.serve.workers import Pool

    store = JobStore(tmp_path)
    jobs = [Job(id=f"{i:032x}", options={}, content="content", styles=["style1"]) for i in range(3)]
    for job, (status, age) in zip(jobs, (("done", 7200), ("done", 60), ("queued", 7200))):
        job.status, job.finished = status, time.time() - age
        _, staged = store.staging()
        (staged / "content").write_bytes(CONTENT)
        (staged / "style1").write_bytes(STYLE)
        store.accept(job, staged)
    pool = Pool(ServeConfig(data=tmp_path, keep_hours=1.0, workers=1), store, Hub(), Metrics())
    pool.jobs = {job.id: job for job in jobs}
    assert pool.expire() == 1
    assert not store.folder(jobs[0].id).exists() and store.folder(jobs[1].id).exists()
    assert store.folder(jobs[2].id).exists()  # queued jobs never expire


def test_progress_events_are_throttled_and_previews_spaced(monkeypatch):
    import numpy as np

    from nst.engine.progress import Progress
    from nst.serve import reporting
    from nst.serve.metrics import Metrics
    from nst.serve.store import Job

    clock = [100.0]
    monkeypatch.setattr(reporting.time, "monotonic", lambda: clock[0])

    class Hub:
        sent: list = []

        def watched(self, job_id):
            return True

        def publish(self, job_id, event, data):
            self.sent.append((clock[0], event))

    class Pool:
        hub, progress = Hub(), {}
        metrics = Metrics()

        def stopping(self, job_id):
            return False

        def status(self, job):
            return {"id": job.id}

    job = Job(id="a" * 32, options={}, content="content", styles=["style1"])
    reporter = reporting.Reporter(Pool(), job)
    image = np.full((1, 3, 8, 8), 128.0, np.float32)
    for i in range(100):  # 100 iterations in 1 s of the fake clock
        reporter(Progress(i, 100, {"loss": 1.0}, i * 0.01, image))
        clock[0] += 0.01
    times = [t for t, event in Pool.hub.sent if event == "progress"]
    assert 9 <= len(times) <= 11  # at most 10 a second, and the last iteration's
    assert all(b - a >= reporting.PROGRESS_INTERVAL - 1e-9 for a, b in zip(times[:-2], times[1:-1]))
    assert [event for _, event in Pool.hub.sent].count("preview") == 1  # one every 2 s


def test_create_app_is_importable_for_hosts(tmp_path):
    from nst.serve import create_app

    app = create_app(data=tmp_path / "data", token="t", workers=1, queue=3)
    paths = {route.path for route in app.routes}
    assert {"/v1/transfers", "/v1/transfers/{job_id}", "/v1/transfers/{job_id}/events", "/healthz"} <= paths
    assert app.state.server.config.queue == 3 and (tmp_path / "data" / "jobs").is_dir()


def test_docs_list_every_option_a_client_may_set():
    """README and docs/serve.md name the options the server accepts, all and only those (one definition)."""
    from pathlib import Path

    from nst.serve.intake import ALLOWED

    root = Path(__file__).resolve().parents[1]
    for doc in ("README.md", "docs/serve.md"):
        text = (root / doc).read_text()
        listed = re.search(r"`options` takes only[^`]*`([^`]+)`", text)
        assert listed and listed.group(1).split(", ") == list(ALLOWED), doc
