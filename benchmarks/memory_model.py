"""Fit engine/memory.py's estimate to measured peaks: one `nst bench` worker per objective path and
size (johnson objective, L-BFGS history 10), each in a fresh process; writes
benchmarks/results/memory_model.json with the measured peaks beside the model's estimates.

    python benchmarks/memory_model.py --sizes 128,256,384,512 --threads 2
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from engine.bench import plan, run_worker
    from engine.memory import estimate_peak_mb

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="128,256,384,512")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    rows = []
    for case in plan("cpu", args.sizes, "split,fused", 2, 1, args.threads):
        measured = run_worker(json.dumps(asdict(case)), case.threads)["peak_host_mb"]
        estimate = estimate_peak_mb(case.size * case.size, case.path, "lbfgs", 10)
        rows.append({"path": case.path, "size": case.size, "measured_mb": round(measured),
                     "estimate_mb": round(estimate), "estimate_over_measured": round(estimate / measured, 3)})
        print(json.dumps(rows[-1]), flush=True)
    out = ROOT / "benchmarks" / "results" / "memory_model.json"
    out.write_text(json.dumps({"what": "peak RSS of one transfer (johnson objective, lbfgs history 10, square "
                                       "synthetic images) against engine/memory.py's estimate",
                               "threads": args.threads, "rows": rows, "date": time.strftime("%Y-%m-%d")},
                              indent=2) + "\n")


if __name__ == "__main__":
    main()
