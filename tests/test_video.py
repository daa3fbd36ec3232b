"""nst video: the flow warp and trust mask against numpy references, the temporal term's gradient, and
`nst video` end to end on tiny frames (folder, .avi, .mp4, resume, --frames, errors)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nst.engine.images import read_image, write_image
from nst.engine.objective import Losses
from nst.video.flow import FramePair, consistency_mask, warp
from nst.video.temporal import TemporalObjective, temporal_loss_grad

from .conftest import stripes, synthetic

ROOT = Path(__file__).resolve().parents[1]


def reference_warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Bilinear sampling at p + flow(p), coordinates clamped to the border, one pixel at a time."""
    h, w = flow.shape[:2]
    out = np.zeros(flow.shape[:2] + image.shape[2:])
    for y in range(h):
        for x in range(w):
            sx = min(max(x + flow[y, x, 0], 0.0), w - 1.0)
            sy = min(max(y + flow[y, x, 1], 0.0), h - 1.0)
            x0, y0 = int(np.floor(sx)), int(np.floor(sy))
            x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
            fx, fy = sx - x0, sy - y0
            top = (1 - fx) * image[y0, x0] + fx * image[y0, x1]
            bottom = (1 - fx) * image[y1, x0] + fx * image[y1, x1]
            out[y, x] = (1 - fy) * top + fy * bottom
    return out


def reference_mask(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Ruder et al.'s trust mask written out per pixel: round trip, motion boundary, inside the frame."""
    h, w = backward.shape[:2]
    there = reference_warp(forward, backward)
    mask = np.ones((h, w))
    for y in range(h):
        for x in range(w):
            b, f = backward[y, x], there[y, x]
            if np.sum((f + b) ** 2) > 0.01 * (np.sum(f**2) + np.sum(b**2)) + 0.5:
                mask[y, x] = 0
            grad = 0.0
            for c in range(2):  # central differences, one-sided at the edges (numpy.gradient's rule)
                xl, xr, yu, yd = max(x - 1, 0), min(x + 1, w - 1), max(y - 1, 0), min(y + 1, h - 1)
                grad += ((backward[y, xr, c] - backward[y, xl, c]) / (xr - xl)) ** 2
                grad += ((backward[yd, x, c] - backward[yu, x, c]) / (yd - yu)) ** 2
            if grad > 0.01 * np.sum(b**2) + 0.002:
                mask[y, x] = 0
            if not (0 <= x + b[0] <= w - 1 and 0 <= y + b[1] <= h - 1):
                mask[y, x] = 0
    return mask


def test_warp_matches_numpy_reference():
    rng = np.random.default_rng(0)
    image = synthetic(20, 24).astype(np.float32)
    flow = rng.uniform(-3, 3, (20, 24, 2)).astype(np.float32)
    # OpenCV samples with 5-bit fractional weights (1/32 px), hence the tolerance.
    assert np.abs(warp(image, flow) - reference_warp(image, flow)).max() < 255 / 32


def test_consistency_mask_matches_numpy_reference():
    rng = np.random.default_rng(1)
    backward = np.zeros((20, 24, 2), np.float32)
    backward[..., 0], backward[..., 1] = -2.0, 1.0
    backward[8:12, 10:16] = (3.0, -1.0)  # a moving patch: its edges are motion boundaries
    forward = -backward + rng.normal(0, 0.05, backward.shape).astype(np.float32)
    forward[2:5, 2:5] = (4.0, 4.0)  # disagrees with the backward flow: occluded
    mask = consistency_mask(forward, backward)
    expected = reference_mask(forward, backward)
    assert 0 < mask.mean() < 1
    assert np.mean(mask != expected) < 0.01  # only knife-edge pixels (interpolation rounding) may differ


def test_flow_of_a_shifted_image_lines_it_up():
    frame = synthetic(64, 80, seed=3).astype(np.float32)
    frame = np.asarray(
        __import__("cv2").GaussianBlur(frame, (0, 0), 1.5), np.float32
    )  # smooth texture: the flow is well posed
    shifted = np.roll(frame, (2, 3), axis=(0, 1))  # content moves 3 right, 2 down
    pair = FramePair(frame, shifted)
    inner = (slice(12, -12), slice(12, -12))
    assert np.abs(pair.backward[inner] - (-3.0, -2.0)).mean() < 0.3
    assert pair.mask[inner].mean() > 0.9 and pair.mask[:, :3].mean() < 0.5  # the band that entered is dropped
    assert np.abs(pair.warp(frame)[inner] - shifted[inner]).mean() < 2.0


class _Quadratic:
    """A stand-in engine objective: sum(image^2) / 2, recording its losses as the engine's do."""

    runner = options = None
    evaluations = 0

    def loss_and_grad(self, image):
        loss = 0.5 * float(np.sum(image.astype(np.float64) ** 2))
        self.last = Losses(loss, loss, 0.0, 0.0)
        return loss, image.copy()


def test_temporal_term_gradient_by_finite_differences():
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 255, (1, 3, 6, 7))
    target = rng.uniform(0, 255, (1, 3, 6, 7))
    mask = (rng.uniform(size=(6, 7)) > 0.3) * rng.uniform(0.5, 1, (6, 7))
    loss, grad = temporal_loss_grad(x, target, mask, 1e3)
    for index in [(0, 0, 0, 0), (0, 1, 3, 4), (0, 2, 5, 6), (0, 1, 2, 2)]:
        step = np.zeros_like(x)
        step[index] = 1e-3
        numeric = (
            temporal_loss_grad(x + step, target, mask, 1e3)[0] - temporal_loss_grad(x - step, target, mask, 1e3)[0]
        ) / 2e-3
        assert abs(numeric - grad[index]) <= 1e-5 * max(1.0, abs(numeric))
    wrapped = TemporalObjective(_Quadratic(), target.astype(np.float32), mask, 1e3)
    total, total_grad = wrapped.loss_and_grad(x.astype(np.float32))
    assert wrapped.last.temporal == pytest.approx(loss, rel=1e-5)
    assert total == pytest.approx(loss + 0.5 * np.sum(x.astype(np.float32).astype(np.float64) ** 2), rel=1e-5)
    assert np.allclose(total_grad, grad + x, rtol=1e-4)


def test_a_fade_to_black_stays_black(st):
    """Frames are 0..255 by construction: one whose brightest value is 1 is not taken for a 0..1 image."""
    from nst.video.stylize import VideoOptions, VideoStylizer

    dark = (synthetic(40, 48) > 128).astype(np.float32)  # a fade's last frame: 0 and 1 of 255
    stylizer = VideoStylizer(st, [stripes(40, 40)], VideoOptions(), None, size=48, iterations=2, scales=1,
                             style_weight=0.0, init="content")  # fmt: skip
    result, *_ = stylizer.frame(dark)
    assert result.max() < 8.0


def nst(*args):
    return subprocess.run(
        [sys.executable, "-m", "nst", *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=600
    )


TINY = ("--size", 48, "--iterations", 2, "--scales", 1, "-q")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """Three 40x48 frames of a picture moving right, and a style."""
    root = tmp_path_factory.mktemp("clip")
    (root / "frames").mkdir()
    picture = synthetic(40, 60, seed=5)
    for t in range(3):
        write_image(root / "frames" / f"f{t}.png", picture[:, 2 * t : 2 * t + 48])
    write_image(root / "style.png", stripes(40, 40))
    return root


def test_video_to_a_folder_resumes_and_takes_a_range(clip, tmp_path):
    out = tmp_path / "out"
    r = nst("video", clip / "frames", clip / "style.png", "-o", out, "--frames", "0:2", *TINY)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.glob("*.png")) == ["000000.png", "000001.png"]
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    r = nst("video", clip / "frames", clip / "style.png", "-o", out, *TINY)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.glob("*.png")) == ["000000.png", "000001.png", "000002.png"]
    assert all(out.joinpath(name).stat().st_mtime_ns == t for name, t in before.items())  # kept, not redone
    assert read_image(out / "000002.png").shape == (40, 48, 3)
    assert not list(out.glob("*.part"))
    other = tmp_path / "range"
    r = nst("video", clip / "frames", clip / "style.png", "-o", other, "--frames", "1:", "--independent", *TINY)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in other.glob("*.png")) == ["000001.png", "000002.png"]
    r = nst("video", clip / "frames", clip / "style.png", "-o", out, "--temporal-weight", 5, *TINY)
    assert r.returncode == 2 and "other settings" in r.stderr and "Traceback" not in r.stderr


def test_a_style_changed_under_its_name_is_not_resumed(clip, tmp_path):
    import shutil

    style, out = tmp_path / "style.png", tmp_path / "out"
    shutil.copy(clip / "style.png", style)
    assert nst("video", clip / "frames", style, "-o", out, "--frames", "0:1", *TINY).returncode == 0
    moved = tmp_path / "elsewhere.png"
    shutil.copy(style, moved)  # the same style under another name resumes
    assert nst("video", clip / "frames", moved, "-o", out, "--frames", "0:2", *TINY).returncode == 0
    write_image(style, stripes(40, 40)[::-1].copy())
    r = nst("video", clip / "frames", style, "-o", out, *TINY)
    assert r.returncode == 2 and "other settings" in r.stderr, r.stderr
    link = tmp_path / "link.avi"
    link.symlink_to(tmp_path / "target.avi")  # written through, as nst transfer does
    assert nst("video", clip / "frames", clip / "style.png", "-o", link, *TINY).returncode == 0
    assert link.is_symlink() and (tmp_path / "target.avi").stat().st_size > 0


def test_a_damaged_frame_is_found_before_any_work(clip, tmp_path):
    import shutil

    frames = tmp_path / "frames"
    shutil.copytree(clip / "frames", frames)
    whole = (frames / "f1.png").read_bytes()
    (frames / "f1.png").write_bytes(whole[: len(whole) // 2])  # its header still says 48x40
    r = nst("video", frames, clip / "style.png", "-o", tmp_path / "out", *TINY)
    assert r.returncode == 2 and "frame 1 cannot be used" in r.stderr and "--frames 0:1" in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()


def test_a_refused_run_leaves_no_claim_and_an_unwritable_output_is_one_line(clip, tmp_path):
    out = tmp_path / "out"
    small = ("--size", 32, "--iterations", 2, "--scales", 1, "-q")  # 32 x 27: under the network's 32 px
    r = nst("video", clip / "frames", clip / "style.png", "-o", out, *small)
    assert r.returncode == 2 and "--size 3" in r.stderr and "Traceback" not in r.stderr
    r = nst("video", clip / "frames", clip / "style.png", "-o", out, *TINY)  # corrected: no frame was made
    assert r.returncode == 0, r.stderr
    r = nst("video", clip / "frames", clip / "style.png", "-o", "/proc/nst-video-out", *TINY)
    assert r.returncode == 2 and "cannot be written" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_video_to_a_file(clip, tmp_path, suffix):
    import cv2

    out = tmp_path / f"out{suffix}"
    r = nst("video", clip / "frames", clip / "style.png", "-o", out, *TINY)
    assert r.returncode == 0, r.stderr
    cap = cv2.VideoCapture(str(out))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == 3 and frames[0].shape == (40, 48, 3)
    assert not (tmp_path / f"out{suffix}.frames").exists()  # the frames went into the file
    r = nst("video", clip / "frames", clip / "style.png", "-o", out, *TINY)
    assert r.returncode == 2 and "already exists" in r.stderr  # never overwritten


def test_video_file_input_keeps_its_sound(tmp_path):
    bunny = ROOT.parent / "shared" / "video" / "bigbuckbunny.mp4"
    if not bunny.exists() and os.environ.get("CI") != "true":
        pytest.skip("../shared/video/bigbuckbunny.mp4 is not beside this checkout")
    if shutil.which("ffprobe") is None and os.environ.get("CI") != "true":
        pytest.skip("ffmpeg is not installed")
    write_image(tmp_path / "style.png", stripes(40, 40))
    out = tmp_path / "bunny.mp4"
    r = nst("video", bunny, tmp_path / "style.png", "-o", out, "--frames", "30:33", "--size", 64, *TINY[2:])
    assert r.returncode == 0, r.stderr
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,nb_frames", str(out)],
        capture_output=True,
        text=True,
    )
    assert "codec_type=video" in probe.stdout and "codec_type=audio" in probe.stdout and "nb_frames=3" in probe.stdout


def test_video_without_ray_never_imports_ray(clip, tmp_path):
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom nst.cli.main import app\n"
        "r = CliRunner().invoke(app, sys.argv[1:])\nassert r.exit_code == 0, r.output\nprint('ray' in sys.modules)"
    )
    args = ["video", clip / "frames", clip / "style.png", "-o", tmp_path / "o", "--frames", "0:2", *TINY]
    r = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--frames", "5:9"], "--frames"),
        (["--flow", "magic"], "--flow"),
        (["--size", 16], "--size"),
        (["--fps", "nan"], "--fps nan: give a frame rate"),
        (["--fps", "inf"], "--fps inf: give a frame rate"),
        (["--fps", "1e-9"], "--fps 1e-09: give a frame rate"),
        (["--temporal-weight", "nan"], "--temporal-weight nan"),
        (["--temporal-weight", "inf"], "--temporal-weight inf"),
        (["--warm-iterations", "-3"], "--warm-iterations -3"),
        (["--ray", "--ray-chunk", "0"], "--ray-chunk 0"),
        (["--ray", "--ray-gpus", "nan"], "--ray-gpus at least 0"),
    ],
)
def test_video_errors_are_one_line(clip, tmp_path, args, message):
    """Refused before any work: one line, status 2, no output folder made."""
    r = nst("video", clip / "frames", clip / "style.png", "-o", tmp_path / "o", *TINY, *args)
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    assert not (tmp_path / "o").exists()


def frames_folder_of(root: Path, pictures: list[np.ndarray], names: str = "{:06d}.png") -> Path:
    root.mkdir()
    for t, picture in enumerate(pictures):
        write_image(root / names.format(t), picture)
    return root


@pytest.mark.parametrize("names", ["{:06d}.png", "f{}.png"])
def test_video_refuses_its_input_folder_as_output(clip, tmp_path, names):
    """Frames named as results would be taken as finished ones; others would get results among them."""
    frames = frames_folder_of(tmp_path / "frames", [synthetic(40, 48, seed=t) for t in range(2)], names)
    before = {p.name: p.read_bytes() for p in frames.iterdir()}
    r = nst("video", frames, clip / "style.png", "-o", frames, *TINY)
    assert r.returncode == 2 and "is the folder of the input frames" in r.stderr, r.stderr
    assert {p.name: p.read_bytes() for p in frames.iterdir()} == before
    r = nst("video", frames, clip / "style.png", "-o", frames / "out", "--frames", "0:1", *TINY)
    assert r.returncode == 0, r.stderr  # a subfolder works


def avi(path: Path, pictures: list[np.ndarray]) -> Path:
    """A small MJPEG .avi written by OpenCV (no ffmpeg needed)."""
    import cv2

    h, w = pictures[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, (w, h))
    for picture in pictures:
        writer.write(np.ascontiguousarray(picture[:, :, ::-1]))
    writer.release()
    return path


def test_video_resume_refuses_frames_of_another_input(clip, tmp_path):
    """A rerun on another clip into the same folder must not keep the first clip's frames as its own."""
    style, out = clip / "style.png", tmp_path / "out"
    first = frames_folder_of(tmp_path / "a", [synthetic(40, 48, seed=t) for t in range(2)], "f{}.png")
    assert nst("video", first, style, "-o", out, "--frames", "0:1", *TINY).returncode == 0
    write_image(first / "f1.png", synthetic(40, 48, seed=9))  # a frame not yet made may change
    assert nst("video", first, style, "-o", out, *TINY).returncode == 0
    made = (out / "000000.png").read_bytes()
    second = frames_folder_of(tmp_path / "b", [stripes(40, 48) for t in range(2)], "f{}.png")
    r = nst("video", second, style, "-o", out, *TINY)
    assert r.returncode == 2 and "frame 0 was made from another f0.png" in r.stderr, r.stderr
    assert (out / "000000.png").read_bytes() == made
    clips = [avi(tmp_path / f"{name}.avi", [synthetic(40, 48, seed=s + t) for t in range(2)]) for name, s in
             (("one", 0), ("two", 5))]  # fmt: skip
    assert nst("video", clips[0], style, "-o", tmp_path / "v", "--frames", "0:1", *TINY).returncode == 0
    r = nst("video", clips[1], style, "-o", tmp_path / "v", *TINY)
    assert r.returncode == 2 and "holds frames of" in r.stderr and "one.avi" in r.stderr, r.stderr


def test_video_refuses_frames_of_mixed_sizes_before_any_work(clip, tmp_path):
    pictures = [synthetic(40, 48), synthetic(40, 48, seed=1), synthetic(48, 40, seed=2)]
    frames = frames_folder_of(tmp_path / "frames", pictures, "f{}.png")
    r = nst("video", frames, clip / "style.png", "-o", tmp_path / "o", *TINY)
    assert r.returncode == 2 and "frame 2 (f2.png) is 40x48 but frame 0 (f0.png) is 48x40" in r.stderr, r.stderr
    assert not (tmp_path / "o").exists()


def test_video_says_which_frames_of_a_truncated_clip_can_be_read(clip, tmp_path):
    full = avi(tmp_path / "full.avi", [synthetic(40, 48, seed=t) for t in range(30)])
    cut = tmp_path / "cut.avi"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    r = nst("video", cut, clip / "style.png", "-o", tmp_path / "o", *TINY)
    assert r.returncode == 2 and "can be decoded" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    readable = int(r.stderr.split("give --frames 0:")[1].split(",")[0])
    assert 0 < readable < 30 and not (tmp_path / "o").exists()
    r = nst("video", cut, clip / "style.png", "-o", tmp_path / "o", "--frames", f"{readable + 1}:", *TINY)
    assert r.returncode == 2 and f"give --frames 0:{readable}," in r.stderr, r.stderr  # a range that exists


def test_ray_flag_takes_an_optional_address():
    from nst.cli.main import optional_ray_address

    assert optional_ray_address(["batch", "d", "s", "-o", "o", "--ray"])[-2:] == ["--ray", "local"]
    assert optional_ray_address(["--ray", "--ray-actors", "2"]) == ["--ray", "local", "--ray-actors", "2"]
    assert optional_ray_address(["--ray", "10.0.0.5:6379"]) == ["--ray", "10.0.0.5:6379"]
    assert optional_ray_address(["--ray", "auto", "x"]) == ["--ray", "auto", "x"]
