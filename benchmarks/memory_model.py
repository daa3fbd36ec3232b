"""Fit engine/memory.py's estimate to measured peaks: one `nst bench` worker per objective path and
size (johnson objective, L-BFGS history 10), each in a fresh process; writes
benchmarks/results/memory_model.json with the measured peaks beside the model's estimates. Rows of sizes
not measured this time stay, their estimates recomputed with the current model.

    python -m benchmarks.memory_model --sizes 128,256,384,512,768,1024 --threads 2
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from nst.engine.bench import plan, run_worker
    from nst.engine.memory import estimate_peak_mb

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="128,256,384,512")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    out = ROOT / "benchmarks" / "results" / "memory_model.json"
    measured = {
        (row["path"], row["size"]): row["measured_mb"]
        for row in (json.loads(out.read_text())["rows"] if out.exists() else [])
    }
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
    out.write_text(
        json.dumps(
            {
                "what": "peak RSS of one transfer (johnson objective, lbfgs history 10, square "
                "synthetic images) against engine/memory.py's estimate",
                "threads": args.threads,
                "rows": rows,
                "date": time.strftime("%Y-%m-%d"),
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
