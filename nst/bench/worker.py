"""One `nst bench` case in a process of its own: `python -m nst.bench.worker CASE_JSON` (or `--sgemm=PROVIDER`)
prints its measurements as one JSON line, so each case's peak memory and caches are its own."""

from __future__ import annotations

import json
import os
import sys

from .timing import Case, measure, sgemm_gflops


def main(argument: str) -> None:
    if argument.startswith("--sgemm="):
        threads = os.environ.get("OMP_NUM_THREADS")
        print(json.dumps({"gflop_per_s": sgemm_gflops(argument.split("=", 1)[1], int(threads) if threads else None)}))
    else:
        print(json.dumps(measure(Case(**json.loads(argument)))))


if __name__ == "__main__":
    main(sys.argv[1])
