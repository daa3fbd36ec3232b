"""A print-size transfer on this machine: coarse to fine up to --size, the large scales tiled (--tile),
timed per scale, with the peak memory of the process. The full result (a PNG of about 25 MB at 4096 px)
goes to benchmarks/cache/ (not committed); docs/ gets a 1024 px preview and a 1:1 crop as
JPEGs (a public-domain painting as content, so they may be committed) and the numbers go to
benchmarks/results/print_size_<size>.json.

    python -m benchmarks.print_size --size 4096 --tile 1024            # hours on 2 cores
    python -m benchmarks.print_size --size 256 --tile 64 --scales 128,256 --scale-iterations 3,2   # a test
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

from benchmarks.images import add_images_option, image

ROOT = Path(__file__).resolve().parents[1]
CONTENT_NAME, STYLE_NAME = "woman-with-hat-matisse.jpg", "starry_night.jpg"  # from examples/ or --images


def main() -> None:
    from nst.engine import StyleTransfer
    from nst.engine.images import save_result

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--scales", default="512,1024,2048,4096")
    parser.add_argument("--scale-iterations", default="200,100,30,10")
    parser.add_argument("--history", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    add_images_option(parser)
    args = parser.parse_args()
    st = StyleTransfer(threads=args.threads)
    scales: dict[int, dict] = {}
    start = time.perf_counter()

    def progress(p) -> None:
        row = scales.setdefault(p.scale, {"iterations": 0})
        row.update(iterations=p.iteration + 1, seconds=round(p.elapsed, 1), loss=p.losses["loss"])
        print(
            f"scale {p.scale + 1}/{p.scales} iteration {p.iteration + 1}/{p.iterations} "
            f"{p.elapsed:.0f} s loss {p.losses['loss']:.4g}",
            flush=True,
        )

    # the painting is 591x800: upscaled to print size, as a user enlarging a small picture would
    result = st.stylize(
        str(image(args.images, CONTENT_NAME)),
        [str(image(args.images, STYLE_NAME))],
        preset="nst",
        size=args.size,
        tile=args.tile,
        scales=args.scales,
        scale_iterations=args.scale_iterations,
        history=args.history,
        style_scale=min(1.0, 1024 / args.size),
        callback=progress,
    )
    total = time.perf_counter() - start
    out = args.out or ROOT / "benchmarks" / "cache" / f"print_size_{args.size}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    save_result(out, result)
    write_views(result, ROOT / "docs" / f"print_size_{args.size}")
    report = {
        "size": args.size,
        "tile": args.tile,
        "scales": args.scales,
        "scale_iterations": args.scale_iterations,
        "history": args.history,
        "threads": args.threads,
        "result": f"{result.shape[1]}x{result.shape[0]}",
        "seconds": round(total, 1),
        "per_scale": scales,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "date": time.strftime("%Y-%m-%d"),
    }
    (ROOT / "benchmarks" / "results" / f"print_size_{args.size}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


def write_views(result, stem: Path) -> None:
    """A 1024 px preview of the whole result and a 1:1 crop of its middle, where tile borders cross."""
    from nst.engine.images import resize, save_result

    h, w = result.shape[:2]
    scale = 1024 / max(h, w)
    save_result(Path(f"{stem}_preview.jpg"), resize(result, round(h * scale), round(w * scale)))
    y, x = max(0, h // 2 - 400), max(0, w // 2 - 500)
    save_result(Path(f"{stem}_crop.jpg"), result[y : y + 800, x : x + 1000])


if __name__ == "__main__":
    main()
