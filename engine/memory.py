"""Peak memory of a transfer, estimated before it starts, so a run that cannot fit stops at once with
what would fit instead of failing mid-run.

The model is fitted to `nst bench` peaks on the CPU (benchmarks/results/memory_model.json): a fixed part
(libraries, model weights, sessions' reordered weights) per objective path plus a cost per pixel for the
network's activations and their adjoints, plus the optimizer's own arrays; never less than the peak of
building the sessions.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from .errors import NstError

MB = 2.0**20
# Fitted 128..1024 px (benchmarks/results/memory_model.json; estimates at or just above every measured peak):
# a running transfer holds FIXED_MB (libraries, weights, sessions) plus NETWORK_BYTES per pixel (activations,
# adjoints, arena slack up to relu5_1); building the sessions peaks at START_MB before those temporaries are
# returned, which is what a small transfer's peak is.
FIXED_MB = {"fused": 460.0, "split": 520.0}
START_MB = {"fused": 760.0, "split": 680.0}
NETWORK_BYTES = {"fused": 2250.0, "split": 3300.0}
MARGIN = 1.1  # the check asks for 10% more than the estimate


def optimizer_bytes_per_pixel(optimizer: str, history: int) -> float:
    """nst's L-BFGS keeps 2 x (history + 1) float32 vectors and 7 more; scipy's L-BFGS-B 2 x history float64
    vectors plus about 5 more and its bounds; Adam 3 float32 arrays."""
    values = 3  # RGB
    if optimizer == "lbfgs":
        return values * 4.0 * (2 * history + 2 + 7)
    if optimizer == "lbfgsb":
        return values * 8.0 * (2 * history + 5 + 2)
    return values * 4.0 * 3


GPU_FIXED_MB = 1000.0  # CUDA context, cuDNN workspace, weights: not yet measured on a GPU (issue 4)
GPU_BYTES_PER_PIXEL = 5300.0  # activations and adjoints on the GPU: the CPU split path's old figure, unmeasured
HOST_BYTES_PER_PIXEL_ON_GPU = 1000.0  # the image and gradient crossing to the host each iteration


# Tiled runs, beyond the optimizer's arrays, per pixel of the whole image: its gradient, image copies, the
# assembled content features, the scale start. Fitted, not itemised, to three tiled peaks (2048 px with
# 1024 px tiles 8157 MB, 1024/512 px 2746 MB, and the 4096 px print run 15894 MB; tiled_memory.json).
TILED_BYTES_PER_PIXEL = 800.0
TILE_EXAMPLE = 1024  # the --tile suggested when only tiling fits


def estimate_peak_mb(
    pixels: int, path: str, optimizer: str, history: int = 10, device: str = "cpu", network_pixels: int | None = None
) -> float:
    """Estimated peak resident host memory of a process running one transfer of `pixels` pixels;
    `network_pixels`: a tiled run's largest tile, which is all the network holds at once."""
    network = NETWORK_BYTES[path] if device == "cpu" else HOST_BYTES_PER_PIXEL_ON_GPU
    whole = optimizer_bytes_per_pixel(optimizer, history)
    if network_pixels is None:
        running = pixels * (network + whole) / MB
    else:
        running = (network_pixels * network + pixels * (whole + TILED_BYTES_PER_PIXEL)) / MB
    return max(START_MB[path], FIXED_MB[path] + running)


def estimate_gpu_mb(pixels: int) -> float:
    """Estimated peak GPU memory of a transfer on CUDA (activations and adjoints live there)."""
    return GPU_FIXED_MB + pixels * GPU_BYTES_PER_PIXEL / MB


def available_mb() -> float:
    """Memory this process may still grow into: what the kernel calls available, capped by a cgroup limit,
    plus what the process already holds (the estimate counts that too)."""
    free = _meminfo_kb("MemAvailable") / 1024.0
    limit, used = _cgroup_value("memory.max"), _cgroup_value("memory.current")
    if limit is not None and used is not None:
        free = min(free, (limit - used) / MB)
    return free + _rss_mb()


def largest_side(h: int, w: int, budget_mb: float, path: str, optimizer: str, history: int) -> int:
    """The largest --size (longest side, a multiple of 16) whose host estimate fits in `budget_mb`."""
    per_pixel = (NETWORK_BYTES[path] + optimizer_bytes_per_pixel(optimizer, history)) / MB
    pixels = max(budget_mb / MARGIN - FIXED_MB[path], 0.0) / per_pixel
    aspect = min(h, w) / max(h, w)
    return int(math.sqrt(pixels / aspect) // 16 * 16)


def largest_tiled_side(
    h: int, w: int, budget_mb: float, path: str, optimizer: str, history: int, network_pixels: int
) -> int:
    """The largest --size (a multiple of 16) whose tiled host estimate, with tiles of `network_pixels`, fits."""
    tiles = network_pixels * NETWORK_BYTES[path] / MB
    per_pixel = (optimizer_bytes_per_pixel(optimizer, history) + TILED_BYTES_PER_PIXEL) / MB
    pixels = max(budget_mb / MARGIN - FIXED_MB[path] - tiles, 0.0) / per_pixel
    return int(math.sqrt(pixels * max(h, w) / min(h, w)) // 16 * 16)


def check_fits(
    h: int,
    w: int,
    path: str,
    optimizer: str,
    history: int,
    device=None,
    network_pixels: int | None = None,
    tile_pixels=None,
) -> None:
    """Raise NstError before any work when an (h, w) transfer will not fit in host (or GPU) memory,
    naming settings that would fit. `network_pixels`: the largest tile of a tiled run; `tile_pixels(core)`:
    a tile's pixels, to suggest tiling. NST_MEMORY_CHECK=0 in the environment skips the check."""
    if os.environ.get("NST_MEMORY_CHECK", "1") == "0":
        return
    if device is not None and device.name == "cuda":
        _check_gpu(h, w, device)
    have = available_mb()
    setting = dict(
        path=path,
        optimizer=optimizer,
        history=history,
        device=device.name if device else "cpu",
        network_pixels=network_pixels,
    )

    def need(**changes) -> float:
        return estimate_peak_mb(h * w, **(setting | changes)) * MARGIN

    if need() <= have:
        return
    hints = []
    if network_pixels is None and tile_pixels is not None and max(h, w) > TILE_EXAMPLE:
        tiles = dict(path="split", network_pixels=tile_pixels(TILE_EXAMPLE))
        for extra, flags in (({}, ""), ({"history": 5}, " --history 5"), ({"optimizer": "adam"}, " --optimizer adam")):
            if need(**tiles, **extra) <= have:
                hints.append(f"--tile {TILE_EXAMPLE}{flags}")
                break
    side = largest_side(h, w, have, path, optimizer, history)
    if network_pixels is not None:  # tiled: the tiles stay as large, the whole-image arrays shrink
        side = max(side, largest_tiled_side(h, w, have, path, optimizer, history, network_pixels))
    if 32 <= side < max(h, w):
        hints.append(f"--size {side}")
    if optimizer != "adam" and need(optimizer="adam") <= have:
        hints.append("--optimizer adam")
    if optimizer == "lbfgsb" and need(optimizer="lbfgs") <= have:
        hints.append("--optimizer lbfgs")
    if optimizer != "adam" and history > 5 and need(history=5) <= have:
        hints.append("--history 5")
    if network_pixels is None and need(path="split" if path == "fused" else "fused") <= have:
        hints.append(f"--path {'split' if path == 'fused' else 'fused'}")
    advice = "; try " + " or ".join(hints) if hints else "; no smaller setting fits either: free memory first"
    raise NstError(
        f"a {w}x{h} transfer needs about {need() / 1024:.1f} GB of memory but about {have / 1024:.1f} GB "
        f"is available{advice} (NST_MEMORY_CHECK=0 skips this check)"
    )


def _check_gpu(h: int, w: int, device) -> None:
    from .gpumemory import gpu_free_mb

    free = gpu_free_mb(device.device_id)
    need = estimate_gpu_mb(h * w) * MARGIN
    if free is not None and need > free:
        pixels = max(free / MARGIN - GPU_FIXED_MB, 0.0) * MB / GPU_BYTES_PER_PIXEL
        side = int(math.sqrt(pixels * max(h, w) / min(h, w)) // 16 * 16)
        raise NstError(
            f"a {w}x{h} transfer needs about {need / 1024:.1f} GB of GPU memory but {free / 1024:.1f} GB "
            f"is free; try --size {side} or --device cpu (NST_MEMORY_CHECK=0 skips this check)"
        )


def _meminfo_kb(key: str) -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return math.inf  # not Linux: no check


def _cgroup_value(name: str) -> float | None:
    try:
        text = (Path("/sys/fs/cgroup") / name).read_text().strip()
    except OSError:
        return None
    return None if text == "max" else float(text)


def _rss_mb() -> float:
    try:
        return float(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MB
    except (OSError, ValueError):
        return 0.0
