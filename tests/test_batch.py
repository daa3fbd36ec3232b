"""`nst batch` and engine.batch: every image done once, style targets computed once, reruns resume,
a bad image is reported while the rest finish."""

import subprocess
import sys
from pathlib import Path

import nst.engine.transfer as transfer_module
import pytest
from nst.engine.batch import batch_transfer, list_images
from nst.engine.errors import NstError
from nst.engine.images import read_image, write_image

from .conftest import stripes, synthetic

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def folder(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        write_image(photos / f"p{i}.png", synthetic(40, 52, seed=i))
    (photos / "notes.txt").write_text("not an image, not listed")
    write_image(tmp_path / "style.png", stripes(40, 40))
    return tmp_path


def test_batch_computes_style_targets_once_and_resumes(st, folder, monkeypatch):
    calls = []
    real = transfer_module.style_targets
    monkeypatch.setattr(transfer_module, "style_targets", lambda *a, **k: calls.append(1) or real(*a, **k))
    st._style_cache.clear()
    out = folder / "out"
    report = batch_transfer(st, folder / "photos", [str(folder / "style.png")], out, size=48, iterations=2)
    assert sorted(p.name for p in report.written) == ["p0.png", "p1.png", "p2.png"] and not report.failed
    assert len(calls) == 1
    assert read_image(out / "p1.png").shape == (37, 48, 3)
    again = batch_transfer(st, folder / "photos", [str(folder / "style.png")], out, size=48, iterations=2)
    assert not again.written and len(again.skipped) == 3 and len(calls) == 1


def test_list_images_errors(tmp_path):
    with pytest.raises(NstError, match="not a folder"):
        list_images(tmp_path / "nope")
    with pytest.raises(NstError, match="no images"):
        list_images(tmp_path)


def test_batch_cli_reports_a_bad_image_and_finishes_the_rest(folder):
    (folder / "photos" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    cmd = [
        sys.executable,
        "-m",
        "nst",
        "batch",
        str(folder / "photos"),
        str(folder / "style.png"),
        "-o",
        str(folder / "out"),
        "--size",
        "48",
        "--iterations",
        "2",
        "--suffix",
        ".jpg",
        "--quiet",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 1, r.stderr
    assert "3 written, 0 skipped (already there), 1 failed" in r.stdout
    assert "broken.jpg" in r.stderr and "Traceback" not in r.stderr
    assert sorted(p.name for p in (folder / "out").iterdir()) == ["p0.jpg", "p1.jpg", "p2.jpg"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert "0 written, 3 skipped (already there), 1 failed" in r.stdout
