"""Peak memory of a transfer, estimated before it starts (before any image is decoded), so a run that
cannot fit stops at once with what would fit instead of failing mid-run.

The model is fitted to `nst bench` peaks on the CPU (benchmarks/results/memory_model.json): a fixed part
(libraries, model weights, sessions' reordered weights) per objective path plus a cost per pixel for the
network's activations and their adjoints, plus the optimizer's own arrays; never less than the peak of
building the sessions.  On top: the decoded input images, held for the whole run; decoding the largest of
them (sized from its file's header); the style targets' forward pass at the style size.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from .errors import NstError
from .imageheader import dimensions, jpeg_reduction, plain_8bit, reduced
from .images import fit_size
from .inputs import INITS
from .kinds import tiled
from .presets import Options
from .schedule import MIN_SIDE

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
TILE_EXAMPLES = (1024, 512, 256)  # the --tile suggested when only tiling fits: the largest that does


# Input images (memory_model.json, "inputs"): a decoded image is held as float32 RGB for the whole run;
# decoding one takes its file's bytes plus, per decoded pixel, OpenCV's array and the float conversions (the
# most measured for plain 8-bit colour, and for 16-bit or transparent images, which decode twice or wider).
IMAGE_BYTES = 12.0
DECODE_BYTES = {True: 48.0, False: 68.0}  # by imageheader.plain_8bit
# The style targets' forward pass, on top of the sessions' start, per style pixel at the style size
# (activations up to the deepest style layer, which the split path keeps for a backward pass, and the
# resized style arrays; fitted to --style-scale 8 at 128 and 256 px); on a GPU only the arrays are on the host.
STYLE_BYTES = {"fused": 620.0, "split": 1900.0}
STYLE_HOST_BYTES_ON_GPU = 24.0
HEADER_BYTES = 1 << 16
# The nn style loss (nst.engine.neighbours): per content pixel, its many layers' activations and their
# gradients on the host; per style pixel, its hypercolumn (a quarter size each way: channels x 4 / 16
# bytes) held through the run; and the blocks of positions the matching and the loss work in.
NN_PIXEL_BYTES = 2100.0
# Tiled, per pixel of the largest tile: its layers' gradients only, as the tile's activations are the
# network's own output buffers (NETWORK_BYTES); still above the tiled peak in benchmarks/results/nnst_costs.json.
NN_TILE_PIXEL_BYTES = 1050.0
NN_BLOCK_MB = 150.0


@dataclass(frozen=True)
class Decoded:
    """An input image as a transfer holds it: its decoded size, and what decoding it takes first (0 for an
    array, which is decoded already)."""

    what: str
    width: int
    height: int
    decode_mb: float = 0.0

    @property
    def pixels(self) -> int:
        return self.width * self.height


def decoded_size(source, what: str, longest: int | None = None) -> Decoded | None:
    """The size `source` (a path or an array) will have once decoded (a large JPEG decoded reduced for
    `longest`), read from its header without decoding; None when the header does not say."""
    if hasattr(source, "shape") and len(source.shape) >= 2:
        return Decoded(what, int(source.shape[1]), int(source.shape[0]))
    if not isinstance(source, (str, os.PathLike)) or not os.path.isfile(source):
        return None  # a pipe would block the read; the decoder says what is wrong with such a file
    try:
        with open(source, "rb") as fh:
            head, file_bytes = fh.read(HEADER_BYTES), os.fstat(fh.fileno()).st_size
    except OSError:
        return None  # the decoder says what is wrong with the file
    dims = dimensions(head)
    if not dims:
        return None
    w, h = reduced(dims, jpeg_reduction(head, longest))
    return Decoded(f"{what} {source}", w, h, (file_bytes + w * h * DECODE_BYTES[plain_8bit(head)]) / MB)


def estimate_peak_mb(
    pixels: int,
    path: str,
    optimizer: str,
    history: int = 10,
    device: str = "cpu",
    network_pixels: int | None = None,
    inputs: Sequence[Decoded] = (),
    style_pixels: int = 0,
    neighbour_channels: int = 0,
    column_pixels: int | None = None,
) -> float:
    """Estimated peak resident host memory of a process running one transfer of `pixels` pixels;
    `network_pixels`: a tiled run's largest tile, which is all the network holds at once; `inputs`: the
    decoded images it holds; `style_pixels`: the style images' pixels at the style size;
    `neighbour_channels`: the nn loss's hypercolumn channels (0: another loss); `column_pixels`: the style
    images' whole pixels, whose hypercolumns it holds (default `style_pixels`, which a tiled run counts a
    tile at most of each)."""
    network = NETWORK_BYTES[path] if device == "cpu" else HOST_BYTES_PER_PIXEL_ON_GPU
    whole = optimizer_bytes_per_pixel(optimizer, history)
    if network_pixels is None:
        running = pixels * (network + whole) / MB
    else:
        running = (network_pixels * network + pixels * (whole + TILED_BYTES_PER_PIXEL)) / MB
    style = style_pixels * (STYLE_BYTES[path] if device == "cpu" else STYLE_HOST_BYTES_ON_GPU) / MB
    held = sum(image.pixels for image in inputs) * IMAGE_BYTES / MB
    if neighbour_channels:  # a tiled run holds one tile's layers at once
        running += (network_pixels * NN_TILE_PIXEL_BYTES if network_pixels else pixels * NN_PIXEL_BYTES) / MB
        columns = style_pixels if column_pixels is None else column_pixels
        held += columns * neighbour_channels * 4 / 16 / MB + NN_BLOCK_MB
    decoding = max((image.decode_mb for image in inputs), default=0.0)
    return held + max(START_MB[path] + style, FIXED_MB[path] + max(running, decoding))


def estimate_gpu_mb(pixels: int, style_pixels: int = 0) -> float:
    """Estimated peak GPU memory of a transfer on CUDA (activations and adjoints live there; the style
    targets' forward pass is counted at the same cost per pixel, more than a forward pass alone takes)."""
    return GPU_FIXED_MB + max(pixels, style_pixels) * GPU_BYTES_PER_PIXEL / MB


def available_mb() -> float:
    """Memory this process may still grow into: what the kernel calls available, capped by a cgroup limit,
    plus what the process already holds (the estimate counts that too)."""
    free = _meminfo_kb("MemAvailable") / 1024.0
    limit, used = _cgroup_value("memory.max"), _cgroup_value("memory.current")
    if limit is not None and used is not None:
        free = min(free, (limit - used) / MB)
    return free + _rss_mb()


def style_side(opts: Options) -> int:
    """The longest side the style images are resized to."""
    return opts.style_size or max(MIN_SIDE, round(opts.size * opts.style_scale))


def check_transfer(opts: Options, content, styles, path: str, device, tile_pixels: Callable[[int], int]) -> None:
    """`check_fits` for a transfer of `content` (a path or an array) with `styles`: before decoding, from
    the files' headers (a file whose header gives no size is counted once decoded, by a second call)."""
    if os.environ.get("NST_MEMORY_CHECK", "1") == "0":
        return
    demand = transfer_demand(opts, content, styles, path, tile_pixels)
    if demand is not None:
        check_fits(device=device, tile_pixels=tile_pixels, **demand)


def transfer_demand(opts: Options, content, styles, path: str, tile_pixels: Callable[[int], int]) -> dict | None:
    """What a transfer asks of memory, as `check_fits` arguments (less the device), read from the inputs'
    headers or arrays; None when the content's size is not known before decoding."""
    styles = [styles] if isinstance(styles, (str, os.PathLike)) or hasattr(styles, "shape") else styles
    first = decoded_size(content, "content image", opts.size)
    if first is None or not isinstance(styles, (list, tuple)):
        return None  # StyleTransfer.load says what is wrong, or the check runs again once decoded
    side = style_side(opts)
    style_inputs = [decoded_size(s, f"style image {i + 1}", side) for i, s in enumerate(styles)]
    kind = isinstance(opts.init, str) and opts.init in INITS
    init_input = None if kind else decoded_size(opts.init, "init image")
    h, w = fit_size(first.height, first.width, opts.size)
    network = tile_pixels(opts.tile) if tiled(opts, h, w) else None
    style_pixels = column_pixels = 0
    for image in filter(None, style_inputs):
        sh, sw = fit_size(image.height, image.width, side)
        style_pixels += min(sh * sw, network or sh * sw)
        column_pixels += sh * sw
    inputs = tuple(image for image in (first, *style_inputs, init_input) if image is not None)
    return dict(
        h=h,
        w=w,
        path=path,
        optimizer=opts.optimizer,
        history=opts.history,
        network_pixels=network,
        inputs=inputs,
        style_pixels=style_pixels,
        style_scale=opts.style_scale,
        neighbour_channels=neighbour_channels(opts),
        column_pixels=column_pixels,
    )


def neighbour_channels(opts: Options) -> int:
    """The channels of the nn loss's hypercolumn (VGG's blocks have 64, 128, 256 and 512), or 0."""
    if opts.style_loss != "nn":
        return 0
    return sum(min(512, 64 << (int(layer[4]) - 1)) for layer in opts.style_layers if layer[4:5].isdigit())


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
    inputs: Sequence[Decoded] = (),
    style_pixels: int = 0,
    style_scale: float = 1.0,
    neighbour_channels: int = 0,
    column_pixels: int | None = None,
) -> None:
    """Raise NstError before any work when an (h, w) transfer will not fit in host (or GPU) memory,
    naming settings that would fit. `network_pixels`: the largest tile of a tiled run; `tile_pixels(core)`:
    a tile's pixels, to suggest tiling; `inputs`, `style_pixels`: as for estimate_peak_mb, with the
    `style_scale` that gave them. NST_MEMORY_CHECK=0 in the environment skips the check."""
    if os.environ.get("NST_MEMORY_CHECK", "1") == "0":
        return
    if device is not None and device.name == "cuda":
        _check_gpu(h, w, device, style_pixels, network_pixels, tile_pixels)
    have = available_mb()
    setting: dict[str, Any] = dict(
        path=path,
        optimizer=optimizer,
        history=history,
        device=device.name if device else "cpu",
        network_pixels=network_pixels,
        inputs=tuple(inputs),
        style_pixels=style_pixels,
        neighbour_channels=neighbour_channels,
        column_pixels=column_pixels,
    )

    def need(pixels: int = h * w, **changes) -> float:
        return estimate_peak_mb(pixels, **(setting | changes)) * MARGIN

    def styles(factor: float) -> dict[str, Any]:  # the style images' pixels scaled by `factor`
        columns = None if column_pixels is None else int(column_pixels * factor)
        return {"style_pixels": int(style_pixels * factor), "column_pixels": columns}

    if need() <= have:
        return
    _refuse_inputs(inputs, path, have)
    held = sum(image.pixels for image in inputs) * IMAGE_BYTES / MB
    hints = []
    if network_pixels is None and tile_pixels is not None:
        hints += _tile_hint(h, w, tile_pixels, need, have)
    if network_pixels is not None:  # tiled: the tiles stay as large, the whole-image arrays shrink
        side = largest_tiled_side(h, w, have, path, optimizer, history, network_pixels)
        shrink = min(1.0, side / max(h, w)) ** 2  # checked whole: the side leaves out the nn loss's arrays
        if 32 <= side < max(h, w) and need(int(h * w * shrink), **styles(shrink)) <= have:
            hints.append(f"--size {side}")
    else:
        side = largest_side(h, w, have - held * MARGIN, path, optimizer, history)
        shrink = min(1.0, side / max(h, w)) ** 2
        if side >= 32 and need(int(h * w * shrink), **styles(shrink)) <= have:
            hints.append(f"--size {side}")
    smaller = [s for s in (4.0, 2.0, 1.0, 0.5, 0.25) if s < style_scale]
    for scale in smaller:
        if need(**styles((scale / style_scale) ** 2)) <= have:
            hints.append(f"--style-scale {scale:g}")
            break
    if optimizer != "adam" and need(optimizer="adam") <= have:
        hints.append("--optimizer adam")
    if optimizer == "lbfgsb" and need(optimizer="lbfgs") <= have:
        hints.append("--optimizer lbfgs")
    if optimizer != "adam" and history > 5 and need(history=5) <= have:
        hints.append("--history 5")
    other_path = network_pixels is None and not neighbour_channels  # the nn loss runs on the split path only
    if other_path and need(path="split" if path == "fused" else "fused") <= have:
        hints.append(f"--path {'split' if path == 'fused' else 'fused'}")
    advice = "; try " + " or ".join(hints) if hints else "; no smaller setting fits either: free memory first"
    raise NstError(
        f"a {w}x{h} transfer needs about {need() / 1024:.1f} GB of memory but about {have / 1024:.1f} GB "
        f"is available{advice} (NST_MEMORY_CHECK=0 skips this check)"
    )


def _tile_hint(h: int, w: int, tile_pixels, need: Callable[..., float], have: float) -> list[str]:
    """The first --tile (with a cheaper optimizer setting if needed) under which the transfer fits."""
    cheaper: list[tuple[dict[str, Any], str]] = [
        ({}, ""),
        ({"history": 5}, " --history 5"),
        ({"optimizer": "adam"}, " --optimizer adam"),
    ]
    for core in (c for c in TILE_EXAMPLES if c < max(h, w)):
        for extra, flags in cheaper:
            if need(path="split", network_pixels=tile_pixels(core), **extra) <= have:
                return [f"--tile {core}{flags}"]
    return []


def check_decoding(sources: Sequence, what: str, longest: int, path: str) -> None:
    """Refuse, from their headers, images that cannot even be decoded and held in the memory available."""
    if os.environ.get("NST_MEMORY_CHECK", "1") == "0":
        return
    inputs = [decoded_size(s, f"{what} {i + 1}", longest) for i, s in enumerate(sources)]
    _refuse_inputs([image for image in inputs if image is not None], path, available_mb())


def _refuse_inputs(inputs: Sequence[Decoded], path: str, have: float) -> None:
    """When decoding and holding the input images alone cannot fit, no setting helps: name the image."""
    if not inputs:
        return
    held = sum(image.pixels for image in inputs) * IMAGE_BYTES / MB
    alone = (held + FIXED_MB[path] + max(image.decode_mb for image in inputs)) * MARGIN
    if alone <= have:
        return
    big = max(inputs, key=lambda image: image.pixels)
    raise NstError(
        f"{big.what} is {big.width}x{big.height}: decoding and holding the input images needs about "
        f"{alone / 1024:.1f} GB of memory but about {have / 1024:.1f} GB is available; shrink the image first "
        "(NST_MEMORY_CHECK=0 skips this check)"
    )


def _check_gpu(
    h: int, w: int, device, style_pixels: int = 0, network_pixels: int | None = None, tile_pixels=None
) -> None:
    """Refuse a transfer whose network passes (a tile's, when tiled) will not fit in the GPU's free memory,
    naming a --size, or a --tile under which they would."""
    from .gpumemory import gpu_free_mb

    free = gpu_free_mb(device.device_id)
    now = network_pixels or h * w  # what one network pass holds: a tile's pixels when tiled
    need = estimate_gpu_mb(now, style_pixels) * MARGIN
    if free is None or need <= free:
        return
    pixels = max(free / MARGIN - GPU_FIXED_MB, 0.0) * MB / GPU_BYTES_PER_PIXEL
    side = int(math.sqrt(pixels * max(h, w) / min(h, w)) // 16 * 16)
    sizes = tile_pixels or (lambda core: math.inf)
    tiles = [(c, sizes(c)) for c in TILE_EXAMPLES if c < max(h, w)]  # smaller tiles than now's that fit
    core = next((c for c, n in tiles if n < now and n <= pixels and min(style_pixels, n) <= pixels), None)
    tile = f"--tile {core}, " if core else ""
    raise NstError(
        f"a {w}x{h} transfer needs about {need / 1024:.1f} GB of GPU memory but {free / 1024:.1f} GB "
        f"is free; try {tile}--size {side} or --device cpu (NST_MEMORY_CHECK=0 skips this check)"
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
