"""The three hosts of a bundle (hosts/python, hosts/node, hosts/web in headless Chromium) agree: the same
bundle and images, 20 Adam steps at 128 px, the same losses at every step and final images within a level."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.hosts_speed import CHROMIUM, browse

from .conftest import need

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
ARGS = ["--size", "128", "--iterations", "20", "--scales", "1", "--threads", "2"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    """A public-domain content and style pair as 128 px PNGs."""
    folder = tmp_path_factory.mktemp("pair")
    content, style = folder / "content.png", folder / "style.png"
    Image.open(EXAMPLES / "woman-with-hat-matisse.jpg").convert("RGB").resize((96, 128)).save(content)
    Image.open(EXAMPLES / "starry_night.jpg").convert("RGB").resize((128, 101)).save(style)
    return content, style


def records(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def run_host(command: list[str], out: Path) -> tuple[list[dict], np.ndarray]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-2000:]
    return records(done.stdout), np.asarray(Image.open(out).convert("RGB"), np.float64)


@pytest.fixture(scope="module")
def python_run(bundle_dir, pair, tmp_path_factory):
    out = tmp_path_factory.mktemp("py") / "out.png"
    host = ROOT / "hosts" / "python" / "stylize_bundle.py"
    return run_host(
        [sys.executable, str(host), *map(str, pair), "-o", str(out), "--bundle", str(bundle_dir), *ARGS], out
    )


def assert_same(run, reference, rel):
    (got, image), (want, want_image) = run, reference
    assert [r["iteration"] for r in got] == [r["iteration"] for r in want] and len(want) > 1
    np.testing.assert_allclose([r["loss"] for r in got], [r["loss"] for r in want], rtol=rel)
    assert image.shape == want_image.shape and np.abs(image - want_image).mean() <= 1.0


def test_python_host_runs_the_transfer(python_run):
    losses = [r["loss"] for r in python_run[0]]
    assert len(losses) == 20 and losses[-1] < 0.3 * losses[0]


def test_python_host_refuses_a_changed_bundle(bundle_dir, pair, tmp_path):
    broken = tmp_path / "bundle"
    shutil.copytree(bundle_dir, broken)
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest["files"]["step.onnx"] = "0" * 64
    (broken / "manifest.json").write_text(json.dumps(manifest))
    host = ROOT / "hosts" / "python" / "stylize_bundle.py"
    out = tmp_path / "out.png"
    done = subprocess.run([sys.executable, str(host), *map(str, pair), "-o", str(out), "--bundle", str(broken)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode != 0 and "does not match" in done.stderr and not out.exists()


def node_ready() -> None:
    need(shutil.which("node") is not None, "node is not on PATH")
    need((ROOT / "hosts" / "node" / "node_modules" / "onnxruntime-node").is_dir(), "run npm ci in hosts/node")


def test_node_host_matches_python(bundle_dir, pair, python_run, tmp_path):
    node_ready()
    out = tmp_path / "out.png"
    script = ROOT / "hosts" / "node" / "stylize.mjs"
    run = run_host(["node", str(script), *map(str, pair), "-o", str(out), "--bundle", str(bundle_dir), *ARGS], out)
    assert_same(run, python_run, 1e-4)


def test_node_host_bad_input_is_one_line(bundle_dir, pair, tmp_path):
    node_ready()
    script = ROOT / "hosts" / "node" / "stylize.mjs"
    for extra in (["--bundle", str(tmp_path / "none")], ["--bundle", str(bundle_dir), "--size", "x"]):
        done = subprocess.run(["node", str(script), *map(str, pair), "-o", str(tmp_path / "o.png"), *extra],
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 2 and done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1


@pytest.fixture(scope="module")
def web_folder(tmp_path_factory, pair):
    """`nst export --web` into a fresh folder, with the pair beside the page."""
    need((ROOT / "hosts" / "web" / "node_modules" / "onnxruntime-web").is_dir(), "run npm ci in hosts/web")
    from nst.engine.bundle import export_folder

    folder = tmp_path_factory.mktemp("web")
    export_folder(folder, web=True)
    for path in pair:
        shutil.copy(path, folder / path.name)
    return folder


def browser_ready() -> None:
    need(Path(CHROMIUM).exists(), f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        need(False, "playwright for Python is not installed (pip install -e '.[test]')")


def test_browser_matches_python(web_folder, pair, python_run):
    query = "content=content.png&style=style.png&size=128&iterations=20&scales=1&threads=2&backend=wasm&autorun=1"
    browser_ready()
    started = time.perf_counter()
    run = browse(web_folder, query, "window.nstRun.done")
    assert run["error"] is None, run["error"]
    assert run["isolated"] and run["backend"] == "wasm, 2 thread(s)", "COOP/COEP headers give WebAssembly threads"
    h, w = run["size"]
    image = np.asarray(run["pixels"], np.float64).reshape(h, w, 4)[:, :, :3]
    assert_same((run["records"], image), python_run, 1e-3)
    assert time.perf_counter() - started < 900


def test_browser_webgpu_matches_python(web_folder, pair, tmp_path):
    """WebGPU (without a GPU, Chromium's SwiftShader adapter, which emulates every kernel: so small and short)."""
    browser_ready()
    args = ["--size", "32", "--iterations", "3", "--scales", "1"]
    host = ROOT / "hosts" / "python" / "stylize_bundle.py"
    bundle = web_folder / "bundle"
    want = run_host([sys.executable, str(host), *map(str, pair), "--bundle", str(bundle), *args, "-o",
                     str(tmp_path / "p.png")], tmp_path / "p.png")  # fmt: skip
    query = "content=content.png&style=style.png&size=32&iterations=3&scales=1&backend=webgpu&autorun=1"
    run = browse(web_folder, query, "window.nstRun.done", webgpu=True)
    assert run["error"] is None, run["error"]
    assert run["backend"].startswith("webgpu") and run["adapter"]["vendor"], run.get("adapter")
    h, w = run["size"]
    image = np.asarray(run["pixels"], np.float64).reshape(h, w, 4)[:, :, :3]
    assert_same((run["records"], image), want, 1e-3)


def test_browser_refuses_webgpu_it_lacks(web_folder):
    browser_ready()
    run = browse(web_folder, "content=content.png&style=style.png&backend=webgpu&autorun=1", "window.nstRun.done")
    assert "no WebGPU adapter" in run["error"]


def test_node_and_python_resize_and_schedule_alike(bundle_dir, pair, tmp_path):
    """Coarse to fine at 96 px (three scales, resized images, each finer start): the same losses."""
    node_ready()
    args = ["--size", "96", "--iterations", "2", "--threads", "2"]
    common = [*map(str, pair), "--bundle", str(bundle_dir), *args, "-o"]
    host = ROOT / "hosts" / "python" / "stylize_bundle.py"
    python = run_host([sys.executable, str(host), *common, str(tmp_path / "p.png")], tmp_path / "p.png")
    script = ROOT / "hosts" / "node" / "stylize.mjs"
    node = run_host(["node", str(script), *common, str(tmp_path / "n.png")], tmp_path / "n.png")
    assert [r["size"] for r in python[0]] == [32, 32, 48, 48, 96, 96] == [r["size"] for r in node[0]]
    np.testing.assert_allclose([r["loss"] for r in node[0]], [r["loss"] for r in python[0]], rtol=1e-4)
    assert np.abs(node[1] - python[1]).mean() <= 1.0
