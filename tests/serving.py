"""Helpers of the server tests: the serve extra (skip locally without it, fail under CI), tiny images, jobs."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import time

import pytest

from .conftest import stripes, synthetic


def need(module: str, why: str):
    """Import a test dependency; without it skip (locally) or fail (CI=true), saying how to install it."""
    if os.environ.get("CI", "").lower() == "true":
        return importlib.import_module(module)
    return pytest.importorskip(module, reason=f"{why}: pip install -e '.[serve,serve-test]'")


def png(array) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


CONTENT = png(synthetic(48, 64, seed=1))
STYLE = png(stripes(48, 48))
TINY = {"size": 48, "iterations": 3}


def submit(
    client, options: dict | None = None, content: bytes = CONTENT, style: bytes = STYLE, form: dict | None = None
):
    """POST /v1/transfers with one content and one style image (`form`: fields to add or replace)."""
    files = [("content", ("content.png", content, "image/png")), ("style", ("style.png", style, "image/png"))]
    data = {"options": json.dumps(TINY if options is None else options)} | (form or {})
    return client.post("/v1/transfers", files=files, data=data)


def record(data, job_id: str) -> dict | None:
    """A job's record as the server committed it (its database under `data`), or None when there is none."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(data / "jobs.sqlite3", timeout=30)) as db:
        row = db.execute("SELECT record FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return json.loads(row[0]) if row else None


def wait_for(client, job_id: str, statuses=("done", "failed", "cancelled"), timeout: float = 240.0) -> dict:
    """Poll a job until its status is one of `statuses` (bounded in time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/v1/transfers/{job_id}").json()
        if body["status"] in statuses:
            return body
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {body['status']} after {timeout} s")


def events(client, job_id: str, timeout: float = 240.0) -> list[tuple[str, dict]]:
    """Every server-sent event of a job until its final one."""
    found, name = [], None
    with client.stream("GET", f"/v1/transfers/{job_id}/events", timeout=timeout) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                found.append((name, json.loads(line[6:])))
                if name in ("done", "failed", "cancelled"):
                    break
    return found
