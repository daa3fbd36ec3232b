"""Seconds per Adam iteration of the bundle's hosts against nst's own engine, side by side at each size.

For each size, rounds of: the Python engine (StyleTransfer, fused objective, Adam on the device), the Python
host, the Node host and the page in headless Chromium (WebAssembly, 2 threads), each running the same pair
on one scale; per-iteration time is the median step-to-step interval after the first steps. The machine is
shared, so only ratios measured in the same round mean much: the file records every round.

Targets (issue 12): Node host / Python engine at most 1.1; browser / Python engine at most 4.

    python -m benchmarks.hosts_speed --sizes 256,512 --iterations 8 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAIR = (ROOT / "examples" / "woman-with-hat-matisse.jpg", ROOT / "examples" / "starry_night.jpg")
CHROMIUM = "/usr/bin/chromium"
WEBGPU_FLAGS = ["--enable-unsafe-webgpu"]  # headless Chromium offers no WebGPU adapter without it
WARMUP = 1  # intervals left out after the first step (whose run planned memory and packed weights)


def per_iteration(stamps: list[float]) -> float:
    """Median interval between step stamps (seconds), leaving out the first WARMUP steps."""
    return statistics.median(b - a for a, b in zip(stamps[WARMUP:], stamps[WARMUP + 1 :]))


def serve(folder: Path) -> tuple[subprocess.Popen, str]:
    """The exported page's own static server (COOP/COEP headers) on 127.0.0.1, a free port: (process, URL)."""
    server = subprocess.Popen(
        [sys.executable, str(folder / "serve.py"), "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    return server, server.stdout.readline().rsplit(" at ", 1)[1].strip()


def browse(
    folder: Path, query: str, until: str, timeout_s: float = 900, screenshot: Path | None = None, webgpu: bool = False
) -> dict:
    """Open the page (exported with --web into `folder`) in headless Debian Chromium with `query`, wait until
    the JavaScript expression `until` holds or the page reports an error; returns window.nstRun. `webgpu`
    lets headless Chromium offer WebGPU (without a GPU, SwiftShader's software adapter)."""
    from playwright.sync_api import sync_playwright

    server, url = serve(folder)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", *(WEBGPU_FLAGS if webgpu else [])]
            )
            page = browser.new_page(viewport={"width": 1000, "height": 720})
            page.goto(f"{url}?{query}")
            page.wait_for_function(f"window.nstRun && (window.nstRun.error || {until})", timeout=timeout_s * 1000)
            if screenshot:
                page.screenshot(path=str(screenshot), timeout=120_000)
            run = page.evaluate("JSON.parse(JSON.stringify(window.nstRun))")
            run["isolated"] = page.evaluate("crossOriginIsolated")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return run


def host_stamps(command: list[str]) -> tuple[list[float], list[float]]:
    """Wall and process CPU seconds at every step of a host run."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=True)
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return [r["seconds"] for r in records], [r["cpu_seconds"] for r in records]


def engine_stamps(st, size: int, iterations: int) -> tuple[list[float], list[float]]:
    stamps: list[float] = []
    cpu: list[float] = []
    st.stylize(
        str(PAIR[0]),
        [str(PAIR[1])],
        preset="nst",
        size=size,
        iterations=iterations,
        scales=1,
        optimizer="adam",
        path="fused",
        callback=lambda p: stamps.append(time.perf_counter()) or cpu.append(time.process_time()),
    )
    return stamps, cpu


def one_round(st, web: Path, size: int, iterations: int, threads: int) -> dict:
    args = [str(PAIR[0]), str(PAIR[1]), "--bundle", str(web / "bundle"), "--size", str(size)]
    args += ["--iterations", str(iterations), "--scales", "1", "--threads", str(threads)]
    python_host = [sys.executable, str(ROOT / "hosts" / "python" / "stylize_bundle.py"), *args, "-o"]
    node_host = ["node", str(ROOT / "hosts" / "node" / "stylize.mjs"), *args, "-o"]
    row = {}
    runs = {
        "engine": engine_stamps(st, size, iterations),
        "python_host": host_stamps(python_host + [str(web / "py.png")]),
        "node_host": host_stamps(node_host + [str(web / "node.png")]),
    }
    for name, (wall, cpu) in runs.items():
        row[name], row[f"{name}_cpu"] = per_iteration(wall), per_iteration(cpu)
    query = f"content={PAIR[0].name}&style={PAIR[1].name}&size={size}&iterations={iterations}&scales=1"
    run = browse(web, f"{query}&threads={threads}&backend=wasm&autorun=1", "window.nstRun.done", 3600)
    if run["error"] or not run["isolated"]:
        raise SystemExit(f"browser run failed: {run['error'] or 'not cross-origin isolated'}")
    row["browser_wasm"] = per_iteration([r["seconds"] for r in run["records"]])
    row = {k: round(v, 4) for k, v in row.items()}
    row |= {f"{k}_over_engine": round(row[k] / row["engine"], 3) for k in ("python_host", "node_host", "browser_wasm")}
    # CPU time: what a machine shared with other work stretches least (the browser's is not visible to a page)
    row |= {f"{k}_cpu_over_engine": round(row[f"{k}_cpu"] / row["engine_cpu"], 3) for k in ("python_host", "node_host")}
    print(json.dumps({"size": size, **row}), flush=True)
    return row


def exported_page(folder: Path) -> Path:
    """`nst export --web` into `folder`, with the example pair beside the page."""
    from nst.bundle.export import export_folder

    export_folder(folder, web=True, force=True)
    for path in PAIR:
        shutil.copy(path, folder / path.name)
    return folder


def screenshot(out: Path, size: int = 160, steps: int = 40, at: int = 15) -> None:
    """The page `at` steps into a one-scale run of `steps` (the README's picture; short, for a busy machine)."""
    with tempfile.TemporaryDirectory() as folder:
        web = exported_page(Path(folder))
        query = f"content={PAIR[0].name}&style={PAIR[1].name}&size={size}&iterations={steps}&scales=1&autorun=1"
        run = browse(web, query, f"window.nstRun.records.length >= {at}", 3600, out)
    print(json.dumps({"screenshot": str(out), "steps": len(run["records"]), "backend": run["backend"]}))


def main() -> None:
    from nst.engine import StyleTransfer

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--screenshot", help="instead: save a picture of the page mid-transfer here (PNG)")
    args = parser.parse_args()
    if args.screenshot:
        return screenshot(Path(args.screenshot).resolve())
    st = StyleTransfer(threads=args.threads)
    result: dict = {"threads": args.threads, "iterations": args.iterations, "warmup_steps": WARMUP, "sizes": {}}
    with tempfile.TemporaryDirectory() as folder:
        web = exported_page(Path(folder))
        for size in (int(s) for s in args.sizes.split(",")):
            rounds = [one_round(st, web, size, args.iterations, args.threads) for _ in range(args.rounds)]
            keys = [k for k in rounds[0] if "_over_engine" in k]
            summary = {k: statistics.median(r[k] for r in rounds) for k in keys}
            result["sizes"][str(size)] = {"median": summary, "rounds": rounds}
            result["date"] = time.strftime("%Y-%m-%d")
            # after every size: a long run that is cut short keeps what it measured
            (ROOT / "benchmarks" / "results" / "hosts_speed.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
