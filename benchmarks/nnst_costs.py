"""What one nnst scale costs at a size: the matching (once per scale) against the evaluations (VGG forward and
backward passes plus the nn loss on the host), and the peak memory of preparing a one-scale nnst transfer
and evaluating it (what a run holds, less Adam's few bytes per pixel) against nst/engine/memory.py's
estimate; each size in a fresh process. Times are CPU seconds of the process (all its threads), which a
busy machine distorts less than wall time. Writes benchmarks/results/nnst_costs.json.

    python -m benchmarks.nnst_costs --sizes 256,512 --shared DIR
    python -m benchmarks.nnst_costs --sizes 256,512,1024 --tile 512 --shared DIR   # 1024 px in tiles of 512
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAIR = ("tubingen.jpg", "starry_night.jpg")


def one(size: int, images: Path, threads: int, tile: int = 0) -> dict:
    """Time the pieces of one nnst scale at `size` in this process, then run it whole for the peak."""
    import numpy as np

    from nst.engine import StyleTransfer
    from nst.engine.images import fit_size, read_image
    from nst.engine.kinds import tiled
    from nst.engine.memory import estimate_peak_mb, neighbour_channels
    from nst.engine.neighbour_tiles import MARGIN, TiledNeighbourObjective
    from nst.engine.tiling import tile_pixels

    st = StyleTransfer(threads=threads)
    content, style = str(images / PAIR[0]), str(images / PAIR[1])
    settings = dict(preset="nnst", size=size, scales=str(size), scale_iterations="5", tile=tile)
    start = time.process_time()
    prepared = st.prepare(content, [style], **settings)
    prepare_s = time.process_time() - start
    objective = prepared.objective
    columns, matcher = objective.columns, objective.matcher
    start = time.process_time()
    objective.match(prepared.x0)  # with its forward pass (or passes over the tiles)
    match_s = time.process_time() - start
    net, host, whole = [], [], []
    for _ in range(3):
        t0 = time.process_time()
        if isinstance(objective, TiledNeighbourObjective):  # tiles interleave the two: time them together
            objective.network(prepared.x0)
            whole.append(time.process_time() - t0)
            continue
        acts = objective.runner.forward(prepared.x0)
        t1 = time.process_time()
        _, _, grads = objective.layer_grads(acts)
        t2 = time.process_time()
        objective.runner.backward(grads)
        t3 = time.process_time()
        net.append((t1 - t0) + (t3 - t2))
        host.append(t2 - t1)
        whole.append(t3 - t0)
    h, w = fit_size(*read_image(content).shape[:2], size)
    sh, sw = fit_size(*read_image(style).shape[:2], size)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    opts = st.options(**settings)
    network = tile_pixels(st.spec, list(opts.style_layers), tile, MARGIN) if tiled(opts, h, w) else None
    style_pixels = min(sh * sw, network or sh * sw)  # as memory.transfer_demand counts a tiled style pass
    estimate = estimate_peak_mb(
        h * w,
        "split",
        "adam",
        network_pixels=network,
        style_pixels=style_pixels,
        neighbour_channels=neighbour_channels(opts),
        column_pixels=sh * sw,
    )
    return {
        "size": size,
        "tile": tile if network else 0,
        "content": [w, h],
        "style": [sw, sh],
        "positions": [columns.positions, int(matcher.style.shape[0])],
        "prepare_cpu_s (style columns, first matching)": round(prepare_s, 2),
        "matching_cpu_s (once per scale, with its forward pass)": round(match_s, 2),
        "evaluation_cpu_s": round(float(np.median(whole)), 3),
        "network_cpu_s per evaluation (forward + backward)": round(float(np.median(net)), 3) if net else None,
        "nn_loss_cpu_s per evaluation (host)": round(float(np.median(host)), 3) if host else None,
        "peak_mb": round(peak),
        "estimate_mb": round(estimate),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tile", type=int, default=0, help="tiles of this core for larger sizes (0: none)")
    parser.add_argument("--shared", type=Path, required=True, help="the folder holding images/")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    images = args.shared / "images"
    if args.one:
        print(json.dumps(one(args.one, images, args.threads, args.tile)))
        return
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        cmd = [sys.executable, "-m", "benchmarks.nnst_costs", "--one", str(size), "--shared", str(args.shared)]
        cmd += ["--threads", str(args.threads), "--tile", str(args.tile)]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if out.returncode:
            sys.exit(f"size {size} failed: {out.stderr.strip().splitlines()[-1]}")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]))
    path = ROOT / "benchmarks/results/nnst_costs.json"
    path.write_text(json.dumps({"threads": args.threads, "tile": args.tile, "cases": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
