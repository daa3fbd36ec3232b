"""`nst` end to end on small images: outputs, metrics, the seed report, and one-line errors that keep
the user's files intact."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nst.engine.images import read_image, write_image

from .conftest import stripes, synthetic

ROOT = Path(__file__).resolve().parents[1]


def nst(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "nst", *map(str, args)], capture_output=True, text=True, cwd=cwd or ROOT, timeout=600
    )


@pytest.fixture
def files(tmp_path):
    write_image(tmp_path / "content.png", synthetic(60, 80))
    write_image(tmp_path / "style.jpg", stripes(64, 64))
    return tmp_path


def test_entry_point_is_installed():
    assert shutil.which("nst"), "pip install -e . should put `nst` on PATH"


def test_transfer_writes_the_image_and_metrics(files):
    out, metrics = files / "out.png", files / "m.jsonl"
    r = nst(
        "transfer",
        files / "content.png",
        files / "style.jpg",
        "-o",
        out,
        "--size",
        64,
        "--iterations",
        4,
        "--metrics",
        metrics,
        "--save-every",
        2,
        "--tv-weight",
        0.01,
    )
    assert r.returncode == 0, r.stderr
    assert read_image(out).shape == (48, 64, 3)
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [row["iteration"] for row in rows] == [0, 1, 2, 3]
    assert set(rows[0]) == {"iteration", "loss", "content", "style", "tv", "seconds"}
    assert rows[-1]["seconds"] >= rows[0]["seconds"] and rows[0]["tv"] > 0
    assert (files / "out_0002.png").is_file()
    assert "wrote" in r.stdout


def test_adam_two_styles_and_quiet(files):
    out = files / "out.webp"
    r = nst(
        "transfer",
        files / "content.png",
        files / "style.jpg",
        files / "content.png",
        "-o",
        out,
        "--size",
        48,
        "--iterations",
        3,
        "--optimizer",
        "adam",
        "--lr",
        4,
        "--style-blend",
        "2,1",
        "--pooling",
        "avg",
        "--init",
        "noise",
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and read_image(out).shape == (36, 48, 3)


def test_seed_preset_prints_the_assignment_report(files):
    r = nst(
        "transfer",
        files / "content.png",
        files / "style.jpg",
        "-o",
        files / "g.jpg",
        "--preset",
        "seed",
        "--size",
        64,
        "--iterations",
        3,
        cwd=files,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith("Iteration 0 : total cost = ")
    assert "content cost = " in r.stdout and "style cost = " in r.stdout
    assert (files / "output" / "0.png").is_file() and (files / "output" / "generated_image.jpg").is_file()


def test_info():
    r = nst("info")
    assert r.returncode == 0, r.stderr
    for key in ("model sha256", "providers", "CPUExecutionProvider", "numba cache"):
        assert key in r.stdout


@pytest.mark.parametrize("case", ["missing", "not_image", "empty", "layer", "unwritable", "format", "cuda", "blend"])
def test_errors_are_one_line_and_leave_files_alone(files, case):
    out = files / "out.png"
    out.write_bytes(b"precious")
    content, style = files / "content.png", files / "style.jpg"
    extra = []
    if case == "missing":
        content = files / "nope.png"
    elif case == "not_image":
        (files / "notes.png").write_text("hello")
        style = files / "notes.png"
    elif case == "empty":
        (files / "empty.jpg").write_bytes(b"")
        style = files / "empty.jpg"
    elif case == "layer":
        extra = ["--style-layers", "relu1_1,relu6_1"]
    elif case == "unwritable":
        out = files / "no" / "such" / "dir" / "out.png"
    elif case == "format":
        out = files / "out.xyz"
    elif case == "cuda":
        import onnxruntime as ort

        if "CUDAExecutionProvider" in ort.get_available_providers():
            pytest.skip("CUDA present")
        extra = ["--device", "cuda"]
    elif case == "blend":
        extra = ["--style-blend", "1,2"]
    r = nst("transfer", content, style, "-o", out, "--size", 48, "--iterations", 2, *extra)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr
    assert (files / "out.png").read_bytes() == b"precious"
    assert not list(files.glob("*.part"))


@pytest.mark.parametrize(
    "args, words",
    [
        (["transfer", "c.png", "s.png", "-o", "o.png", "--optimizer", "sgd"], ["'--optimizer'", "'sgd'"]),
        (["export", "DIR", "--pooling", "foo"], ["'--pooling'", "nst export --help"]),
        (["transfer", "c.png"], ["STYLE", "nst transfer --help"]),
        (["--bogus"], ["--bogus", "nst --help"]),
        (["bogus"], ["'bogus'"]),
        (["transfer", "c.png", "s.png", "-o"], ["'-o'", "nst transfer --help"]),
        (["serve", "--port", "-1"], ["'--port'", "nst serve --help"]),
    ],
)
def test_usage_errors_are_one_line(args, words, tmp_path):
    r = nst(*args, cwd=tmp_path)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert all(word in lines[0] for word in words), lines[0]
    assert list(tmp_path.iterdir()) == []


def test_onnxruntime_telemetry_is_off_unless_asked_for(files):
    """Recent onnxruntime builds keep a device id under ~/.cache/Microsoft and send usage events; nst sets
    ORT_DISABLE_TELEMETRY=1 unless the user set it (0 allows them)."""
    import os

    home = files / "home"
    home.mkdir()
    args = [sys.executable, "-m", "nst", "transfer", files / "content.png", files / "style.jpg", "-o", files / "o.png"]
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"} | {"HOME": str(home)}
    done = subprocess.run([*map(str, args), "--size", "48", "--iterations", "2"], env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not (home / ".cache" / "Microsoft").exists()


def test_no_arguments_show_the_help():
    r = nst()
    assert r.returncode == 0 and "Usage:" in r.stdout and "export" in r.stdout


def test_feature_flags_reach_the_engine(files):
    import numpy as np

    mask = np.zeros((60, 80, 3), np.uint8)
    mask[:, :40] = 255
    write_image(files / "mask.png", mask)
    out = files / "deep.png"
    r = nst(
        "transfer",
        files / "content.png",
        files / "style.jpg",
        "-o",
        out,
        "--size",
        64,
        "--scales",
        2,
        "--scale-iterations",
        "2,2",
        "--style-masks",
        files / "mask.png",
        "--preserve-colors",
        "ycbcr",
        "--match-colors",
        "meancov",
        "--normalize-gradients",
        "--bit-depth",
        16,
        "--init",
        "noisy-content",
    )
    assert r.returncode == 0, r.stderr
    import cv2

    raw = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.shape == (48, 64, 3)
    r = nst("transfer", files / "content.png", files / "style.jpg", "-o", files / "x.jpg", "--bit-depth", 16)
    assert r.returncode == 2 and "16-bit" in r.stderr


def test_picture_flags_reach_the_engine(files):
    """The W2 loss, averaging, one style size, sqrt(2) scales and replicate padding from the command line."""
    out = files / "w2.png"
    flags = ["--style-loss", "w2", "--average", "0.9", "--style-size", 64, "--padding", "replicate"]
    flags += ["--scales", 3, "--scale-ratio", 1.414, "--iterations", 3, "--no-detail", "--quiet"]
    r = nst("transfer", files / "content.png", files / "style.jpg", "-o", out, "--size", 96, *flags)
    assert r.returncode == 0, r.stderr
    assert read_image(out).shape == (72, 96, 3)
    r = nst("transfer", files / "content.png", files / "style.jpg", "-o", files / "x.png", "--style-loss", "w3")
    assert r.returncode == 2 and "w3" in r.stderr and not (files / "x.png").exists()


@pytest.mark.parametrize("args", [["--help"], ["transfer", "--help"], ["bench", "--help"], ["video", "--help"]])
def test_help_imports_no_heavy_module(args):
    # `nst --help` must start fast (issue 4: under 0.5 s); time is measured by hand, not asserted here:
    # what is asserted is the cause, that help loads none of the heavy libraries.
    code = (
        "import sys; sys.argv = ['nst', *sys.argv[1:]]\nimport nst.cli.main\ntry:\n    nst.cli.main.main()\n"
        "except SystemExit:\n    pass\nheavy = ('numba', 'onnxruntime', 'numpy', 'rich', 'cv2', 'scipy', 'onnx')\n"
        "print(sorted(name for name in heavy if name in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(("flag", "value"), [("--style-at-final", True), ("--style-per-scale", False), (None, None)])
def test_style_size_flags_become_options(flag, value):
    """--style-at-final/--style-per-scale reach the engine's options; neither leaves the preset's choice."""
    import typer
    from typer.testing import CliRunner

    from nst.cli.options import with_transfer_options

    got: dict = {}
    app = typer.Typer()
    app.command()(with_transfer_options(lambda options, run: got.update(options)))
    done = CliRunner().invoke(app, [flag] if flag else [])
    assert done.exit_code == 0, done.output
    assert got["style_at_final"] is value
