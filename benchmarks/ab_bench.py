"""Two nst installs side by side: `nst bench` of each in alternating rounds, and per case (path, size) the
ratio after / before of their median seconds per iteration.  The machine's load drifts between rounds; a
ratio of runs made one right after the other (their order swapped each round) is what survives it.

    python -m benchmarks.ab_bench --before OLD_VENV/bin/nst --after .venv/bin/nst --sizes 256,512 \\
        --rounds 2 --out benchmarks/results/refactor_speed.json --keep-json benchmarks/results/bench_cpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def bench(nst: str, args, extra: list[str]) -> dict:
    """One `nst bench` run of the install whose command is `nst`; returns its JSON report."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "bench.json"
        command = [nst, "bench", "--providers", "cpu", "--sizes", args.sizes, "--paths", args.paths]
        command += ["--threads", str(args.threads), "--json", str(out), *extra]
        subprocess.run(command, check=True)
        return json.loads(out.read_text())


def medians(report: dict) -> dict[str, float]:
    """{'path size': median seconds per iteration} of a report's measured rows."""
    return {f"{row['path']} {row['size']}": row["median_s"] for row in report["rows"] if "median_s" in row}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the `nst` command of the install measured first")
    parser.add_argument("--after", required=True, help="the `nst` command of the install compared with it")
    parser.add_argument("--labels", default="before,after", help="what each install is, for the results file")
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--paths", default="split,fused")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--keep-json", type=Path, help="also write the last `after` report here")
    parser.add_argument("--keep-chart", type=Path, help="and its chart here")
    args = parser.parse_args()
    rounds = []
    for r in range(args.rounds):
        order = ("before", "after") if r % 2 == 0 else ("after", "before")
        reports = {}
        for side in order:
            last = side == "after" and r == args.rounds - 1
            extra = ["--chart", str(args.keep_chart)] if last and args.keep_chart else []
            reports[side] = bench(getattr(args, side), args, extra)
            if last and args.keep_json:
                args.keep_json.write_text(json.dumps(reports[side], indent=2) + "\n")
        before, after = medians(reports["before"]), medians(reports["after"])
        ratios = {case: after[case] / before[case] for case in before if case in after}
        rounds.append({"order": list(order), "before_s": before, "after_s": after, "ratio": ratios})
        print(f"round {r + 1}: " + ", ".join(f"{case} {ratio:.3f}" for case, ratio in ratios.items()), flush=True)
    cases = rounds[0]["ratio"].keys()
    result = {
        "what": "seconds per iteration of `nst bench` (lbfgs, 2 warm-up + 5 timed evaluations per case), "
        "ratio after / before, runs alternating in one session",
        "before": args.labels.split(",")[0],
        "after": args.labels.split(",")[-1],
        "threads": args.threads,
        "rounds": rounds,
        "ratio_median": {case: statistics.median(r["ratio"][case] for r in rounds) for case in cases},
        "date": time.strftime("%Y-%m-%d"),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["ratio_median"], indent=2))


if __name__ == "__main__":
    main()
