"""Fit nst/engine/memory.py's estimate to measured peaks: one `nst bench` worker per objective path and
size (johnson objective, L-BFGS history 10), each in a fresh process; writes
benchmarks/results/memory_model.json with the measured peaks beside the model's estimates. Rows of sizes
not measured this time stay, their estimates recomputed with the current model.

--inputs measures the input terms instead, each in a fresh process: decoding (a 3000x3000 PNG of noise
in 8-bit RGB and in 16-bit RGBA: per decoded pixel beyond the file's bytes), and whole transfers with
--style-scale (woman-with-hat-matisse x starry_night from examples/ or --images, 1 iteration) against
the estimate made before them.

    python -m benchmarks.memory_model --sizes 128,256,384,512,768,1024 --threads 2
    python -m benchmarks.memory_model --inputs --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from benchmarks.images import add_images_option, image

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "memory_model.json"
DECODE_CASES = ("rgb8", "rgba16")
STYLE_CASES = ("fused:128:1", "split:128:1", "fused:128:8", "split:128:8", "fused:256:8", "split:256:8")


def peak_mb() -> float:
    """This process's peak resident set (VmHWM: its own, unlike ru_maxrss, which exec inherits)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def one_decode(kind: str, folder: Path) -> dict:
    """Decode one image file made by `make_decode_file`; bytes per decoded pixel beyond the file's."""
    from nst.engine.images import read_image
    from nst.engine.memory import MB, decoded_size

    path = folder / f"{kind}.png"
    before = rss_mb()
    img = read_image(path)
    pixels = img.shape[0] * img.shape[1]
    measured = ((peak_mb() - before) * MB - path.stat().st_size) / pixels
    model = (decoded_size(path, "image").decode_mb * MB - path.stat().st_size) / pixels
    return {
        "kind": kind,
        "pixels": pixels,
        "bytes_per_pixel": round(measured, 1),
        "model": model,
    }


def make_decode_file(kind: str, folder: Path, side: int = 3000) -> None:
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    shape, top, dtype = ((side, side, 3), 255, np.uint8) if kind == "rgb8" else ((side, side, 4), 65535, np.uint16)
    cv2.imwrite(str(folder / f"{kind}.png"), rng.integers(0, top, shape, dtype=dtype))


def one_style(case: str, images: Path) -> dict:
    """One single-scale transfer with a style scale; its peak beside the estimate made before it."""
    from nst.engine import StyleTransfer
    from nst.engine.memory import estimate_peak_mb, transfer_demand

    path, size, scale = case.split(":")
    st = StyleTransfer(threads=2)
    settings = dict(preset="johnson", size=int(size), style_scale=float(scale), iterations=1, path=path)
    content, style = str(image(images, "woman-with-hat-matisse.jpg")), str(image(images, "starry_night.jpg"))
    demand = transfer_demand(st.options(**settings), content, [style], path, lambda core: 0)
    estimate = estimate_peak_mb(
        demand["h"] * demand["w"],
        path,
        "lbfgsb",
        10,
        inputs=demand["inputs"],
        style_pixels=demand["style_pixels"],
    )
    st.stylize(content, [style], **settings)
    peak = peak_mb()
    return {
        "path": path,
        "size": int(size),
        "style_scale": float(scale),
        "style_pixels": demand["style_pixels"],
        "measured_mb": round(peak),
        "estimate_mb": round(estimate),
        "estimate_over_measured": round(estimate / peak, 3),
    }


def fresh(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.memory_model", *args], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"error: {' '.join(args)}: {(out.stderr.strip().splitlines() or ['no output'])[-1]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_inputs(args) -> None:
    """The input terms, each case in a fresh process; written under "inputs" in the results file."""
    result = json.loads(OUT.read_text()) if OUT.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        decode = []
        for kind in DECODE_CASES:
            make_decode_file(kind, Path(tmp))
            decode.append(fresh(["--decode", kind, "--images", tmp]))
            print(json.dumps(decode[-1]), flush=True)
    style = []
    for case in STYLE_CASES:
        style.append(fresh(["--style", case, "--images", str(args.images)]))
        print(json.dumps(style[-1]), flush=True)
    result["inputs"] = {
        "what": "decoding: peak bytes per decoded pixel beyond the file's; style: peak RSS of a transfer "
        "(johnson preset, 1 iteration) with --style-scale against the estimate made before it",
        "decode": decode,
        "style": style,
        "date": time.strftime("%Y-%m-%d"),
    }
    OUT.write_text(json.dumps(result, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="128,256,384,512")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--inputs", action="store_true", help="measure decoding and --style-scale instead")
    parser.add_argument("--decode", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--style", default=None, help=argparse.SUPPRESS)
    add_images_option(parser)
    args = parser.parse_args()
    if args.decode or args.style:
        row = one_decode(args.decode, args.images) if args.decode else one_style(args.style, args.images)
        print(json.dumps(row))
        return
    if args.inputs:
        measure_inputs(args)
        return
    measure_sizes(args)


def measure_sizes(args) -> None:
    """One `nst bench` worker per path and size (synthetic images); rows written under "rows"."""
    from nst.bench.timing import plan, run_worker
    from nst.engine.memory import estimate_peak_mb

    old = json.loads(OUT.read_text()) if OUT.exists() else {}
    measured = {(row["path"], row["size"]): row["measured_mb"] for row in old.get("rows", [])}
    for case in plan("cpu", args.sizes, "split,fused", 2, 1, args.threads):
        measured[case.path, case.size] = round(run_worker(json.dumps(asdict(case)), case.threads)["peak_host_mb"])
        print(case.path, case.size, measured[case.path, case.size], "MB", flush=True)
    rows = []
    for (path, size), peak in sorted(measured.items(), key=lambda item: (item[0][1], item[0][0] != "split")):
        estimate = estimate_peak_mb(size * size, path, "lbfgs", 10)
        rows.append(
            {
                "path": path,
                "size": size,
                "measured_mb": peak,
                "estimate_mb": round(estimate),
                "estimate_over_measured": round(estimate / peak, 3),
            }
        )
    old.update(
        {
            "what": "peak RSS of one transfer (johnson objective, lbfgs history 10, square "
            "synthetic images) against nst/engine/memory.py's estimate",
            "threads": args.threads,
            "rows": rows,
            "date": time.strftime("%Y-%m-%d"),
        }
    )
    OUT.write_text(json.dumps(old, indent=2) + "\n")


if __name__ == "__main__":
    main()
