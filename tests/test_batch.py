"""`nst batch` and engine.batch: every image done once, style targets computed once, results of distinct
inputs never collide, reruns resume only with the same settings, processes sharing a folder share the work,
a bad image is reported while the rest finish."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import nst.engine.transfer as transfer_module
from nst.batch import claims
from nst.batch.runner import RECORDS, batch_transfer
from nst.engine.errors import NstError
from nst.engine.images import list_images, read_image, write_image

from .conftest import stripes, synthetic

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(size=48, iterations=2, scales=1)


@pytest.fixture
def folder(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        write_image(photos / f"p{i}.png", synthetic(40, 52, seed=i))
    (photos / "notes.txt").write_text("not an image, not listed")
    write_image(tmp_path / "style.png", stripes(40, 40))
    write_image(tmp_path / "other.png", stripes(40, 40)[::-1])
    return tmp_path


def run_batch(st, folder, out="out", style="style.png", **extra):
    return batch_transfer(st, folder / "photos", [str(folder / style)], folder / out, **(FAST | extra))


def test_batch_computes_style_targets_once_and_resumes(st, folder, monkeypatch):
    calls = []
    real = transfer_module.style_targets
    monkeypatch.setattr(transfer_module, "style_targets", lambda *a, **k: calls.append(1) or real(*a, **k))
    st._style_cache.clear()
    out = folder / "out"
    report = run_batch(st, folder, size=48)
    assert sorted(p.name for p in report.written) == ["p0.png.png", "p1.png.png", "p2.png.png"] and not report.failed
    assert len(calls) == 1
    assert read_image(out / "p1.png.png").shape == (37, 48, 3)
    again = run_batch(st, folder, size=48)
    assert not again.written and len(again.skipped) == 3 and len(calls) == 1


def test_inputs_sharing_a_stem_get_results_of_their_own(st, folder):
    write_image(folder / "photos" / "p0.jpg", synthetic(40, 52, seed=9))
    report = run_batch(st, folder)
    assert sorted(p.name for p in report.written) == ["p0.jpg.png", "p0.png.png", "p1.png.png", "p2.png.png"]
    assert not report.skipped and not report.failed


def test_output_folder_that_is_the_input_folder_is_refused(st, folder):
    with pytest.raises(NstError, match="is the folder of the content images"):
        batch_transfer(st, folder / "photos", [str(folder / "style.png")], folder / "photos" / ".", **FAST)
    assert sorted(p.name for p in (folder / "photos").iterdir()) == ["notes.txt", "p0.png", "p1.png", "p2.png"]
    report = run_batch(st, folder, out="photos/results")  # a subfolder: inputs stay inputs
    assert len(report.written) == 3
    assert len(list_images(folder / "photos")) == 3


def test_a_rerun_with_other_settings_refuses_and_overwrite_redoes(st, folder):
    first = run_batch(st, folder)
    assert len(first.written) == 3
    made = (folder / "out" / "p0.png.png").read_bytes()
    with pytest.raises(NstError, match=r"3 result\(s\) there were made otherwise .*style images.*--overwrite"):
        run_batch(st, folder, style="other.png")
    with pytest.raises(NstError, match="--style-weight"):
        run_batch(st, folder, style_weight=1000.0)
    assert (folder / "out" / "p0.png.png").read_bytes() == made  # nothing touched by the refusals
    redone = run_batch(st, folder, style="other.png", overwrite=True)
    assert len(redone.written) == 3
    assert len(run_batch(st, folder, style="other.png").skipped) == 3
    write_image(folder / "photos" / "p1.png", synthetic(40, 52, seed=7))  # an input replaced
    with pytest.raises(NstError, match="another p1.png"):
        run_batch(st, folder, style="other.png")
    (folder / "out" / RECORDS / "p2.png.png.json").unlink()
    with pytest.raises(NstError, match="no record"):
        run_batch(st, folder, style="other.png", overwrite=False)


def test_a_result_would_replace_a_style_image(st, folder):
    out = folder / "out"
    out.mkdir()
    write_image(out / "p1.png.png", stripes(40, 40))
    report = batch_transfer(st, folder / "photos", [str(out / "p1.png.png")], out, overwrite=True, **FAST)
    assert [p.name for p, _ in report.failed] == ["p1.png"] and "would replace a style image" in report.failed[0][1]
    assert len(report.written) == 2


def test_an_error_that_is_no_nst_error_fails_that_image_only(st, folder, monkeypatch):
    real = st.stylize

    def flaky(content, *args, **kwargs):
        if content.endswith("p1.png"):
            raise MemoryError("out of memory")
        return real(content, *args, **kwargs)

    monkeypatch.setattr(st, "stylize", flaky)
    report = run_batch(st, folder)
    assert len(report.written) == 2
    assert report.failed == [(folder / "photos" / "p1.png", "p1.png: MemoryError: out of memory")]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_claims_of_dead_processes_are_taken_over_and_live_ones_left(st, folder):
    records = folder / "out" / RECORDS
    records.mkdir(parents=True)
    owner = {"pid": _dead_pid(), "host": claims.socket.gethostname(), "started": "1", "token": "x"}
    (records / "p0.png.png.claim").write_text(json.dumps(owner))
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = {"pid": sleeper.pid, "host": claims.socket.gethostname(), "started": None, "token": "y"}
        (records / "p1.png.png.claim").write_text(json.dumps(live))
        report = run_batch(st, folder)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert sorted(p.name for p in report.written) == ["p0.png.png", "p2.png.png"]
    assert [p.name for p in report.busy] == ["p1.png.png"]
    assert "1 being made by another process" in report.summary()
    assert sorted(p.name for p in records.iterdir()) == ["p0.png.png.json", "p1.png.png.claim", "p2.png.png.json"]


def test_a_claim_is_taken_once():
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.claim"
        first = claims.claim(path)
        assert first is not None and claims.claim(path) is None  # our own live claim
        first.release()
        assert not path.exists() and claims.claim(path) is not None


DRIVER = """
import sys, time
from pathlib import Path
import nst.engine.transfer, nst.cli.main
go = Path(sys.argv[1])
deadline = time.time() + 120
while not go.exists() and time.time() < deadline:
    time.sleep(0.01)
sys.argv = ["nst", *sys.argv[2:]]
nst.cli.main.main()
"""


def test_two_processes_on_one_folder_share_the_work(folder):
    photos = folder / "photos"
    for i in range(3, 6):
        write_image(photos / f"p{i}.png", synthetic(40, 52, seed=i))
    go = folder / "go"
    args = ["batch", str(photos), str(folder / "style.png"), "-o", str(folder / "out"), "--size", "48"]
    args += ["--iterations", "2", "--scales", "1"]
    procs = [
        subprocess.Popen([sys.executable, "-c", DRIVER, str(go), *args], stdout=subprocess.PIPE, text=True, cwd=ROOT)
        for _ in range(2)
    ]
    time.sleep(1.0)
    go.touch()  # both have imported everything: they start together
    outputs = [proc.communicate(timeout=600)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    made = [{line.split(" -> ")[0] for line in out.splitlines() if " -> " in line} for out in outputs]
    assert made[0].isdisjoint(made[1]), outputs  # no image done twice
    assert made[0] | made[1] == {f"p{i}.png" for i in range(6)}
    assert sorted(p.name for p in (folder / "out").iterdir()) == [RECORDS] + [f"p{i}.png.png" for i in range(6)]
    assert not list((folder / "out" / RECORDS).glob("*.claim"))


def nst(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "nst", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def test_list_images_errors(tmp_path):
    with pytest.raises(NstError, match="not a folder"):
        list_images(tmp_path / "nope")
    with pytest.raises(NstError, match="no images"):
        list_images(tmp_path)


def test_bad_output_folders_are_refused_in_one_line(st, folder):
    photos, style = folder / "photos", [str(folder / "style.png")]
    (folder / "file").write_text("a file")
    cases = [(folder / "file" / "sub", {}, "cannot create the folder")]
    cases.append((folder / "new" / "out", {"suffix": ".xyz"}, "unknown output format"))
    cases.append((folder / "new" / "out", {"bit_depth": 16, "suffix": ".jpg"}, "16-bit output needs a .png"))
    if os.geteuid() != 0:  # root writes anywhere
        (folder / "locked").mkdir(mode=0o555)
        cases.append((folder / "locked" / "out", {}, "cannot create the folder"))
    for out, extra, message in cases:
        with pytest.raises(NstError, match=message.replace(".", r"\.")):
            batch_transfer(st, photos, style, out, **(FAST | extra))
    assert not (folder / "new").exists()  # nothing is created for a refused run
    r = nst("batch", photos, style[0], "-o", folder / "file", "--size", "48", "--iterations", "1")
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "is a file" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_batch_cli_reports_a_bad_image_and_finishes_the_rest(folder):
    (folder / "photos" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    cmd = ["batch", folder / "photos", folder / "style.png", "-o", folder / "out", "--size", "48"]
    cmd += ["--iterations", "2", "--scales", "1", "--suffix", "jpg", "--quiet"]
    r = nst(*cmd)
    assert r.returncode == 1, r.stderr
    assert "3 written, 0 skipped (already there), 1 failed" in r.stdout
    assert "broken.jpg" in r.stderr and "Traceback" not in r.stderr
    assert sorted(p.name for p in (folder / "out").iterdir()) == [RECORDS, "p0.png.jpg", "p1.png.jpg", "p2.png.jpg"]
    r = nst(*cmd)
    assert "0 written, 3 skipped (already there), 1 failed" in r.stdout
