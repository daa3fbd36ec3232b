"""nst video: flicker and cost of independent frames, warm start only, and warm start + temporal term.

For each clip (frames of Big Buck Bunny, (c) Blender Foundation, CC BY 3.0, from benchmarks/data; and a
synthetic pan across Turner's The Shipwreck from examples/) every mode stylises the same frames at --size
with the same iterations per frame, one scale.  Measured per mode:
- E_warp (Lai et al. 2018) with a flow of its own (DIS at 4x the output size), and its
  ratio to the independent frames' (target: the temporal term at most 0.4x);
- each frame's style loss, scored afresh by the engine's objective, over the independent frame's
  (target: at most 1.2x);
- seconds per frame, and the iterations a warm-started frame needs to reach the loss (content + style +
  tv) its independent frame ended at, over the first frame's budget (target: at most 1/3).

    python -m benchmarks.video_eval                      # a few minutes on 2 cores
    python -m benchmarks.video_eval --weights 1e5,1e6 --frames 6 --iterations 40   # a quick look
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BUNNY = ROOT / "benchmarks" / "data" / "bigbuckbunny.mp4"
STYLE = ROOT / "examples" / "starry_night.jpg"
PAN_SOURCE = ROOT / "examples" / "shipwreck.jpg"


def bunny_clip(start: int, count: int) -> list[np.ndarray]:
    from nst.video.frames import FrameSource

    return [f for _, f in FrameSource(BUNNY).frames(range(start, start + count))]


def pan_clip(count: int, step: float = 5.0) -> list[np.ndarray]:
    """A 16:9 window moving right and slightly down across the painting, with a slow zoom."""
    import cv2

    from nst.engine.images import read_image

    painting = read_image(PAN_SOURCE)
    frames = []
    for t in range(count):
        zoom = 1.0 + 0.01 * t
        m = np.float32([[zoom, 0, -step * t], [0, zoom, -0.3 * step * t]])
        frames.append(cv2.warpAffine(painting, m, (320, 180), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT))
    return frames


def run_mode(st, frames: list[np.ndarray], video, args) -> tuple[list[np.ndarray], list]:
    """Stylise `frames` with `video` options; returns the outputs as written and the frame records."""
    from nst.engine.images import read_image
    from nst.video.stylize import VideoStylizer, stylize_frames

    stylizer = VideoStylizer(st, [str(STYLE)], video, "nst", size=args.size, scales=1, iterations=args.iterations)
    with tempfile.TemporaryDirectory(prefix="video-eval-") as tmp:
        records = stylize_frames(stylizer, enumerate(frames), tmp)
        outputs = [read_image(r.path) for r in records]
    return outputs, records


def scores(st, frames: list[np.ndarray], outputs: list[np.ndarray], args) -> list[dict]:
    """Each output's content and style loss under the engine's objective for its own frame."""
    from nst.engine.images import fit_size, resize
    from nst.kernels import hwc_to_nchw

    found = []
    for frame, out in zip(frames, outputs):
        content = resize(frame, *fit_size(*frame.shape[:2], args.size))
        objective = st.objective(content, [str(STYLE)], "nst", size=args.size, scales=1, iterations=1)
        objective.loss_and_grad(hwc_to_nchw(out, 1.0))
        found.append({"content": objective.last.content, "style": objective.last.style})
    return found


def iterations_to_reach(curve: list[float], level: float) -> int | None:
    """Evaluations until the loss first reaches `level` (None: never within the budget)."""
    return next((k + 1 for k, v in enumerate(curve) if v <= level), None)


def evaluate_clip(st, name: str, frames: list[np.ndarray], args) -> dict:
    from nst.engine.images import fit_size
    from nst.video.metrics import WarpingError
    from nst.video.stylize import VideoOptions

    h, w = fit_size(*frames[0].shape[:2], args.size)
    e_warp = WarpingError(frames, h, w)
    from nst.engine.images import resize

    result = {"frames": len(frames), "size": [w, h], "input_e_warp": e_warp([resize(f, h, w) for f in frames])}
    full = args.iterations  # warm frames run the whole budget too: their loss curve shows what they need
    modes = {"independent": VideoOptions(independent=True), "warm_start": VideoOptions(0.0, warm_iterations=full)}
    modes |= {f"temporal_{w:g}": VideoOptions(w, warm_iterations=full) for w in args.weights}
    if args.third:  # nst video's default: warm frames get a third of the first frame's iterations
        modes |= {f"temporal_{w:g}_third": VideoOptions(w, warm_iterations=round(full / 3)) for w in args.weights}
    runs = {}
    for mode, video in modes.items():
        start = time.perf_counter()
        outputs, records = run_mode(st, frames, video, args)
        runs[mode] = (outputs, records, scores(st, frames, outputs, args), time.perf_counter() - start)
        print(f"{name} {mode}: {runs[mode][3]:.1f} s", flush=True)
    base_outputs, base_records, base_scores, _ = runs["independent"]
    base_error = e_warp(base_outputs)
    for mode, (outputs, records, found, wall) in runs.items():
        error = e_warp(outputs)
        style_ratio = [s["style"] / b["style"] for s, b in zip(found, base_scores)]
        reach = [iterations_to_reach(r.curve, min(b.curve)) for r, b in zip(records[1:], base_records[1:])]
        result[mode] = {
            "e_warp": error,
            "e_warp_vs_independent": error / base_error,
            "e_warp_per_pair": e_warp.per_pair(outputs),
            "style_loss_vs_independent_max": max(style_ratio),
            "style_loss_vs_independent_mean": statistics.fmean(style_ratio),
            "content_loss_vs_independent_mean": statistics.fmean(
                s["content"] / b["content"] for s, b in zip(found, base_scores)
            ),
            "seconds_first_frame": records[0].seconds,
            "seconds_per_later_frame": statistics.fmean(r.seconds for r in records[1:]),
            "iterations_to_independent_loss": reach,
            "iterations_to_independent_loss_vs_first_frame": (
                None if None in reach else statistics.median(reach) / args.iterations
            ),
            "wall_s": wall,
        }
    if args.strip:
        write_strip(
            args.strip_dir / ("video_strip.jpg" if name == "bunny" else f"video_strip_{name}.jpg"), frames, runs, h, w
        )
    return result


def write_strip(path: Path, frames: list[np.ndarray], runs: dict, h: int, w: int, columns: int = 6) -> None:
    """Rows: input, independent, warm start, the first temporal weight; `columns` consecutive frames."""
    from nst.engine.images import resize, write_image

    temporal = next(m for m in runs if m.startswith("temporal"))
    rows = [[resize(f, h, w) for f in frames[:columns]]]
    rows += [runs[m][0][:columns] for m in ("independent", "warm_start", temporal)]
    grid = np.concatenate([np.concatenate(row, axis=1) for row in rows], axis=0)
    write_image(path, np.clip(grid + 0.5, 0, 255).astype(np.uint8), quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--weights", default="1e6", help="temporal weights, comma-separated")
    parser.add_argument("--bunny-start", type=int, default=20)
    parser.add_argument("--clips", default="bunny,pan")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--third", action="store_true", help="also the temporal modes with a third of the budget")
    parser.add_argument("--update", action="store_true", help="merge into --out instead of replacing it")
    parser.add_argument("--strip", action="store_true", help="also write docs/video_strip.jpg (bunny), ..._pan.jpg")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "video.json")
    args = parser.parse_args()
    args.weights = [float(v) for v in args.weights.split(",")]
    args.strip_dir = ROOT / "docs"
    from nst.engine import StyleTransfer

    st = StyleTransfer(device="cpu", threads=args.threads)
    clips = {"bunny": lambda: bunny_clip(args.bunny_start, args.frames), "pan": lambda: pan_clip(args.frames)}
    report = {"size": args.size, "iterations_per_frame": args.iterations, "style": STYLE.name, "weights": args.weights}
    if args.update and args.out.exists():  # add modes to an earlier run's clips (same settings)
        report = json.loads(args.out.read_text())
    for name in args.clips.split(","):
        report[name] = {**report.get(name, {}), **evaluate_clip(st, name, clips[name](), args)}
    if "bunny" in report:
        report["bunny_credit"] = "Big Buck Bunny (c) Blender Foundation, www.bigbuckbunny.org, CC BY 3.0"
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items()}, indent=1)[:4000])


if __name__ == "__main__":
    main()
