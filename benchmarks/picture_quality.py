"""nst's pictures against the classic's published ones (jcjohnson/neural-style), read from --shared DIR, the
folder that holds images/ (the inputs) and reference/classic/ (the classic's results).

For each of the six reference pairs nst runs at --size (512: the classic's size) with the preset and options
given; the result is measured beside the classic's by benchmarks/picture_measures.py (colour, speckle,
style statistics, content structure; each lower-is-better) and a montage is written: the classic and nst
side by side at their size, then 3x crops (nearest neighbour) of the smoothest and of the most detailed
region of the content. The wall time is set beside 1000 iterations of the classic's L-BFGS on this machine,
timed by --classic-rate of its evaluations at the same size (0: not timed).

    python -m benchmarks.picture_quality --shared DIR                  # the default, about 35 min on 2 cores
    python -m benchmarks.picture_quality --shared DIR --preset ck --label ck
    python -m benchmarks.picture_quality --shared DIR --set style_loss=gram --label gram --size 256
    python -m benchmarks.picture_quality --shared DIR --bundle        # the default bundle, by the Python host

Results: benchmarks/results/picture_<label>[_<size>].json; montages benchmarks/results/picture/<label>_<size>/
(not committed; docs/picture/ holds the default's); results are kept as PNGs there and reused with --reuse.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import fields
from datetime import date
from pathlib import Path

import numpy as np

from benchmarks.nst_vs_johnson import johnson_seconds_by_rate
from benchmarks.picture_measures import Measures

ROOT = Path(__file__).resolve().parents[1]
STYLES = {
    "starry": "starry_night",
    "scream": "the_scream",
    "shipwreck": "shipwreck",
    "matisse": "woman-with-hat-matisse",
}
PAIRS = (
    "tubingen_starry",
    "tubingen_scream",
    "tubingen_shipwreck",
    "golden_gate_starry",
    "golden_gate_scream",
    "golden_gate_matisse",
)
MEASURES = ("colour", "speckle", "style", "content")
LIMITS = {"colour": 1.0, "speckle": 1.0, "style": 1.0, "content": 1.1}  # at most this times the classic's
CROP = 8  # a crop is 1/CROP of the longest side, shown 3x


def inputs(pair: str, folder: Path) -> tuple[Path, Path]:
    """The content and style files of a pair named like the classic's result (content_stylekey)."""
    content, _, key = pair.rpartition("_")
    paths = folder / f"{content}.jpg", folder / f"{STYLES[key]}.jpg"
    for path in paths:
        if not path.is_file():
            raise SystemExit(f"error: {path}: no such image; give --shared the folder that holds images/")
    return paths


def parse_sets(items: list[str]) -> dict:
    """KEY=VALUE option overrides, each value converted like the Options field's default."""
    from nst.engine.presets import Options

    defaults = {f.name: getattr(Options(), f.name) for f in fields(Options)}
    overrides: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in defaults:
            raise SystemExit(f"error: --set {item!r}: give KEY=VALUE with an option name ({', '.join(defaults)})")
        kind = type(defaults[key])
        overrides[key] = value if kind in (str, dict, type(None), object) or key == "scales" else kind(value)
        if kind is bool:
            overrides[key] = value.lower() in ("1", "true", "yes")
    return overrides


def crop_boxes(content: np.ndarray) -> dict[str, tuple[int, int, int]]:
    """(top, left, side) of the smoothest and of the most detailed window of the content's luminance."""
    import cv2

    side = max(16, max(content.shape[:2]) // CROP)
    grey = content.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    energy = np.abs(cv2.Laplacian(grey, cv2.CV_32F))
    local = cv2.boxFilter(energy, -1, (side, side), normalize=True)
    half = side // 2
    inner = local[half : local.shape[0] - half, half : local.shape[1] - half]
    boxes = {}
    for name, pick in (("smooth", np.argmin), ("detail", np.argmax)):
        i, j = np.unravel_index(pick(inner), inner.shape)
        boxes[name] = (int(i), int(j), side)
    return boxes


def montage(classic: np.ndarray, result: np.ndarray, boxes: dict, labels: tuple[str, str]) -> np.ndarray:
    """Classic | result at their size, captioned, over 3x crops of each box (classic then result)."""
    import cv2

    def caption(panel: np.ndarray, text: str) -> np.ndarray:
        strip = np.full((24, panel.shape[1], 3), 255, np.uint8)
        cv2.putText(strip, text, (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        return np.concatenate([panel, strip], axis=0)

    gap = np.full((classic.shape[0] + 24, 8, 3), 255, np.uint8)
    top = np.concatenate([caption(classic, labels[0]), gap, caption(result, labels[1])], axis=1)
    crops = []
    for name, (i, j, side) in boxes.items():
        for image, label in zip((classic, result), labels):
            crop = cv2.resize(image[i : i + side, j : j + side], (3 * side, 3 * side), interpolation=cv2.INTER_NEAREST)
            crops.append(caption(crop, f"{label.split(':')[0]}, {name} 3x"))
    row = np.concatenate([np.concatenate([c, np.full((c.shape[0], 8, 3), 255, np.uint8)], axis=1) for c in crops], 1)
    width = max(top.shape[1], row.shape[1])
    pad = lambda a: np.pad(a, ((0, 0), (0, width - a.shape[1]), (0, 0)), constant_values=255)  # noqa: E731
    return np.concatenate([pad(top), np.full((8, width, 3), 255, np.uint8), pad(row)], axis=0)


def classic_image(pair: str, shape: tuple[int, ...], folder: Path) -> np.ndarray:
    """The classic's result at the given size (its own is 512 px wide; a side may differ by a pixel)."""
    from nst.engine.images import read_image, resize

    return resize(read_image(folder / f"{pair}.png"), shape[0], shape[1])


def bundle_transfer(folder: str | None, size: int, threads: int, keep: list):
    """transfer(content path, style path) by an exported bundle's default schedule in the Python host
    (`folder`, or the default export made now into a temporary folder kept alive through `keep`)."""
    import tempfile

    from benchmarks.bundle_quality import bundle_run, python_host, sized

    if folder is None:
        from nst.bundle.export import export_folder

        keep.append(tempfile.TemporaryDirectory())
        folder = keep[-1].name
        export_folder(folder)
    host = python_host()
    bundle = host.Bundle(folder, threads)
    return lambda content, style: bundle_run(host, bundle, sized(content, size), sized(style, size), size)[0]


def run_pair(st, measures: Measures, pair: str, args, transfer, out: Path) -> dict:
    """One pair: the transfer (or its kept PNG), both pictures measured, the montage written."""
    import cv2

    from nst.engine.images import fit_image, read_image, resize, save_result

    content_path, style_path = inputs(pair, args.shared / "images")
    kept = out / f"{pair}.png"
    seconds = None
    if args.reuse and kept.is_file():
        result = read_image(kept)
    else:
        start = time.perf_counter()
        result = transfer(str(content_path), str(style_path))
        seconds = time.perf_counter() - start
        save_result(kept, result)
    result = np.asarray(result, np.float32)
    content_full = read_image(content_path)
    content = resize(content_full, *result.shape[:2])
    style = read_image(style_path, args.size)
    style = resize(style, *fit_image(style, args.size))
    classic = classic_image(pair, result.shape, args.shared / "reference" / "classic")
    row: dict = {"pair": pair, "seconds": None if seconds is None else round(seconds, 1)}
    row["nst"] = {k: round(v, 4) for k, v in measures.measure(result, content, style).items()}
    row["classic"] = {k: round(v, 4) for k, v in measures.measure(classic, content, style).items()}
    row["ratio"] = {k: round(row["nst"][k] / row["classic"][k], 3) for k in MEASURES}
    classic_s = (  # 1000 iterations of the classic (johnson preset, L-BFGS-B) at this size, by its rate
        johnson_seconds_by_rate(st, str(content_path), str(style_path), args.size, args.classic_rate)
        if args.classic_rate
        else None
    )
    if classic_s is not None and seconds is not None:
        row["classic_seconds_by_rate"] = round(classic_s, 1)
        row["time_ratio"] = round(seconds / classic_s, 4)
    picture = montage(
        classic.round().astype(np.uint8),
        np.clip(result, 0, 255).round().astype(np.uint8),
        crop_boxes(content),
        ("classic: 1000 L-BFGS its, random init", f"nst {args.label}: {row['seconds'] or '?'} s"),
    )
    cv2.imwrite(str(out / f"{pair}_montage.png"), picture[:, :, ::-1])
    print(json.dumps(row), flush=True)
    return row


def summary(rows: list[dict]) -> dict:
    """Worst and median ratio of each measure over the pairs, and whether every pair meets its limit."""
    result: dict = {}
    for key in MEASURES:
        ratios = [row["ratio"][key] for row in rows]
        result[key] = {"worst": max(ratios), "median": round(statistics.median(ratios), 3), "limit": LIMITS[key]}
    times = [row["time_ratio"] for row in rows if "time_ratio" in row]
    if times:
        result["time"] = {"worst": max(times), "median": round(statistics.median(times), 4), "limit": 0.25}
    result["meets_limits"] = all(result[key]["worst"] <= LIMITS[key] for key in MEASURES)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=None, help="nst preset (default: the default preset)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an option override")
    parser.add_argument("--label", default=None, help="name of this run's results (default: the preset's)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pairs", default=",".join(PAIRS), help="comma-separated pair names")
    parser.add_argument("--classic-rate", type=int, default=30, help="classic evaluations timed (0: none)")
    parser.add_argument("--reuse", action="store_true", help="measure results kept by an earlier run")
    parser.add_argument("--shared", type=Path, required=True, help="the folder holding images/ and reference/")
    parser.add_argument(
        "--bundle",
        nargs="?",
        const="",
        default=None,
        metavar="DIR",
        help="run an exported bundle's default schedule in the Python host instead (no DIR: the default export)",
    )
    args = parser.parse_args()
    from nst import StyleTransfer
    from nst.engine.presets import DEFAULT_PRESET

    overrides = parse_sets(args.set)
    args.label = args.label or ("bundle" if args.bundle is not None else args.preset or DEFAULT_PRESET)
    pairs = [p.strip() for p in args.pairs.split(",") if p.strip()]
    unknown = sorted(set(pairs) - set(PAIRS))
    if unknown:
        raise SystemExit(f"error: unknown pair(s) {', '.join(unknown)}; choose from {', '.join(PAIRS)}")
    out = ROOT / "benchmarks" / "results" / "picture" / f"{args.label}_{args.size}"
    out.mkdir(parents=True, exist_ok=True)
    st = StyleTransfer(threads=args.threads)
    measures = Measures(threads=args.threads)
    keep: list = []
    transfer = (
        bundle_transfer(args.bundle or None, args.size, args.threads, keep)
        if args.bundle is not None
        else lambda c, s: st.transfer(c, [s], preset=args.preset, size=args.size, **overrides)
    )
    rows = []
    name = f"picture_{args.label}" + ("" if args.size == 512 else f"_{args.size}")
    for pair in pairs:
        rows.append(run_pair(st, measures, pair, args, transfer, out))
        report = {
            "what": "nst against the classic's published results; each measure lower-is-better, ratio = nst / classic",
            "preset": "bundle (Python host)" if args.bundle is not None else args.preset or DEFAULT_PRESET,
            "overrides": {k: str(v) for k, v in overrides.items()},
            "size": args.size,
            "threads": args.threads,
            "date": date.today().isoformat(),
            "summary": summary(rows),
            "pairs": rows,
        }
        (ROOT / "benchmarks" / "results" / f"{name}.json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
