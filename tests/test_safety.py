"""No data lost, no silent wrong result (issue 10, section 4): outputs never replace inputs, a non-finite
loss stops the run, snapshots of each scale survive, and mistakes end in one line, not a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from nst.engine import NstError, Progress
from nst.engine.images import read_image, write_image

from .conftest import stripes, synthetic

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--size", 32, "--iterations", 2, "--scales", 1, "--quiet"]


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def nst(capsys, monkeypatch):
    """The `nst` command run in this process (its libraries load once for all these tests; test_cli.py runs
    it as a separate program): returns the exit status and what it printed."""
    from nst.cli.main import main

    def run(*args, cwd=None) -> Run:
        monkeypatch.setattr(sys, "argv", ["nst", *map(str, args)])
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return Run(code, out, err)

    return run


def one_line_error(r, *words):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def files(tmp_path):
    write_image(tmp_path / "content.png", synthetic(40, 40))
    write_image(tmp_path / "style.png", stripes(40, 40))
    return tmp_path


def snapshot(files):
    return {p.name: p.read_bytes() for p in files.iterdir() if p.is_file()}


# Case 1 and 2: an output is never one of the inputs, and nothing is opened for writing before the checks.


def test_metrics_on_the_content_image_is_refused_and_the_photo_kept(files, nst):
    before = snapshot(files)
    r = nst("transfer", files / "content.png", files / "style.png", "-o", files / "out.png", "--metrics",
            files / "content.png", *FAST)  # fmt: skip
    one_line_error(r, "content image")
    assert snapshot(files) == before


def test_metrics_file_is_untouched_when_a_later_check_fails(files, nst):
    (files / "m.jsonl").write_text("last run's metrics\n")
    before = snapshot(files)
    r = nst("transfer", files / "content.png", files / "nope.png", "-o", files / "out.png", "--metrics",
            files / "m.jsonl", *FAST)  # fmt: skip
    one_line_error(r, "no such file")
    assert snapshot(files) == before


@pytest.mark.parametrize("which", ["content", "style_link", "hard_link", "init", "mask", "metrics_style", "snapshot"])
def test_an_output_that_is_an_input_is_refused(files, which, nst):
    write_image(files / "mask.png", np.full((40, 40, 3), 255, np.uint8))
    os.symlink(files / "style.png", files / "link.png")
    os.link(files / "content.png", files / "hard.png")
    out, extra = files / "out.png", []
    if which == "content":
        out = files / "content.png"
    elif which == "style_link":
        out = files / "link.png"
    elif which == "hard_link":
        out = files / "hard.png"
    elif which == "init":
        write_image(files / "init.png", synthetic(40, 40, seed=5))
        out, extra = files / "init.png", ["--init", files / "init.png"]
    elif which == "mask":
        out, extra = files / "mask.png", ["--style-masks", files / "mask.png"]
    elif which == "metrics_style":
        extra = ["--metrics", files / "sub" / ".." / "style.png"]
        (files / "sub").mkdir()
    elif which == "snapshot":  # the snapshot of iteration 1 would be named out_0001.png
        write_image(files / "out_0001.png", synthetic(40, 40, seed=2))
        extra = ["--save-every", 1, "--style-masks", files / "out_0001.png"]
    before = snapshot(files)
    r = nst("transfer", files / "content.png", files / "style.png", "-o", out, *extra, *FAST)
    one_line_error(r, "is also")
    assert snapshot(files) == before


def test_metrics_replace_the_old_file_in_one_step(files):
    from nst.engine.progress import MetricsWriter

    (files / "m.jsonl").write_text("old\n")
    writer = MetricsWriter(files / "m.jsonl")
    writer(Progress(0, 2, {"loss": 1.0, "content": 0.5, "style": 0.5, "tv": 0.0}, 0.1, np.zeros((1, 3, 4, 4))))
    assert (files / "m.jsonl").read_text() == "old\n"  # still the old file while the run goes on
    writer.close()
    assert (files / "m.jsonl").read_text().startswith('{"iteration": 0')
    assert sorted(p.name for p in files.iterdir()) == ["content.png", "m.jsonl", "style.png"]


# Case 6: a non-finite loss stops the run with one line; blends are checked without overflow.


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs", "lbfgsb"])
def test_a_non_finite_loss_is_an_error(st, optimizer):
    with pytest.raises(NstError, match="not finite"):
        st.transfer(
            synthetic(40, 40),
            [stripes(40, 40)],
            size=32,
            iterations=4,
            optimizer=optimizer,
            style_weight=1e38,
            scales=1,
            style_loss="gram",
        )  # fmt: skip  (Gram values overflow float32)


@pytest.mark.parametrize("path", ["split", "fused"])
def test_adam_with_a_huge_weight_writes_nothing(files, path, nst):
    r = nst("transfer", files / "content.png", files / "style.png", "-o", files / "out.png", "--optimizer", "adam",
            "--style-weight", "1e38", "--style-loss", "gram", "--path", path, *FAST)  # fmt: skip
    one_line_error(r, "not finite")
    assert not (files / "out.png").exists()


def test_blend_weights_do_not_overflow():
    from nst.engine.checks import style_blend

    assert style_blend("1e308,1e308", 2) == [0.5, 0.5]
    assert style_blend([3e307, 1e308], 2) == pytest.approx([0.230769, 0.769231], rel=1e-5)
    for bad in ("inf,1", "nan,1", "0,0", "-1,2", "1e309,1"):
        with pytest.raises(NstError, match="style-blend"):
            style_blend(bad, 2)


# Case 7: every scale keeps its own snapshots.


def test_snapshots_of_each_scale_are_kept(tmp_path):
    from nst.engine.progress import SaveEvery

    save = SaveEvery(tmp_path / "out.png", 2)
    for scale, side in ((0, 8), (1, 16)):
        save(Progress(2, 4, {}, 0.0, np.zeros((1, 3, side, side), np.float32), scale=scale, scales=2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out_s1_0002.png", "out_s2_0002.png"]
    assert read_image(tmp_path / "out_s1_0002.png").shape == (8, 8, 3)
    single = SaveEvery(tmp_path / "one.png", 2)
    single(Progress(2, 4, {}, 0.0, np.zeros((1, 3, 8, 8), np.float32)))
    assert (tmp_path / "one_0002.png").is_file()


# Case 10: one line instead of a traceback.


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_seed_out_of_range(files, st, seed, nst):
    with pytest.raises(NstError, match="--seed"):
        st.options(init="noise", seed=seed)
    if seed < 0:
        r = nst("transfer", files / "content.png", files / "style.png", "-o", files / "o.png", "--init", "noise",
                "--seed", seed, *FAST)  # fmt: skip
        one_line_error(r, "--seed")


def test_seed_report_writes_beside_the_output_not_into_the_working_folder(files, tmp_path_factory, nst):
    cwd = tmp_path_factory.mktemp("cwd")
    out_dir = files / "results"
    out_dir.mkdir()
    r = nst("transfer", files / "content.png", files / "style.png", "-o", out_dir / "g.jpg", "--preset", "seed",
            "--size", 32, "--iterations", 2, cwd=cwd)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert list(cwd.iterdir()) == []
    assert (out_dir / "output" / "0.png").is_file() and (out_dir / "output" / "generated_image.jpg").is_file()


def test_seed_report_lives_at_the_edge():
    """The assignment's reporting is built on the engine, and the engine uses nothing of it (its __init__ only
    keeps the old name nst.engine.SeedReport, loaded on first use)."""
    import nst.engine
    from nst.seedreport import SeedReport

    assert SeedReport.__module__ == "nst.seedreport" and nst.engine.SeedReport is SeedReport
    engine = [p for p in sorted((ROOT / "nst" / "engine").rglob("*.py")) if p.name != "__init__.py"]
    assert engine and not [p.name for p in engine if "seedreport" in p.read_text().lower()]


@pytest.mark.parametrize("flag", ["-o", "--metrics"])
def test_a_folder_that_takes_no_files_fails_before_the_run(files, flag, nst):
    args = ["-o", "/proc/nst-out.png"] if flag == "-o" else ["-o", files / "o.png", "--metrics", "/proc/m.jsonl"]
    r = nst("transfer", files / "content.png", files / "style.png", *args, "--size", 32, "--iterations", 5000)
    one_line_error(r, "/proc")
    assert not (files / "o.png").exists()


@pytest.mark.parametrize(
    "call",
    [
        lambda st: st.transfer(synthetic(40, 40), None, size=32, iterations=1),
        lambda st: st.transfer(synthetic(40, 40), [stripes(40, 40)], size="64", iterations=1),
        lambda st: st.transfer(synthetic(40, 40), [stripes(40, 40)], size=32, iterations=1, callback=5),
        lambda st: st.stylize(synthetic(40, 40), 7, size=32, iterations=1),
        lambda st: st.stylize(None, [stripes(40, 40)], size=32, iterations=1),
        lambda st: st.prepare(synthetic(40, 40), [stripes(40, 40)], size=32, iterations=2.5),
        lambda st: st.prepare(synthetic(40, 40), [stripes(40, 40)], size=32, style_weight="1e3"),
        lambda st: st.prepare(synthetic(40, 40), [stripes(40, 40)], size=32, seed="3"),
        lambda st: st.prepare(synthetic(40, 40), [stripes(40, 40)], size=32, init=5),
        lambda st: st.prepare(synthetic(40, 40), [stripes(40, 40)], size=32, style_layers=5),
        lambda st: st.prepare(synthetic(40, 40), [stripes(40, 40)], preset=5),
        lambda st: st.prepare(synthetic(40, 40), [stripes(40, 40)], preset=["nst"]),
        lambda st: st.prepare(synthetic(40, 40), [stripes(40, 40)], size=True),
        lambda st: st.transfer(synthetic(40, 40), [stripes(40, 40), None], size=32, iterations=1),
    ],
)
def test_api_mistakes_are_nst_errors(st, call):
    with pytest.raises(NstError) as caught:
        call(st)
    assert "\n" not in str(caught.value)


# Case 11: messages that say what happened and what to do.


def interrupted_run(args: list, ready) -> tuple[int, str]:
    """`python -m nst ARGS`, sent Ctrl-C once `ready()` (or after two minutes): its exit status and stderr."""
    command = [sys.executable, "-m", "nst", *map(str, args)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    deadline = time.monotonic() + 120
    while not ready() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def test_ctrl_c_says_what_was_kept(files):
    out = files / "out.png"
    code, err = interrupted_run(
        ["transfer", files / "content.png", files / "style.png", "-o", out, "--size", 32, "--scales", 1,
         "--iterations", 100000, "--save-every", 1, "--quiet"],
        lambda: list(files.glob("out_*.png")),
    )  # fmt: skip
    assert code == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "interrupted" in err and "out.png was not written" in err and "snapshot" in err, err
    assert not out.exists()


def test_an_extreme_aspect_ratio_is_named(st):
    with pytest.raises(NstError, match="aspect ratio") as caught:
        st.transfer(np.zeros((8, 10000, 3), np.uint8), [stripes(40, 40)], size=512, iterations=1)
    assert "raise --size" not in str(caught.value)
    with pytest.raises(NstError, match="--size 95 or more"):  # a wide image that a larger size does fit
        st.transfer(np.zeros((40, 120, 3), np.uint8), [stripes(40, 40)], size=64, iterations=1, scales=1)


def test_a_tiled_refusal_suggests_a_size(monkeypatch):
    from nst.engine import memory

    need = memory.estimate_peak_mb(4096 * 4096, "split", "lbfgs", 10, network_pixels=1200 * 1200)
    monkeypatch.setattr(memory, "available_mb", lambda: need * 0.5)
    with pytest.raises(NstError, match="--size") as caught:
        memory.check_fits(4096, 4096, "split", "lbfgs", 10, None, 1200 * 1200)
    assert "free memory first" not in str(caught.value)
    side = int(str(caught.value).split("--size ")[1].split()[0].rstrip(";,"))
    memory.check_fits(side, side, "split", "lbfgs", 10, None, 1200 * 1200)  # the suggestion fits


@pytest.mark.parametrize(
    "args,words",
    [
        (["--init", "nosie"], ["noise", "noisy-content", "image path"]),
        (["--threads", "-1"], ["--threads"]),
        (["--threads", "0"], ["--threads"]),
        (["--save-every", "-1"], ["--save-every"]),
    ],
)
def test_bad_values_are_one_line(files, args, words, nst):
    r = nst("transfer", files / "content.png", files / "style.png", "-o", files / "o.png", *args, *FAST)
    one_line_error(r, *words)


def test_too_many_threads_are_clamped_with_a_warning(files, nst):
    r = nst("transfer", files / "content.png", files / "style.png", "-o", files / "o.png", "--threads", 999, *FAST)
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith("warning: --threads 999") and len(r.stderr.strip().splitlines()) == 1, r.stderr


def _corrupt_files(folder: Path) -> list[Path]:
    import cv2

    png = bytearray(cv2.imencode(".png", stripes(40, 40))[1].tobytes())
    tif = cv2.imencode(".tif", stripes(40, 40))[1].tobytes()
    bad_crc = bytearray(png)
    bad_crc[29] ^= 0xFF  # the IHDR chunk's CRC
    made = {"crc.png": bytes(bad_crc), "half.png": bytes(png[: len(png) // 2]), "half.tif": tif[:200]}
    for name, data in made.items():
        (folder / name).write_bytes(data)
    return [folder / name for name in made]


def test_corrupt_files_print_no_codec_log_lines(tmp_path):
    paths = _corrupt_files(tmp_path)
    code = (
        "import sys\nfrom nst.engine import NstError\nfrom nst.engine.images import read_image\n"
        "for p in sys.argv[1:]:\n    try:\n        read_image(p)\n    except NstError as e:\n        print(e)\n"
    )
    r = subprocess.run([sys.executable, "-c", code, *map(str, paths)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert len(r.stdout.strip().splitlines()) == len(paths), r.stdout


@pytest.mark.parametrize("case", ["suffix", "style"])
def test_batch_rejects_before_creating_its_folder(files, case, nst):
    (files / "in").mkdir()
    write_image(files / "in" / "a.png", synthetic(40, 40))
    suffix, style = (".xyz", files / "style.png") if case == "suffix" else (".png", files / "nope.png")
    r = nst("batch", files / "in", style, "-o", files / "results", "--suffix", suffix, *FAST)
    one_line_error(r, "xyz" if case == "suffix" else "no such file")
    assert not (files / "results").exists()


def test_batch_suffix_without_a_dot(files, nst):
    (files / "in").mkdir()
    write_image(files / "in" / "a.png", synthetic(40, 40))
    r = nst("batch", files / "in", files / "style.png", "-o", files / "results", "--suffix", "jpg", *FAST)
    assert r.returncode == 0, r.stderr
    written = [p for p in (files / "results").iterdir() if not p.name.startswith(".")]  # beside the records
    assert len(written) == 1 and written[0].suffix == ".jpg" and read_image(written[0]).shape[2] == 3


def test_two_outputs_that_are_one_file_are_refused(files, nst):
    r = nst("transfer", files / "content.png", files / "style.png", "-o", files / "out.png", "--metrics",
            files / "." / "out.png", *FAST)  # fmt: skip
    one_line_error(r, "is also the output")
    assert not (files / "out.png").exists()


def test_ctrl_c_inside_a_destructor_is_not_lost(capsys):
    from nst.cli.interrupts import Interrupts

    class Swallower:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the handler runs here, inside the destructor, where Python drops its exception
                pass

    with Interrupts() as interrupts:
        Swallower()
        assert interrupts.seen
        with pytest.raises(KeyboardInterrupt):
            interrupts()
    assert "KeyboardInterrupt" not in capsys.readouterr().err  # no 'Exception ignored' report either


def test_ctrl_c_that_numba_wraps_in_a_system_error_is_still_a_ctrl_c():
    """numba's dispatcher turns a KeyboardInterrupt raised inside it into a SystemError caused by it (seen in CI
    as `nst transfer` ending in a traceback, exit 1): the CLI's Interrupts gives back the KeyboardInterrupt."""
    from nst.cli.interrupts import Interrupts

    wrapped = "CPUDispatcher(<function tv_loss_grad>) returned a result with an exception set"
    with pytest.raises(KeyboardInterrupt), Interrupts():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the handler runs here
                pass
        except KeyboardInterrupt as interrupt:
            raise SystemError(wrapped) from interrupt
    with pytest.raises(SystemError), Interrupts():  # without a Ctrl-C, an error stays what it is
        raise SystemError(wrapped)


def test_ctrl_c_on_a_batch_says_what_was_kept(files):
    """A command without its own report of what it kept gets the general line (typer would exit 130 with none)."""
    (files / "photos").mkdir()
    for i in range(3):
        write_image(files / "photos" / f"p{i}.png", synthetic(40, 40, seed=i))
    out = files / "out"
    code, err = interrupted_run(
        ["batch", files / "photos", files / "style.png", "-o", out, "--size", 32, "--scales", 1, "--iterations", 800,
         "--quiet"],
        lambda: list(out.glob("*.png")),
    )  # fmt: skip
    assert code == 130, err
    assert err.strip() == "interrupted; files written before the interruption are kept, none is half-written"
