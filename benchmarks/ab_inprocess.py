"""The objective of two nst versions in one process, evaluated alternately, so both see the same load:
per objective path, the ratio new / old of their median seconds per evaluation (forward, losses and
backward; the optimizer's step is not in it) and their losses, which must agree.

The older version must be importable under the top-level names it had before the `nst` package (engine,
kernels), for example a checkout of commit 85fbc0f on PYTHONPATH, run from outside any checkout:

    cd /tmp && PYTHONPATH=OLD_CHECKOUT python CHECKOUT/benchmarks/ab_inprocess.py --size 256 --out FILE
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import time
from pathlib import Path


def objectives(size: int, path: str, threads: int, first: str = "old") -> dict:
    """{'old': prepared, 'new': prepared} for the same synthetic images, johnson preset; `first` builds its
    sessions first (the order may favour one side: compare both orders)."""
    from nst.bench.timing import synthetic_pair

    content, style = synthetic_pair(size)
    made = {}
    sides = [("old", "engine"), ("new", "nst.engine")]
    for side, module in sides if first == "old" else sides[::-1]:
        st = importlib.import_module(module).StyleTransfer(device="cpu", threads=threads)
        made[side] = st.prepare(content, [style], preset="johnson", size=size, path=path, iterations=1)
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--paths", default="split,fused")
    parser.add_argument("--evaluations", type=int, default=8, help="timed evaluations per version and path")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--first", choices=["old", "new"], default="old", help="which version builds first")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    result = {
        "size": args.size,
        "threads": args.threads,
        "built_first": args.first,
        "paths": {},
        "date": time.strftime("%Y-%m-%d"),
    }
    for path in args.paths.split(","):
        prepared = objectives(args.size, path, args.threads, args.first)
        seconds: dict[str, list[float]] = {"old": [], "new": []}
        losses = {}
        for k in range(args.evaluations + 1):  # the first of each is warm-up
            for side in ("old", "new") if k % 2 else ("new", "old"):
                start = time.perf_counter()
                losses[side], _ = prepared[side].objective.loss_and_grad(prepared[side].x0)
                if k:
                    seconds[side].append(time.perf_counter() - start)
        ratios = [new / old for new, old in zip(seconds["new"], seconds["old"])]
        result["paths"][path] = {
            "seconds": seconds,
            "ratio_new_to_old_median": statistics.median(ratios),
            "ratio_of_medians": statistics.median(seconds["new"]) / statistics.median(seconds["old"]),
            "loss": losses,
        }
        print(path, json.dumps({k: v for k, v in result["paths"][path].items() if k != "seconds"}), flush=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
