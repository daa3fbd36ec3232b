"""Two nst installs side by side: `nst bench` of each, one case (path, size) at a time, alternating, and
per case the ratio after / before of their median seconds per iteration.  The machine's load drifts; a
ratio of two runs made one right after the other (their order swapped each round) is what survives it.

    python -m benchmarks.ab_bench --before OLD_VENV/bin/nst --after .venv/bin/nst --sizes 256,512 \\
        --rounds 2 --out benchmarks/results/refactor_speed.json --keep-json benchmarks/results/bench_cpu.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def bench(nst: str, args, path: str, size: str) -> dict:
    """One `nst bench` run of one case by the install whose command is `nst`; returns its JSON report."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "bench.json"
        program = str(Path(shutil.which(nst) or nst).absolute())
        command = [program, "bench", "--providers", "cpu", "--sizes", size, "--paths", path, "--json", str(out)]
        command += ["--threads", str(args.threads), "--iterations", str(args.iterations), "--warmup", str(args.warmup)]
        subprocess.run(command, check=True, cwd=folder)  # not a checkout, whose modules would shadow the install
        return json.loads(out.read_text())


def keep(reports: list[dict], json_path: Path, chart: Path | None) -> None:
    """The `after` install's reports of one round as one `nst bench` report (and its chart)."""
    from nst.bench.chart import bench_chart
    from nst.bench.timing import faster_paths
    from nst.engine.images import write_image

    rows = [row for report in reports for row in report["rows"]]
    merged = reports[0] | {"rows": rows, "faster_path": faster_paths(rows)}
    json_path.write_text(json.dumps(merged, indent=2) + "\n")
    if chart is not None:
        write_image(chart, bench_chart(merged))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the `nst` command of the install measured first")
    parser.add_argument("--after", required=True, help="the `nst` command of the install compared with it")
    parser.add_argument("--labels", default="before,after", help="what each install is, for the results file")
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--paths", default="split,fused")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--keep-json", type=Path, help="also write the last round's `after` reports here")
    parser.add_argument("--keep-chart", type=Path, help="and their chart here")
    args = parser.parse_args()
    cases = [(path, size) for size in args.sizes.split(",") for path in args.paths.split(",")]
    rounds = []
    for r in range(args.rounds):
        order = ("before", "after") if r % 2 == 0 else ("after", "before")
        seconds: dict = {"before": {}, "after": {}}
        kept = []
        for path, size in cases:
            for side in order:
                report = bench(getattr(args, side), args, path, size)
                seconds[side][f"{path} {size}"] = report["rows"][0].get("median_s")
                if side == "after":
                    kept.append(report)
            case = f"{path} {size}"
            print(f"round {r + 1} {case}: {seconds['after'][case] / seconds['before'][case]:.3f}", flush=True)
        ratios = {case: seconds["after"][case] / seconds["before"][case] for case in seconds["before"]}
        rounds.append({"order": list(order), "ratio": ratios} | {f"{side}_s": seconds[side] for side in order})
        if args.keep_json and r == args.rounds - 1:
            keep(kept, args.keep_json, args.keep_chart)
    labels = args.labels.split(",")
    result = {
        "what": f"median seconds per iteration of `nst bench` (lbfgs, {args.warmup} warm-up + {args.iterations} timed "
        "evaluations per case, each in a fresh process), ratio after / before; the two installs' runs of a case "
        "back to back, their order swapped each round",
        "before": labels[0],
        "after": labels[-1],
        "threads": args.threads,
        "rounds": rounds,
        "ratio_median": {case: statistics.median(r["ratio"][case] for r in rounds) for case in rounds[0]["ratio"]},
        "date": time.strftime("%Y-%m-%d"),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["ratio_median"], indent=2))


if __name__ == "__main__":
    main()
