"""Scale-out on a local Ray cluster (2 CPUs, tiny images): results equal to the runs without Ray, and a
worker process killed mid-run is restarted, its task retried, nothing lost or written twice."""

from __future__ import annotations

import os
import signal
import threading
import time
from functools import partial

import numpy as np
import pytest

from nst.engine.images import read_image, write_image

from .conftest import stripes, synthetic

TINY = {"size": 48, "iterations": 2, "scales": 1}


@pytest.fixture(scope="module")
def ray_cluster():
    try:
        import ray
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("ray is not installed (pip install -e '.[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray")
    (root / "photos").mkdir()
    for i in range(4):
        write_image(root / "photos" / f"p{i}.png", synthetic(40, 52, seed=i))
    write_image(root / "style.png", stripes(40, 40))
    return root


def mean_level_difference(a_dir, b_dir) -> float:
    names = sorted(p.name for p in a_dir.glob("*.png"))
    assert names and names == sorted(p.name for p in b_dir.glob("*.png"))
    return float(np.mean([np.abs(read_image(a_dir / n) - read_image(b_dir / n)).mean() for n in names]))


def test_batch_on_ray_equals_batch_here(ray_cluster, photos, st, tmp_path):
    from nst.batch.runner import batch_transfer
    from nst.distributed.batch import batch_on_ray
    from nst.distributed.pool import RayResources

    style = [str(photos / "style.png")]
    here = batch_transfer(st, photos / "photos", style, tmp_path / "here", **TINY)
    there = batch_on_ray(photos / "photos", style, tmp_path / "ray", ".png", None, RayResources(2, 1), **TINY)
    assert len(there.written) == 4 and not there.failed and len(here.written) == 4
    assert mean_level_difference(tmp_path / "here", tmp_path / "ray") <= 1.0
    again = batch_on_ray(photos / "photos", style, tmp_path / "ray", ".png", None, RayResources(2, 1), **TINY)
    assert len(again.skipped) == 4 and not again.written  # a rerun resumes: nothing redone


def test_a_killed_worker_is_restarted_and_its_task_retried(ray_cluster, photos, st, tmp_path):
    from nst.batch.runner import plan_batch
    from nst.distributed.batch import make_one
    from nst.distributed.pool import RayResources, run_all, start_actors

    many = tmp_path / "many"
    many.mkdir()
    for i in range(6):
        write_image(many / f"r{i}.png", synthetic(40, 52, seed=i))
    out = tmp_path / "out"
    job = plan_batch(st, many, [str(photos / "style.png")], out, **{**TINY, "iterations": 8})
    actors = start_actors(ray_cluster, RayResources(2, 1))
    pids = ray_cluster.get([a.pid.remote() for a in actors])
    results = []
    task = partial(make_one, job=job)
    runner = threading.Thread(target=lambda: results.extend(run_all(ray_cluster, actors, task, job.targets)))
    runner.start()
    deadline = time.monotonic() + 300
    while not any(out.glob("r*.png.png")) and time.monotonic() < deadline:  # both actors are busy by now
        time.sleep(0.05)
    os.kill(pids[0], signal.SIGKILL)
    runner.join(600)
    assert not runner.is_alive()
    assert len(results) == len(job.targets)  # every task answered once, the killed one through its retry
    assert sorted(p.name for p in out.glob("*.png")) == sorted(f"r{i}.png.png" for i in range(6))
    assert not list(out.glob(".*.part")) and all(o.status in ("written", "skipped") for o in results)
    assert not list((out / ".nst-batch").glob("*.claim"))  # no claim is left behind
    after = ray_cluster.get([a.pid.remote() for a in actors])
    assert pids[0] not in after  # the dead actor was restarted in a new process


def test_video_on_ray_in_chunks(ray_cluster, photos, tmp_path):
    from nst.distributed.pool import RayResources
    from nst.distributed.video import video_on_ray
    from nst.video.job import VideoJob

    frames = tmp_path / "frames"
    frames.mkdir()
    picture = synthetic(40, 64, seed=7)
    for t in range(5):
        write_image(frames / f"f{t}.png", picture[:, 2 * t : 2 * t + 48])
    style = [str(photos / "style.png")]
    here = VideoJob.plan(frames, style, tmp_path / "here", independent=True, options=TINY)
    here.run(__import__("nst.engine", fromlist=["StyleTransfer"]).StyleTransfer())
    there = VideoJob.plan(frames, style, tmp_path / "ray", independent=True, options=TINY)
    video_on_ray(there, None, RayResources(2, 1), chunk=3, overlap=1)
    assert mean_level_difference(tmp_path / "here", tmp_path / "ray") <= 1.0
    chunked = VideoJob.plan(frames, style, tmp_path / "chunked", options=TINY)
    video_on_ray(chunked, None, RayResources(2, 1), chunk=3, overlap=1)
    names = sorted(p.name for p in (tmp_path / "chunked").iterdir())
    assert names == [".nst-video.json"] + [f"{i:06d}.png" for i in range(5)]  # overlaps blended, asides gone


def test_nst_batch_with_ray_flag(ray_cluster, photos, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    args = [photos / "photos", photos / "style.png", "-o", tmp_path / "out", "--size", 48, "--iterations", 2]
    args += ["--scales", 1, "-q", "--ray", "--ray-actors", 1]
    r = subprocess.run(
        [sys.executable, "-m", "nst", "batch", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    assert "4 written" in r.stdout and len(list((tmp_path / "out").glob("*.png"))) == 4
    assert "Token authentication" not in r.stderr  # Ray's own notices do not reach the user


def nst_cli(*args, timeout=600, **kw):
    """`python -m nst ARGS` from the repository root, its output captured."""
    import subprocess
    import sys
    from pathlib import Path

    command = [sys.executable, "-m", "nst", *map(str, args)]
    root = Path(__file__).resolve().parents[1]
    return subprocess.run(command, capture_output=True, text=True, cwd=root, timeout=timeout, **kw)


def test_nst_batch_ray_quiet_tells_each_failure_as_here(ray_cluster, photos, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("p0.png", "p1.png"):
        (folder / name).write_bytes((photos / "photos" / name).read_bytes())
    whole = (photos / "photos" / "p2.png").read_bytes()
    (folder / "cut.png").write_bytes(whole[: len(whole) // 2])  # fails at decoding, in the worker
    common = [folder, photos / "style.png", "--size", 48, "--iterations", 2, "--scales", 1, "-q"]
    here = nst_cli("batch", *common, "-o", tmp_path / "here")
    there = nst_cli("batch", *common, "-o", tmp_path / "there", "--ray", "--ray-actors", 1)
    assert here.returncode == there.returncode == 1, there.stderr
    assert there.stdout == here.stdout == "2 written, 0 skipped (already there), 1 failed\n"
    failed = [line for line in here.stderr.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 1 and "cut.png: not a readable image" in failed[0]
    assert failed == [line for line in there.stderr.splitlines() if line.startswith("failed: ")]


def test_interrupted_nst_video_ray_counts_the_frames_it_keeps(photos, tmp_path):
    import re
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("ray")
    frames = tmp_path / "frames"
    frames.mkdir()
    picture = synthetic(40, 80, seed=7)
    for t in range(12):
        write_image(frames / f"f{t:02d}.png", picture[:, 2 * t : 2 * t + 48])
    out = tmp_path / "out"
    args = [frames, photos / "style.png", "-o", out, "--size", 48, "--iterations", 30, "--scales", 1]
    args += ["--ray", "--ray-actors", 2, "--ray-chunk", 3]
    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-m", "nst", "video", *map(str, args)]
    run = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    made = lambda: {p.name for p in out.rglob("0*.png")}  # frame files, in the folder and set aside
    deadline = time.monotonic() + 300
    while len(list(out.rglob("0*.png"))) < 3 and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.1)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    said = re.search(r"interrupted: (\d+) of 12 frames kept", err)
    assert said, err
    kept = made()
    time.sleep(2)
    assert made() == kept  # no actor wrote after the count
    assert int(said.group(1)) == len(kept) >= 2  # each frame once, wherever a chunk put it
    assert "Traceback" not in err


def test_ctrl_c_on_a_ray_batch_stops_it_in_one_line(photos, tmp_path):
    """Ctrl-C reaches the whole foreground process group, Ray's own processes included: the batch ends with
    exit 130 and one line, running tasks are cancelled before the actors go (Ray announces no retry that
    never comes), and nothing is written after the exit."""
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("ray")
    out = tmp_path / "out"
    args = [photos / "photos", photos / "style.png", "-o", out, "--size", 48, "--iterations", 400, "--scales", 1]
    command = [sys.executable, "-m", "nst", "batch", *map(str, args), "--ray", "--ray-actors", "2"]
    root = Path(__file__).resolve().parents[1]
    run = subprocess.Popen(
        command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 300
    while not list(out.glob("*.png")) and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.1)
    os.killpg(run.pid, signal.SIGINT)  # as a terminal's Ctrl-C does
    output, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert err.strip() == "interrupted; files written before the interruption are kept, none is half-written"
    assert "retried" not in output + err and "Traceback" not in output + err
    kept = sorted(p.name for p in out.glob("*.png"))
    time.sleep(2)
    assert sorted(p.name for p in out.glob("*.png")) == kept and len(kept) >= 1
