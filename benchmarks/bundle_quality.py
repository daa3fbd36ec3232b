"""The bundle's default schedule (Adam, coarse to fine, run by the Python host) against the `nst` preset: the
johnson loss of each final image, on the pairs of nst_vs_johnson.py, both run in this process side by side.

Target (issue 12): the bundle's johnson loss at most 1.15x the nst preset's at 512 px.

    python -m benchmarks.bundle_quality --size 512             # three pairs: long on 2 cores
    python -m benchmarks.bundle_quality --size 256 --pairs 1   # a quick look

Both runs start from the same pixels: content and painting are decoded and resized to --size once, by the
engine, and handed to both as arrays.  Each resizes its inputs for the coarse scales its own way, but the final
scale's targets are the same, so the johnson loss measures the schedules, not two resampling filters (given the
files, the host's triangle filter and the engine's area filter make targets that differ by up to 1.5x in loss).

The nst preset's runs are cached under --cache (ignored by git) and reused by later runs with the same preset,
so other bundle schedules can be measured against one reference.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.images import add_images_option, image
from benchmarks.nst_vs_johnson import PAIRS, ROOT, preset_summary, score

HOST = ROOT / "hosts" / "python" / "nst_bundle.py"


def python_host():
    """The Python host's library, hosts/python/nst_bundle.py (not part of the nst package)."""
    spec = importlib.util.spec_from_file_location("nst_bundle", HOST)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sized(path: str, size: int) -> np.ndarray:
    """The image decoded and resized by the engine, longest side `size`: HxWx3 float32 in 0..255."""
    from nst.engine.images import fit_size, read_image, resize

    pixels = read_image(path, size)
    return resize(pixels, *fit_size(*pixels.shape[:2], size)).astype(np.float32)


def bundle_run(host, bundle, content: np.ndarray, style: np.ndarray, size: int) -> tuple:
    """The bundle's default schedule on one pair of HxWx3 arrays: (HxWx3 float image, seconds)."""
    defaults = bundle.manifest["defaults"]
    nchw = [np.ascontiguousarray(a.transpose(2, 0, 1)[None]) for a in (content, style)]
    start = time.perf_counter()
    x = host.stylize(
        bundle,
        nchw[0],
        [nchw[1]],
        size,
        defaults["iterations"],
        defaults["scales"],
        defaults,
        on_step=lambda record: None,
    )
    return x[0].transpose(1, 2, 0).clip(0, 255), time.perf_counter() - start


def nst_run(st, names: tuple, pixels: tuple, size: int, threads: int, cache: Path) -> dict:
    """The nst preset on one pair of arrays: its johnson loss and seconds, cached per preset."""
    from nst.engine.presets import PRESETS

    content, style = pixels
    summary = preset_summary(PRESETS["nst"]) | {"inputs": "resized by the engine"}
    key = f"{names[0]}_{names[1]}_{size}_t{threads}"
    path = cache / f"nst_{key}.json"
    if path.exists() and json.loads(path.read_text())["preset"] == summary:
        return json.loads(path.read_text())
    start = time.perf_counter()
    image = st.transfer(content, [style], preset="nst", size=size)
    seconds = time.perf_counter() - start
    run = {"preset": summary, "seconds": seconds, "loss": score(st, content, style, image.astype(np.float32), size)}
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run))
    return run


def main() -> None:
    from nst.bundle.export import export_folder
    from nst.engine import StyleTransfer

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=len(PAIRS))
    parser.add_argument("--only", default="", help="pairs to run, as CONTENT:STYLE[,CONTENT:STYLE]")
    parser.add_argument("--cache", default=str(ROOT / "benchmarks" / "cache"), help="where nst runs are kept")
    parser.add_argument("--only-nst", action="store_true", help="make the nst references only (into --cache)")
    add_images_option(parser)
    args = parser.parse_args()
    st = StyleTransfer(threads=args.threads)
    host = python_host()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        export_folder(folder)
        bundle = host.Bundle(folder, args.threads)
        pairs = [p for p in PAIRS[: args.pairs] if not args.only or ":".join(p) in args.only.split(",")]
        for content_name, style_name in pairs:
            names = (content_name, style_name)
            content, style = (sized(str(image(args.images, f"{name}.jpg")), args.size) for name in names)
            nst = nst_run(st, names, (content, style), args.size, args.threads, Path(args.cache))
            if args.only_nst:
                continue
            picture, seconds = bundle_run(host, bundle, content, style, args.size)
            row = {
                "content": content_name,
                "style": style_name,
                "bundle_seconds": round(seconds, 1),
                "nst_seconds": round(nst["seconds"], 1),
                "bundle_johnson_loss": round(score(st, content, style, picture, args.size), 1),
                "nst_johnson_loss": round(nst["loss"], 1),
            }
            row["loss_ratio"] = round(row["bundle_johnson_loss"] / row["nst_johnson_loss"], 4)
            print(json.dumps(row), flush=True)
            rows.append(row)
            write(rows, args, bundle.manifest["defaults"])  # after every pair: a run cut short keeps what it measured


def write(rows: list[dict], args, schedule: dict) -> None:
    result = {"size": args.size, "threads": args.threads, "schedule": schedule, "pairs": rows}
    result["worst_loss_ratio"] = max(r["loss_ratio"] for r in rows)
    result["date"] = time.strftime("%Y-%m-%d")
    out = ROOT / "benchmarks" / "results" / f"bundle_quality_{args.size}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
