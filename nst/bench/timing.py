"""`nst bench`: per-iteration time of the objective (forward, backward and the L-BFGS step) for each
execution provider, objective path and size, with throughput, memory and achieved GFLOP/s; for the nn loss
also the matching, which runs once per scale beside the evaluations.

Each case runs in a fresh worker process (`python -m nst.bench.worker CASE_JSON`), so its peak memory is its
own and one case cannot warm another's caches; per-iteration times are the gaps between successive
objective evaluations after the warm-up ones, so the optimizer's own work is included.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

from nst.engine.choices import BENCH_PRESET, DEVICES, GRAPH_PATHS, MAX_SIDE, MIN_SIDE, OPTIMIZERS, PROVIDERS
from nst.engine.errors import NstError
from nst.engine.gpumemory import GpuMemoryPeak
from nst.engine.graphs.vgg import pooled_size


@dataclass(frozen=True)
class Case:
    """One measurement: provider, objective path, square image side, evaluations timed and warm-up."""

    provider: str
    path: str
    size: int
    iterations: int = 5
    warmup: int = 2
    threads: int | None = None
    optimizer: str = "lbfgs"  # adam on the fused path keeps everything on the device
    preset: str = BENCH_PRESET


def iteration_flops(
    spec, content_layers, style_layers, h: int, w: int, pooling: str = "max", grams: bool = True
) -> float:
    """FLOPs of one evaluation: every convolution up to the deepest loss layer forward and again backward
    (the input gradient costs the same multiply-adds), plus each Gram matrix and its adjoint (`grams`; the
    nn loss has none, and its per-position arithmetic is small beside the convolutions)."""
    layers = set(content_layers) | set(style_layers)
    deepest = spec.deepest(layers)
    macs, gram_macs, stride, channels = 0.0, 0.0, 1, 0
    for layer in spec.truncated(deepest):
        size = pooled_size(h, w, stride, pooling)
        if layer.kind == "conv":
            cout, cin, kh, kw = layer.conv()[0].shape
            macs += float(cout * cin * kh * kw) * size[0] * size[1]
            channels = cout
        elif layer.kind == "pool":
            stride *= 2
        elif grams and layer.name in style_layers:
            gram_macs += 2.0 * channels * channels * size[0] * size[1]  # G = F F^T, then dF = dG F
    return 2.0 * (2.0 * macs + gram_macs)


def sgemm_gflops(provider: str = "cpu", threads: int | None = None, repeats: int = 5) -> float:
    """The provider's float32 floor: median GFLOP/s of a large MatMul run by ONNX Runtime itself
    (n = 2048 on the CPU, 8192 on CUDA), inputs and output kept on the device."""
    from onnx import TensorProto, helper

    from nst.engine.graphs.onnxbuild import OPSET
    from nst.engine.runtime import make_session, resolve_device, to_device

    n = 2048 if provider == "cpu" else 8192
    spec = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, n]) for name in ("a", "b", "c")]
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "sgemm", spec[:2], spec[2:])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    device = resolve_device(provider)
    session = make_session(model.SerializeToString(), device, threads)
    rng = np.random.default_rng(0)
    binding = session.io_binding()
    for name in ("a", "b"):
        binding.bind_ortvalue_input(name, to_device(rng.standard_normal((n, n), np.float32), device))
    binding.bind_output("c", device.ort_device, device.device_id)
    times = []
    for _ in range(repeats + 1):  # the first run is warm-up: thread pool start, page faults
        start = time.perf_counter()
        session.run_with_iobinding(binding)
        binding.synchronize_outputs()
        times.append(time.perf_counter() - start)
    return 2.0 * n**3 / statistics.median(times[1:]) / 1e9


def synthetic_pair(size: int) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic size x size content (smooth shapes) and style (stripes and noise), RGB 0..255.
    Speed does not depend on what the pixels show, and no image file is needed."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    content = np.stack([128 + 100 * np.sin(6 * xx + 2 * yy), 128 + 90 * np.cos(5 * yy), 255 * xx * yy], -1)
    noise = np.random.default_rng(1).uniform(-30, 30, (size, size, 3)).astype(np.float32)
    style = np.stack([128 + 120 * np.sin(40 * xx), 128 + 120 * np.sin(30 * (xx + yy)), 128 + 0 * xx], -1) + noise
    return np.clip(content, 0, 255).astype(np.float32), np.clip(style, 0, 255).astype(np.float32)


def measure(case: Case) -> dict:
    """Time one case in this process; returns its row of the report."""
    from nst.engine.transfer import StyleTransfer

    st = StyleTransfer(device=case.provider, threads=case.threads)
    content, style = synthetic_pair(case.size)
    total = case.warmup + case.iterations
    with GpuMemoryPeak(st.device) as gpu:
        prepared = st.prepare(
            content,
            [style],
            preset=case.preset,
            size=case.size,
            path=case.path,
            scales=1,
            scale_iterations=None,
            iterations=total,
            optimizer=case.optimizer,
        )
        stamps: list[float] = []
        st.run(prepared, callback=lambda progress: stamps.append(time.perf_counter()))
        matching = matching_row(prepared)
    times = np.diff(stamps)[case.warmup - 1 :] if case.warmup >= 1 else np.diff(stamps)
    opts = prepared.options
    h, w = prepared.x0.shape[2:]
    flops = iteration_flops(st.spec, opts.content_layers, opts.style_layers, h, w, opts.pooling, not matching)
    median = float(np.median(times))
    row = (
        asdict(case)
        | {
            "height": int(h),
            "width": int(w),
            "evaluations": len(stamps),
            "median_s": median,
            "min_s": float(times.min()),
            "max_s": float(times.max()),
            "iqr_s": float(np.percentile(times, 75) - np.percentile(times, 25)),
            "megapixels_per_s": h * w / 1e6 / median,
            "gflop_per_iteration": flops / 1e9,
            "gflop_per_s": flops / median / 1e9,
            "peak_host_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            "peak_gpu_mb": gpu.peak_mb,
        }
        | matching
    )
    row["placement"] = placement(case)
    return row


def matching_row(prepared) -> dict:
    """For the nn loss: the time and FLOPs of one matching of every position (done once per scale), which
    evaluations do not include; empty for other losses."""
    objective = prepared.objective
    if not hasattr(objective, "matcher"):
        return {}
    start = time.perf_counter()
    objective.match(prepared.x0)
    seconds = time.perf_counter() - start
    columns, style_positions = objective.columns, objective.matcher.style.shape[0]
    flops = 2.0 * columns.positions * style_positions * columns.channels
    return {
        "match_s": seconds,
        "match_gflop": flops / 1e9,
        "match_positions": columns.positions,
        "match_style_positions": style_positions,
    }


def bench_optimizer(preset: str) -> str:
    """The optimizer a bench of `preset` times when none is named: the preset's own where nst steps it
    (Adam, L-BFGS), else L-BFGS (scipy's L-BFGS-B runs on the host outside the objective)."""
    from nst.engine.presets import resolve_options

    own = resolve_options(preset).optimizer
    return own if own in ("adam", "lbfgs") else "lbfgs"


def bench_paths(preset: str) -> tuple[str, ...]:
    """The objective paths a preset runs on (the nn loss has no fused path)."""
    from nst.engine.presets import resolve_options

    return ("split",) if resolve_options(preset).style_loss == "nn" else GRAPH_PATHS


def placement(case: Case) -> dict[str, dict[str, int]]:
    """Where ONNX Runtime ran each node of the case's graphs (profiled on a small image, one evaluation)."""
    import tempfile

    from nst.engine.runtime import node_placement
    from nst.engine.transfer import StyleTransfer

    with tempfile.TemporaryDirectory() as folder:
        st = StyleTransfer(device=case.provider, threads=case.threads, profile=os.path.join(folder, "nst"))
        content, style = synthetic_pair(64)
        prepared = st.prepare(
            content, [style], preset=case.preset, size=64, path=case.path, scales=1, scale_iterations=None, iterations=1
        )
        prepared.objective.loss_and_grad(prepared.x0)
        return node_placement(st.sessions())


def worker_env(threads: int | None) -> dict[str, str]:
    """The environment of a worker: BLAS and OpenMP pools sized like the ONNX Runtime one."""
    env = dict(os.environ)
    if threads:
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
            env[name] = str(threads)
    return env


def run_worker(argument: str, threads: int | None, timeout: float | None = None) -> dict:
    """Run `python -m nst.bench.worker ARGUMENT` and return the JSON object it prints last."""
    proc = subprocess.run(
        [sys.executable, "-m", "nst.bench.worker", argument],
        capture_output=True,
        text=True,
        env=worker_env(threads),
        timeout=timeout,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": last}
    return json.loads(lines[-1])


def available_providers() -> list[str]:
    """The providers nst can use here: cpu always, cuda when onnxruntime has its provider."""
    from nst.engine.runtime import available_providers as ort_providers

    here = ort_providers()
    return [device for device in DEVICES if PROVIDERS[device] in here]


def parse_list(text: str | None, allowed: tuple[str, ...] | None, flag: str) -> list[str]:
    """'cpu,cuda' -> ['cpu', 'cuda'], each checked against `allowed`."""
    items = [item.strip() for item in (text or "").split(",") if item.strip()]
    for item in items:
        if allowed is not None and item not in allowed:
            raise NstError(f"--{flag}: unknown {item!r}; use one or more of {', '.join(allowed)}")
    return items


def plan(
    providers: str | None,
    sizes: str,
    paths: str | None,
    iterations: int,
    warmup: int,
    threads: int | None,
    optimizer: str = "lbfgs",
    preset: str = BENCH_PRESET,
) -> list[Case]:
    """The cases to run, checked before any of them starts."""
    from nst.engine.presets import PRESETS

    if preset not in PRESETS:
        raise NstError(f"--preset {preset!r}: choose one of {', '.join(PRESETS)}")
    here = available_providers()
    chosen = parse_list(providers, tuple(DEVICES), "providers") or here
    missing = [p for p in chosen if p not in here]
    if missing:
        raise NstError(f"--providers: {', '.join(missing)} not available here (available: {', '.join(here)})")
    try:
        side = [int(s) for s in parse_list(sizes, None, "sizes")]
    except ValueError:
        raise NstError(f"--sizes {sizes!r}: give pixel sizes such as 256,512,1024") from None
    if not side or any(not (MIN_SIDE <= s <= MAX_SIDE) for s in side):
        raise NstError(f"--sizes {sizes!r}: give one or more sizes in {MIN_SIDE}..{MAX_SIDE}")
    if iterations < 1 or warmup < 1:
        raise NstError("--iterations and --warmup must each be at least 1")
    OPTIMIZERS.check(optimizer)
    return [
        Case(p, path, s, iterations, warmup, threads, optimizer, preset)
        for p in chosen
        for s in side
        for path in parse_list(paths, GRAPH_PATHS, "paths") or list(bench_paths(preset))
    ]


def benchmark(cases: list[Case], on_result=None) -> dict:
    """Run every case in its own worker; the report holds each provider's SGEMM floor, the rows and a
    verdict on the faster path for each provider and size."""
    threads = cases[0].threads if cases else None
    floors = {
        p: run_worker(f"--sgemm={p}", threads).get("gflop_per_s") for p in dict.fromkeys(c.provider for c in cases)
    }
    rows = []
    for case in cases:
        row = asdict(case) | run_worker(json.dumps(asdict(case)), case.threads)
        if floors.get(case.provider) and "gflop_per_s" in row:
            row["fraction_of_sgemm"] = row["gflop_per_s"] / floors[case.provider]
        rows.append(row)
        if on_result:
            on_result(row)
    return {
        "machine": machine(floors, threads),
        "rows": rows,
        "faster_path": faster_paths(rows),
        "date": time.strftime("%Y-%m-%d"),
    }


def machine(floors: dict, threads: int | None) -> dict:
    """What the numbers were measured on."""
    import platform

    import onnxruntime

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "threads": threads,
        "cuda_options": os.environ.get("NST_CUDA_OPTIONS", ""),
        "sgemm_gflop_per_s": floors,
        "onnxruntime": onnxruntime.__version__,
        "python": platform.python_version(),
    }


def faster_paths(rows: list[dict]) -> list[dict]:
    """For each provider and size measured on both paths: which path is faster, and by how much."""
    verdicts = []
    keys = sorted({(r["provider"], r["size"]) for r in rows})
    for provider, size in keys:
        timed = {
            r["path"]: r["median_s"] for r in rows if (r["provider"], r["size"]) == (provider, size) and "median_s" in r
        }
        if len(timed) == 2:
            fast, slow = sorted(timed, key=timed.__getitem__)
            verdicts.append({"provider": provider, "size": size, "faster": fast, "speedup": timed[slow] / timed[fast]})
    return verdicts
