"""nst batch on Ray: images per second with 1 and 2 actors (1 thread each) on a local cluster.

Each actor loads the model once; its first image also builds the sessions, so a warm-up image per actor
runs first and only the images after it are timed.  Synthetic images, --size px, --iterations each.

    python -m benchmarks.ray_throughput --images 6 --size 64 --iterations 10
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STYLE = ROOT / "examples" / "starry_night.jpg"
CONTENT = ROOT / "examples" / "shipwreck.jpg"


def measure(ray, actors_count: int, args) -> dict:
    from nst.batch.runner import plan_batch
    from nst.distributed.batch import make_one
    from nst.distributed.pool import RayResources, run_all, start_actors
    from nst.engine import StyleTransfer

    actors = start_actors(ray, RayResources(actors_count, 1))
    options = {"size": args.size, "iterations": args.iterations, "scales": 1}
    planner = StyleTransfer(threads=1)
    with tempfile.TemporaryDirectory(prefix="ray-throughput-") as tmp:
        jobs = {}
        for name, count in (("warm", actors_count), ("timed", args.images)):
            folder = Path(tmp) / name
            folder.mkdir()
            for i in range(count):
                shutil.copy(CONTENT, folder / f"img{i}{CONTENT.suffix}")
            jobs[name] = plan_batch(planner, folder, [str(STYLE)], Path(tmp) / f"{name}_out", preset="nst", **options)
        warm = jobs["warm"]
        ray.get([a.call.remote(partial(make_one, job=warm), pair) for a, pair in zip(actors, warm.targets)])
        start = time.perf_counter()
        results = run_all(ray, actors, partial(make_one, job=jobs["timed"]), jobs["timed"].targets)
        seconds = time.perf_counter() - start
    for actor in actors:
        ray.kill(actor)
    assert all(outcome.status == "written" for outcome in results)
    return {"actors": actors_count, "images": args.images, "seconds": seconds, "images_per_s": args.images / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ray_throughput.json")
    args = parser.parse_args()
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    runs = [measure(ray, n, args) for n in (1, 2)]
    ray.shutdown()
    report = {
        "size": args.size,
        "iterations": args.iterations,
        "cpus": 2,
        "threads_per_actor": 1,
        "load_average_1min_at_end": os.getloadavg()[0],  # the machine is shared: how busy it was
        "runs": runs,
        "speedup_2_vs_1": runs[1]["images_per_s"] / runs[0]["images_per_s"],
    }
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
