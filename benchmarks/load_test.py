"""Load and fault test of `nst serve` on 127.0.0.1: jobs from concurrent clients, a quarter of them bad and a
tenth cancelled, the server killed with SIGKILL and restarted in the middle.  Counts what was accepted,
rejected (and why), done, cancelled and lost (must be 0); latency; throughput against the engine running the
same jobs one after another in this process; the server's resident memory over time.

    python -m benchmarks.load_test                  # the issue's plan: 48 jobs, 64-128 px, 20 iterations
    python -m benchmarks.load_test --iterations 5   # the same plan, lighter, on a crowded machine

Writes benchmarks/results/load_test.json.  Every loop is bounded in count and time; only loopback is used.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import struct
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

try:
    import httpx
except ImportError:  # --help answers without it; a run says what to install
    httpx = None

from nst.serve.config import cores
from nst.serve.launch import ServerProcess

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.jpg"))
RESULT = ROOT / "benchmarks" / "results" / "load_test.json"
TERMINAL = ("done", "failed", "cancelled")
BAD_KINDS = ("non-image", "over-upload-limit", "pixel-bomb", "bad-option", "path-like")
UPLOAD_MB = 1  # the server's --max-upload-mb in this test: the example images are 64-108 KB


@dataclass
class Plan:
    """One job a client will send: its kind, inputs and options."""

    index: int
    kind: str  # good | cancel | one of BAD_KINDS
    content: str
    style: str
    options: dict
    content_bytes: bytes | None = None  # replaces the content file's bytes (bad uploads)


@dataclass
class Outcome:
    """What happened to one planned job, as its client saw it."""

    plan: Plan
    http: int | None = None
    reason: str | None = None
    job_id: str | None = None
    final: str | None = None
    retries_429: int = 0
    retries_down: int = 0
    submit_seconds: float = 0.0
    done_seconds: float | None = None  # from the 202 to the done status seen
    result_ok: bool | None = None
    events: list = field(default_factory=list)


def png_bomb(side: int = 30000) -> bytes:
    """A PNG header declaring side x side pixels with nothing behind it."""
    chunk = b"IHDR" + struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + b"\0" * 64


def bad_job(kind: str, k: int, rng: random.Random) -> tuple[dict, bytes | None]:
    if kind == "non-image":
        return {}, rng.randbytes(2048)
    if kind == "over-upload-limit":
        return {}, (EXAMPLES[0].read_bytes() + rng.randbytes(UPLOAD_MB * 2**20))
    if kind == "pixel-bomb":
        return {}, png_bomb()
    if kind == "bad-option":
        return [{"size": 99999}, {"optimizer": "sgd"}, {"iterations": -3}, {"style_weight": "lots"}][k % 4], None
    return [{"preset": "../../etc/passwd"}, {"init": "/etc/passwd"}, {"style_masks": "/tmp/m.png"}][k % 3], None


def plan_jobs(count: int, sizes: tuple[int, int], iterations: int, seed: int) -> list[Plan]:
    """A quarter bad (cycling through BAD_KINDS), a tenth cancelled, the rest good; shuffled."""
    rng = random.Random(seed)
    bad, cancel = round(count / 4), round(count / 10)
    kinds = [BAD_KINDS[i % len(BAD_KINDS)] for i in range(bad)] + ["cancel"] * cancel
    kinds += ["good"] * (count - len(kinds))
    rng.shuffle(kinds)
    plans = []
    for index, kind in enumerate(kinds):
        content, style = rng.sample(EXAMPLES, 2)
        options = {"size": rng.choice(range(sizes[0], sizes[1] + 1, 16)), "iterations": iterations, "seed": index}
        content_bytes = None
        if kind in BAD_KINDS:
            extra, content_bytes = bad_job(kind, index, rng)
            options |= extra
        plans.append(Plan(index, kind, content.name, style.name, options, content_bytes))
    return plans


class Engine:
    """The same jobs run by the engine one after another in this process (the CLI's way): wall and CPU
    seconds of each, and the time of each evaluation after a scale's first (what the server's
    seconds-per-iteration counts)."""

    def __init__(self, threads: int) -> None:
        from nst.engine import StyleTransfer

        self.st = StyleTransfer(threads=threads)
        self.seconds: dict[int, float] = {}
        self.cpu: dict[int, float] = {}
        self.steps: list[float] = []
        self._last = 0.0

    def _step(self, p) -> None:
        if p.iteration > 0:
            self.steps.append(p.elapsed - self._last)
        self._last = p.elapsed

    def run(self, plans: list[Plan]) -> None:
        for plan in plans:
            start, cpu = time.perf_counter(), time.process_time()
            content, style = str(ROOT / "examples" / plan.content), str(ROOT / "examples" / plan.style)
            self.st.transfer(content, [style], callback=self._step, **plan.options)
            self.seconds[plan.index] = time.perf_counter() - start
            self.cpu[plan.index] = time.process_time() - cpu


def process_cpu(pid: int) -> float:
    """User plus system CPU seconds of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Load:
    """The clients, the kill and restart, and the memory sampler around one server."""

    def __init__(self, server: ServerProcess, plans: list[Plan], clients: int, deadline: float, kill_after: int):
        self.server, self.plans, self.clients = server, list(plans), clients
        self.deadline, self.kill_after = deadline, kill_after
        self.outcomes: list[Outcome] = []
        self.lock = threading.Lock()
        self.done_count = 0
        self.memory: list[tuple[float, int, float]] = []  # (seconds, server generation, RSS MB)
        self.generation = 1
        self.t0 = time.monotonic()
        self.kill_at = self.ready_at = None
        self.first_done = {}  # generation -> seconds of its first finished job
        self.last_done = 0.0
        self.iteration_metrics = [(0.0, 0.0)]  # (sum, count) of seconds per iteration, per server generation
        self.stop = False
        self.cpu: dict[int, list[float]] = {}  # generation -> [CPU seconds at its first sample, at its last]

    def now(self) -> float:
        return time.monotonic() - self.t0

    def run(self) -> None:
        sampler = threading.Thread(target=self.sample, daemon=True)
        sampler.start()
        workers = [threading.Thread(target=self.client, daemon=True) for _ in range(self.clients)]
        for w in workers:
            w.start()
        while self.done_count < self.kill_after and self.now() < self.deadline and any(w.is_alive() for w in workers):
            time.sleep(0.2)
        self.iteration_metrics = [iteration_metrics(self.server.url)]
        self.kill_at = self.now()
        self.server.kill()
        self.generation = 2
        self.server.start()
        self.ready_at = self.now()
        for w in workers:
            w.join(max(1.0, self.deadline - self.now() + 30))
        self.iteration_metrics.append(iteration_metrics(self.server.url))
        self.stop = True

    def sample(self) -> None:
        while self.now() < self.deadline + 60 and not self.stop:
            try:
                text = Path(f"/proc/{self.server.pid}/status").read_text()
                rss = int(next(line for line in text.splitlines() if line.startswith("VmRSS")).split()[1]) / 1024
                self.memory.append((round(self.now(), 1), self.generation, round(rss, 1)))
                cpu = process_cpu(self.server.pid)
                self.cpu.setdefault(self.generation, [cpu, cpu])[1] = cpu
            except (OSError, StopIteration, AttributeError):
                pass
            time.sleep(0.5)

    def client(self) -> None:
        with httpx.Client(base_url=self.server.url, timeout=60) as http:
            while self.now() < self.deadline:
                with self.lock:
                    if not self.plans:
                        return
                    plan = self.plans.pop(0)
                outcome = Outcome(plan)
                self.submit(http, outcome)
                if outcome.job_id:
                    if plan.kind == "cancel":
                        self.cancel(http, outcome)
                    self.follow(http, outcome)
                with self.lock:
                    self.outcomes.append(outcome)

    def request(self, http: httpx.Client, outcome: Outcome, method: str, path: str, **kw) -> httpx.Response | None:
        """One request, retried while the server is down (killed and restarting), within the deadline."""
        while self.now() < self.deadline:
            try:
                return http.request(method, path, **kw)
            except httpx.TransportError:
                outcome.retries_down += 1
                time.sleep(0.5)
        return None

    def submit(self, http: httpx.Client, outcome: Outcome) -> None:
        plan = outcome.plan
        content = (
            plan.content_bytes if plan.content_bytes is not None else (ROOT / "examples" / plan.content).read_bytes()
        )
        files = [
            ("content", (plan.content, content, "image/jpeg")),
            ("style", (plan.style, (ROOT / "examples" / plan.style).read_bytes(), "image/jpeg")),
        ]
        start = time.monotonic()
        for _ in range(200):  # 429s: wait as told, a bounded number of times
            response = self.request(
                http, outcome, "POST", "/v1/transfers", files=files, data={"options": json.dumps(plan.options)}
            )
            if response is None or response.status_code != 429:
                break
            outcome.retries_429 += 1
            time.sleep(min(5.0, float(response.headers.get("retry-after", 1))))
        outcome.submit_seconds = time.monotonic() - start
        if response is None:
            return
        outcome.http = response.status_code
        if response.status_code == 202:
            outcome.job_id = response.json()["id"]
        else:
            outcome.reason = response.json().get("error")

    def cancel(self, http: httpx.Client, outcome: Outcome) -> None:
        """Cancel once the job runs (or after a few seconds queued)."""
        until = self.now() + random.Random(outcome.plan.index).uniform(0.5, 4.0)
        while self.now() < until:
            status = self.request(http, outcome, "GET", f"/v1/transfers/{outcome.job_id}")
            if status is not None and status.status_code == 200 and status.json()["status"] != "queued":
                break
            time.sleep(0.3)
        response = self.request(http, outcome, "DELETE", f"/v1/transfers/{outcome.job_id}")
        if response is not None:
            outcome.events.append(("delete", response.status_code, response.json().get("status")))

    def follow(self, http: httpx.Client, outcome: Outcome) -> None:
        accepted = time.monotonic()
        while self.now() < self.deadline:
            response = self.request(http, outcome, "GET", f"/v1/transfers/{outcome.job_id}")
            if response is None:
                return
            if response.status_code == 404:  # a job deleted by its client after it finished
                outcome.final = "deleted"
                return
            status = response.json()["status"]
            if status in TERMINAL:
                outcome.final = status
                break
            time.sleep(0.5)
        if outcome.final == "done":
            outcome.done_seconds = time.monotonic() - accepted
            result = self.request(http, outcome, "GET", f"/v1/transfers/{outcome.job_id}/result")
            outcome.result_ok = result is not None and result.status_code == 200 and result.content[:4] == b"\x89PNG"
            with self.lock:
                self.done_count += 1
                self.first_done.setdefault(self.generation, self.now())
                self.last_done = self.now()


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], 2)


def server_records(data: Path) -> dict[str, dict]:
    """Every job record the server committed (its SQLite database under `data`)."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(data / "jobs.sqlite3", timeout=30)) as db:
        return {job_id: json.loads(text) for job_id, text in db.execute("SELECT id, record FROM jobs")}


def iteration_metrics(url: str) -> tuple[float, float]:
    """The server's nst_seconds_per_iteration (sum, count) since it started."""
    try:
        text = httpx.get(url + "/metrics", timeout=10).text
    except httpx.HTTPError:
        return 0.0, 0.0
    values = dict(line.split() for line in text.splitlines() if line.startswith("nst_seconds_per_iteration_"))
    return float(values["nst_seconds_per_iteration_sum"]), float(values["nst_seconds_per_iteration_count"])


def memory_summary(load: Load) -> dict:
    """RSS after warm-up (the first finished job of each server generation), at its peak and at the end."""
    summary = {}
    for generation in (1, 2):
        samples = [(t, rss) for t, g, rss in load.memory if g == generation]
        warm_t = load.first_done.get(generation)
        warm = [rss for t, rss in samples if warm_t is not None and t >= warm_t]
        if not samples or not warm:
            continue
        summary[f"server_{generation}"] = {
            "warm_mb": warm[0],
            "peak_mb": max(warm),
            "final_mb": samples[-1][1],
            "final_over_warm": round(samples[-1][1] / warm[0], 3),
        }
    step = max(1, len(load.memory) // 120)
    summary["timeline_s_generation_mb"] = load.memory[::step]
    return summary


def throughput(load: Load, engine: Engine, done: list[Outcome], records: dict[str, dict]) -> dict:
    """The server against the engine on the done jobs: wall time, each job's run, CPU seconds, iterations."""
    wall = load.last_done - (load.ready_at - load.kill_at)
    base = sum(engine.seconds[o.plan.index] for o in done)
    base_cpu = sum(engine.cpu[o.plan.index] for o in done)
    run = sum(records[o.job_id]["finished"] - records[o.job_id]["started"] for o in done if o.job_id in records)
    server_cpu = sum(last - first for first, last in load.cpu.values())
    served = [sum(m[i] for m in load.iteration_metrics) for i in (0, 1)]
    spi_engine = sum(engine.steps) / len(engine.steps) if engine.steps else None
    spi_server = served[0] / served[1] if served[1] else None

    def cost(server: float | None, reference: float | None) -> float | None:
        return round(server / reference - 1, 3) if server and reference else None

    return {
        "engine_wall_s": round(base, 1),
        "server_wall_s_without_downtime": round(wall, 1),
        "server_cost_end_to_end": cost(wall, base),
        "server_run_s": round(run, 1),
        "server_cost_per_job": cost(run, base),
        "engine_cpu_s": round(base_cpu, 1),
        "server_cpu_s": round(server_cpu, 1),
        "server_cost_cpu": cost(server_cpu, base_cpu),
        "seconds_per_iteration_engine": round(spi_engine, 4) if spi_engine else None,
        "seconds_per_iteration_server": round(spi_server, 4) if spi_server else None,
        "server_cost_per_iteration": cost(spi_server, spi_engine),
        "note": "the engine ran half the jobs before the load and half after, to share the machine's drift. "
        "end to end: first request to last result, less the time the server was down. per job: each done job's "
        "run in the server (its record's started to finished). cpu: the server process's user+system seconds "
        "from start to end of each life against the engine's for the same jobs (least sensitive to other work "
        "on the machine). end to end and cpu include the run cut short by the kill and redone, cancelled jobs' "
        "partial runs, refused requests, polling and the restarted server's model loading",
    }


def report(load: Load, plans: list[Plan], engine: Engine, data: Path, args) -> dict:
    outcomes = load.outcomes
    records = server_records(data)
    accepted = [o for o in outcomes if o.job_id]
    rejected: dict[str, int] = {}
    for o in outcomes:
        if o.http and o.http != 202:
            key = f"{o.http} {o.plan.kind}"
            rejected[key] = rejected.get(key, 0) + 1
    known = {o.job_id for o in accepted}
    finals = {}
    for o in accepted:
        finals[o.final or "unfinished"] = finals.get(o.final or "unfinished", 0) + 1
    lost = [o.job_id for o in accepted if o.final not in ("done", "cancelled", "deleted")]
    orphans = {i: r["status"] for i, r in records.items() if i not in known}
    done = [o for o in accepted if o.final == "done"]
    return {
        "what": "nst serve under load with a SIGKILL and restart in the middle (benchmarks/load_test.py)",
        "machine": f"{cores()} cores, load average {os.getloadavg()[0]:.1f} at the end: other work on the machine "
        "makes absolute times noisy; ratios are measured side by side in one run",
        "plan": {
            "jobs": len(plans),
            "clients": args.clients,
            "sizes_px": list(args.sizes),
            "iterations_per_scale": args.iterations,
            "kinds": {k: sum(p.kind == k for p in plans) for k in sorted({p.kind for p in plans})},
            "server": f"nst serve, default workers and queue, --max-upload-mb {UPLOAD_MB}",
        },
        "counts": {
            "accepted": len(accepted),
            "rejected": rejected,
            "final_as_clients_saw_it": finals,
            "lost": len(lost),
            "lost_ids": lost,
            "accepted_but_202_not_received": orphans,
            "results_checked_png": sum(bool(o.result_ok) for o in done),
            "retries_on_429": sum(o.retries_429 for o in outcomes),
            "requests_retried_while_down": sum(o.retries_down for o in outcomes),
            "jobs_run_more_than_once": sum(r.get("attempts", 0) > 1 for r in records.values()),
        },
        "latency_s": {
            "submit_p50": percentile([o.submit_seconds for o in accepted], 0.5),
            "submit_p95": percentile([o.submit_seconds for o in accepted], 0.95),
            "accepted_to_done_p50": percentile([o.done_seconds for o in done], 0.5),
            "accepted_to_done_p95": percentile([o.done_seconds for o in done], 0.95),
        },
        "kill": {"at_s": round(load.kill_at, 1), "back_after_s": round(load.ready_at - load.kill_at, 1)},
        "throughput": throughput(load, engine, done, records),
        "memory": memory_summary(load),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=48)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--sizes", type=int, nargs=2, default=(64, 128))
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--deadline", type=float, default=900.0, help="seconds for the load phase")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    if httpx is None:
        raise SystemExit('load_test needs httpx: pip install ".[serve,serve-test]"')

    plans = plan_jobs(args.jobs, tuple(args.sizes), args.iterations, args.seed)
    good = [p for p in plans if p.kind == "good"]
    start = time.perf_counter()
    engine = Engine(cores())
    engine.run(good[::2])
    print(f"engine, one job after another: {sum(engine.seconds.values()):.1f} s for {len(good[::2])} jobs", flush=True)

    data = Path(tempfile.mkdtemp(prefix="nst-load-")) / "data"
    server = ServerProcess(data, args=("--max-upload-mb", UPLOAD_MB)).start()
    try:
        load = Load(server, plans, args.clients, args.deadline, kill_after=max(1, len(good) // 3))
        load.run()
    finally:
        server.stop()
    engine.run(good[1::2])
    result = report(load, plans, engine, data, args)
    result["seconds_total"] = round(time.perf_counter() - start, 1)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    shutil.rmtree(data.parent, ignore_errors=True)
    print(json.dumps({k: result[k] for k in ("counts", "latency_s", "throughput")}, indent=1))


if __name__ == "__main__":
    main()
