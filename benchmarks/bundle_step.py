"""Seconds per step.onnx call of bundles with different style losses, side by side at each size.

Exports a bundle per loss (the `johnson` preset's Gram, the default W2 and any `--layers` variant) into a
temporary folder and times one Adam step of each on the same pair, rounds interleaved so a busy machine slows
every bundle alike; ratios are against the first bundle. The W2 step's Newton-Schulz iterations cost the same
at every image size, so they weigh most at small sizes.

    python -m benchmarks.bundle_step --sizes 64,128,256 --rounds 5
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
PAIR = (ROOT / "examples" / "woman-with-hat-matisse.jpg", ROOT / "examples" / "starry_night.jpg")
SCALARS = ("content_weight", "style_weight", "tv_weight")


def _session(folder: Path, name: str, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return ort.InferenceSession(str(folder / name), options, providers=["CPUExecutionProvider"])


def _image(path: Path, side: int) -> np.ndarray:
    from nst.engine.images import fit_image, read_image, resize

    image = read_image(path)
    return np.ascontiguousarray(resize(image, *fit_image(image, side)).transpose(2, 0, 1)[None], np.float32)


def _feeds(folder: Path, features, side: int) -> dict[str, np.ndarray]:
    """A first step's inputs: the content as the image, its content targets and the style's moments."""
    manifest = json.loads((folder / "manifest.json").read_text())
    names = [o.name for o in features.get_outputs()]
    content, style = (_image(p, side) for p in PAIR)
    targets = {k: v for k, v in zip(names, features.run(None, {"image": content})) if k.startswith("content.")}
    targets |= {k: v for k, v in zip(names, features.run(None, {"image": style})) if k.startswith("gram.")}
    feeds = {"image": content, "m": np.zeros_like(content), "v": np.zeros_like(content)}
    feeds |= {"t": np.array(1, np.float32), "lr": np.array(manifest["defaults"]["lr"], np.float32)}
    return feeds | {k: np.array(manifest["defaults"][k], np.float32) for k in SCALARS} | targets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="64,128,256")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--note", default="", help="what the machine was doing meanwhile, kept in the results")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bundle_step.json"))
    args = parser.parse_args()
    from nst.bundle.export import export_folder

    kinds = {"gram (johnson)": {"preset": "johnson"}, "w2 (nst)": {}}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folders = {}
        for name, settings in kinds.items():
            folders[name] = Path(tmp) / name.split()[0]
            export_folder(folders[name], **settings)
        sessions = {
            n: (_session(f, "features.onnx", args.threads), _session(f, "step.onnx", args.threads))
            for n, f in folders.items()
        }
        for side in (int(s) for s in args.sizes.split(",")):
            feeds = {n: _feeds(folders[n], sessions[n][0], side) for n in kinds}
            for n in kinds:
                sessions[n][1].run(None, feeds[n])  # the first run plans memory and packs weights
            seconds: dict[str, list[float]] = {n: [] for n in kinds}
            for _ in range(args.rounds):
                for n in kinds:
                    start = time.perf_counter()
                    sessions[n][1].run(None, feeds[n])
                    seconds[n].append(time.perf_counter() - start)
            base = statistics.median(seconds[next(iter(kinds))])
            for n in kinds:
                median = statistics.median(seconds[n])
                rows.append({"size": side, "bundle": n, "median_s": round(median, 4), "ratio": round(median / base, 2)})
                print(f"{side:5d} px  {n:16s} {median * 1000:8.1f} ms  {median / base:5.2f}x", flush=True)
    what = (__doc__ or "").splitlines()[0]
    result = {"what": what, "threads": args.threads, "rounds": args.rounds, "note": args.note, "rows": rows}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
