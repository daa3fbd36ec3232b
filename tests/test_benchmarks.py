"""The benchmark scripts: each answers --help, and each reads its images from the repository (examples/ or
--images), never from a folder beside it."""

import re
import subprocess
import sys
from pathlib import Path

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
