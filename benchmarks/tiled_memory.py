"""Peak memory of tiled transfers against nst/engine/memory.py's estimate: one single-scale `nst` transfer
(woman-with-hat-matisse x starry_night, nst's L-BFGS history 5, style at up to 1024 px, 2 iterations) per
size and tile, each in a fresh process; writes benchmarks/results/tiled_memory.json.

    python -m benchmarks.tiled_memory --cases 2048:1024,1024:512
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.images import add_images_option, image
from benchmarks.print_size import CONTENT_NAME, STYLE_NAME  # the print run's pair

ROOT = Path(__file__).resolve().parents[1]


def one(size: int, tile: int, images: Path) -> dict:
    """Run one tiled transfer in this process; its peak RSS beside the estimate made before it."""
    from nst.engine import StyleTransfer
    from nst.engine.images import fit_size, read_image
    from nst.engine.memory import estimate_peak_mb
    from nst.engine.tiling import tile_pixels

    st = StyleTransfer(threads=2)
    settings = dict(
        preset="nst",
        size=size,
        tile=tile,
        scales=str(size),
        scale_iterations="2",
        history=5,
        style_scale=min(1.0, 1024 / size),
        path="split",
    )
    content, style = str(image(images, CONTENT_NAME)), str(image(images, STYLE_NAME))
    opts = st.options(**settings)
    h, w = fit_size(*read_image(content).shape[:2], size)
    layers = list(set(opts.content_layers) | set(opts.style_layers))
    estimate = estimate_peak_mb(h * w, "split", "lbfgs", 5, network_pixels=tile_pixels(st.spec, layers, tile))
    start = time.perf_counter()
    st.stylize(content, [style], **settings)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # a fresh process: its own peak
    return {
        "size": f"{w}x{h}",
        "tile": tile,
        "peak_mb": round(peak),
        "estimate_mb": round(estimate),
        "estimate_over_peak": round(estimate / peak, 3),
        "seconds": round(time.perf_counter() - start),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="2048:1024,1024:512", help="SIZE:TILE pairs")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    add_images_option(parser)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(*map(int, args.one.split(":")), args.images)))
        return
    rows = []
    for case in args.cases.split(","):
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.tiled_memory", "--one", case, "--images", str(args.images)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    (ROOT / "benchmarks" / "results" / "tiled_memory.json").write_text(
        json.dumps({"what": __doc__.split("\n\n")[0], "rows": rows, "date": time.strftime("%Y-%m-%d")}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
