"""Which objective evaluates a transfer, decided in one place.

Five kinds: `fused` (losses and Gram matrices inside one ONNX graph), `split` (ONNX forward and backward,
numba losses on the host), `masked` (split, each style weighted by its mask), `tiled` (split, evaluated
tile by tile for images larger than --tile) and `neighbour` (split, the nn loss of nst.engine.neighbours,
in tiles by nst.engine.neighbour_tiles).
Only `fused` runs the fused graph; the others share the split path's forward and backward graphs.
"""

from __future__ import annotations

from .choices import AUTO, DEFAULT_PATH
from .presets import Options

KINDS = ("fused", "split", "masked", "tiled", "neighbour")


def tiled(opts: Options, h: int | None = None, w: int | None = None) -> bool:
    """Whether the transfer (or an h x w step of it) is evaluated in tiles."""
    return bool(opts.tile) and (max(h, w) if h and w else opts.size) > opts.tile


def host_only(opts: Options) -> bool:
    """Options that only the split path implements."""
    return opts.style_masks is not None or opts.normalize_gradients or tiled(opts)


def objective_kind(opts: Options, device: str, h: int | None = None, w: int | None = None) -> str:
    """The kind of objective for the transfer on `device` (or an h x w step of it): tiled or masked when
    the options ask for it, else the path asked for, where `auto` is the device's default path unless the
    options need the split one."""
    if opts.style_loss == "nn":  # checks.py refuses nn with masks or the fused path; tiles are its own
        return "neighbour"
    if tiled(opts, h, w):
        return "tiled"
    if opts.style_masks is not None:
        return "masked"
    if opts.path != AUTO:
        return opts.path
    if host_only(opts):
        return "split"
    # On a CPU the host's eigendecomposition costs less than the fused graph's Newton-Schulz products.
    return "split" if opts.style_loss == "w2" and device == "cpu" else DEFAULT_PATH[device]


def graph_path(kind: str) -> str:
    """The graphs an objective of this kind runs: the fused graph, or the split path's pair."""
    return "fused" if kind == "fused" else "split"
