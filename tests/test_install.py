"""Packaging (issue 10, section 1): one import name after a regular install, `.[gpu]` resolving to
onnxruntime-gpu with NVIDIA's wheels and never beside onnxruntime, and `nst info` naming a mixed runtime."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = ("pyproject.toml", "README.md", "LICENSE")


def _sources() -> list[str]:
    """The files a build reads: the project files and the package."""
    return [*FILES, "nst"]


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


def _needs_pypi() -> None:
    """These tests build and resolve through PyPI: without it they skip, except in CI where they must run."""
    if not _pypi_reachable() and os.environ.get("CI") != "true":
        pytest.skip("pypi.org is not reachable")


def _pip(*args: str, cwd: Path, python: str | Path = sys.executable) -> subprocess.CompletedProcess:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return subprocess.run([python, "-m", "pip", *args], capture_output=True, text=True, cwd=cwd, timeout=900, env=env)


def _source_copy(tmp_path: Path) -> Path:
    """The project's installable files in a scratch folder, so a build leaves nothing in the checkout."""
    copy = tmp_path / "src"
    copy.mkdir()
    for name in _sources():
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
        elif source.is_file():
            shutil.copy2(source, copy / name)
    return copy


def test_a_regular_install_adds_only_the_nst_import_name(tmp_path):
    _needs_pypi()
    target = tmp_path / "site"
    r = _pip("install", "--no-deps", "--target", str(target), str(_source_copy(tmp_path)), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    names = sorted(p.name for p in target.iterdir())
    assert [n for n in names if not n.endswith(".dist-info") and n != "bin"] == ["nst"], names
    assert (target / "nst" / "engine" / "transfer.py").is_file() and (target / "nst" / "models").is_dir()
    assert (target / "bin" / "nst").is_file()


# What a wheel must carry besides the Python modules: the model, and the server's page with its paintings.
WHEEL_DATA = (
    "nst/models/vgg19_features.onnx",
    "nst/serve/static/index.html",
    "nst/serve/static/app.js",
    "nst/serve/static/style.css",
)


def test_a_built_wheel_holds_the_model_and_the_page_and_runs_in_a_fresh_environment(tmp_path):
    """A wheel built from the project, installed with its [cpu] extra into a new venv (nothing of this
    environment or checkout visible), reports its model and makes a real transfer."""
    _needs_pypi()
    wheels = tmp_path / "wheels"
    r = _pip("wheel", "--no-deps", "--wheel-dir", str(wheels), str(_source_copy(tmp_path)), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    (wheel,) = wheels.glob("nst-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {n.split("/")[0] for n in names} == {"nst", wheel.name.split("-py3")[0] + ".dist-info"}, sorted(names)
    assert set(WHEEL_DATA) <= names, sorted(set(WHEEL_DATA) - names)
    assert any(n.startswith("nst/serve/static/paintings/") and n.endswith(".jpg") for n in names)
    assert {"nst/engine/graphs/vgg.py", "nst/batch/claims.py", "nst/bench/chart.py", "nst/seedreport.py"} <= names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python, nst = venv / "bin" / "python", venv / "bin" / "nst"
    r = _pip("install", "--quiet", f"{wheel}[cpu]", cwd=tmp_path, python=python)
    assert r.returncode == 0, r.stderr[-3000:]
    site = f"{venv}/lib/"
    r = subprocess.run([nst, "info"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0 and site in r.stdout and "vgg19_features.onnx" in r.stdout, r.stdout + r.stderr
    page = "import importlib.resources as r; print(r.files('nst.serve').joinpath('static', 'index.html').is_file())"
    r = subprocess.run([python, "-c", page], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.stdout.strip() == "True", r.stdout + r.stderr
    out = tmp_path / "out.png"
    content, style = ROOT / "examples" / "woman-with-hat-matisse.jpg", ROOT / "examples" / "starry_night.jpg"
    command = [nst, "transfer", content, style, "-o", out, "--size", "64", "--iterations", "3", "--quiet"]
    r = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert r.returncode == 0 and out.stat().st_size > 0, r.stdout + r.stderr


def test_the_gpu_extra_resolves_to_onnxruntime_gpu_with_nvidia_wheels(tmp_path):
    _needs_pypi()
    report = tmp_path / "report.json"
    r = _pip("install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report), ".[gpu]", cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    names = {item["metadata"]["name"].lower().replace("_", "-") for item in json.loads(report.read_text())["install"]}
    assert "onnxruntime-gpu" in names and "onnxruntime" not in names, sorted(names)
    assert any(n.startswith("nvidia-cuda-runtime") for n in names), sorted(names)
    assert any(n.startswith("nvidia-cudnn") for n in names), sorted(names)


@pytest.mark.parametrize(
    "names,expected",
    [
        (["numpy", "onnxruntime"], None),
        (["numpy", "onnxruntime-gpu", "nvidia-cudnn-cu13"], None),
        (["onnxruntime", "onnxruntime-gpu"], "both onnxruntime and onnxruntime-gpu"),
        (["numpy"], 'pip install -e ".[cpu]"'),
    ],
)
def test_runtime_problem_names_a_mixed_or_missing_runtime(names, expected):
    from nst.engine.diagnostics import REPAIR, runtime_problem

    problem = runtime_problem(names)
    if expected is None:
        assert problem is None
    else:
        assert expected in problem and "\n" not in problem
        assert (REPAIR in problem) == ("both" in expected)


def test_installed_distributions_are_normalised(monkeypatch):
    from nst.engine import diagnostics

    class Dist:
        def __init__(self, name):
            self.metadata = {"Name": name}

    fake = [Dist("onnxruntime_gpu"), Dist("ONNXRuntime"), Dist("nvidia-cudnn-cu13")]
    monkeypatch.setattr(diagnostics.metadata, "distributions", lambda: fake)
    assert diagnostics.onnxruntime_packages() == ["onnxruntime", "onnxruntime-gpu"]
    assert diagnostics.nvidia_wheels() and "both" in diagnostics.runtime_problem()


def test_nst_info_names_a_mixed_environment():
    code = (
        "import sys\nfrom importlib import metadata\n"
        "class D:\n    def __init__(self, n):\n        self.metadata = {'Name': n}\n"
        "real = list(metadata.distributions())\n"
        "metadata.distributions = lambda: real + [D('onnxruntime'), D('onnxruntime-gpu')]\n"
        "sys.argv = ['nst', 'info']\nfrom nst.cli.main import main\nmain()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "both onnxruntime and onnxruntime-gpu" in r.stdout and "pip uninstall -y onnxruntime" in r.stdout


_WITHOUT_ORT = "import sys\nsys.modules['onnxruntime'] = None  # as if no onnxruntime were installed\n"


@pytest.mark.parametrize("command", ["transfer", "batch", "info"])
def test_without_onnxruntime_a_command_fails_with_one_line(tmp_path, command):
    from nst.engine.images import write_image

    from .conftest import stripes

    (tmp_path / "in").mkdir()
    write_image(tmp_path / "in" / "a.png", stripes(40, 40))
    args = {
        "transfer": ["transfer", tmp_path / "in" / "a.png", tmp_path / "in" / "a.png", "-o", tmp_path / "o.png"],
        "batch": ["batch", tmp_path / "in", tmp_path / "in" / "a.png", "-o", tmp_path / "out"],
        "info": ["info"],
    }[command]
    code = _WITHOUT_ORT + "from nst.cli.main import main\nsys.argv = ['nst', *sys.argv[1:]]\nmain()\n"
    r = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    if command == "info":  # info still reports, and says what is missing
        assert r.returncode == 0 and 'pip install -e ".[cpu]"' in r.stdout, r.stdout + r.stderr
        return
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "onnxruntime is not installed" in lines[0] and '".[cpu]"' in lines[0], r.stderr
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "out").exists()


def test_cuda_preloads_nvidia_libraries_when_the_wheels_are_there(monkeypatch):
    from nst.engine import diagnostics, runtime

    calls = []

    class GpuRuntime:
        @staticmethod
        def get_available_providers():
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]

        @staticmethod
        def preload_dlls():
            calls.append("preload")

    monkeypatch.setitem(sys.modules, "onnxruntime", GpuRuntime)
    monkeypatch.setattr(diagnostics, "installed_distributions", lambda: ["onnxruntime-gpu", "nvidia-cudnn-cu13"])
    assert runtime.resolve_device("cuda").name == "cuda" and calls == ["preload"]
    monkeypatch.setattr(diagnostics, "installed_distributions", lambda: ["onnxruntime-gpu"])
    runtime.resolve_device("cuda")
    assert calls == ["preload"]  # libraries from the system: nothing to preload
    monkeypatch.delattr(GpuRuntime, "preload_dlls")  # an older onnxruntime-gpu
    monkeypatch.setattr(diagnostics, "installed_distributions", lambda: ["onnxruntime-gpu", "nvidia-cudnn-cu13"])
    assert runtime.resolve_device("cuda").name == "cuda"
