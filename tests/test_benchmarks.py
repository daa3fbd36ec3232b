"""The benchmark scripts: each answers --help, and each reads its images from the repository (examples/ or
--images), never from a folder beside it."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py") if p.stem not in ("__init__", "images"))


@pytest.mark.parametrize("name", SCRIPTS)
def test_benchmark_answers_help(name):
    r = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and "usage:" in r.stdout, r.stderr


def test_benchmarks_read_images_from_the_repository():
    for path in (ROOT / "benchmarks").glob("*.py"):
        code = path.read_text()
        assert not re.search(r"\.parent\s*/\s*\"shared\"|\.\./shared", code), path.name
    from benchmarks.images import EXAMPLES, image

    assert image(EXAMPLES, "starry_night.jpg").is_file()
    with pytest.raises(SystemExit, match="--images"):
        image(EXAMPLES, "tubingen.jpg")


def test_picture_measures_see_what_they_claim():
    """Each measure is zero for the image against itself where it compares, and grows with what it measures."""
    from benchmarks.picture_measures import colour_distance, speckle, structure_distance

    rng = np.random.default_rng(0)
    smooth = np.tile(np.linspace(0, 255, 64, dtype=np.float32)[None, :, None], (48, 1, 3))
    noisy = np.clip(smooth + rng.normal(0, 20, smooth.shape), 0, 255).astype(np.float32)
    assert speckle(smooth) < 0.5 < speckle(noisy)
    assert colour_distance(smooth, smooth) < 1e-6 < colour_distance(smooth, smooth * 0.5)
    features = {layer: rng.random((1, 8, 6, 6)).astype(np.float32) for layer in ("relu3_1", "relu4_1")}
    other = {layer: rng.random((1, 8, 6, 6)).astype(np.float32) for layer in ("relu3_1", "relu4_1")}
    assert structure_distance(features, features) == 0 < structure_distance(features, other)
