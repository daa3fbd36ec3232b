"""Checks of a transfer's options, made before any work starts; each failure is one NstError line."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .choices import MATCHING, MAX_SIDE, MIN_SIDE, OPTIMIZERS, PATHS, POOLINGS, PRESERVE
from .errors import NstError
from .kinds import host_only, tiled
from .presets import Options
from .schedule import scale_schedule


def style_blend(blend: Sequence[float] | str | None, count: int) -> list[float]:
    """Blend weights for `count` styles, normalised to sum to 1 (equal when not given)."""
    if blend is None:
        return [1.0 / count] * count
    if isinstance(blend, str):
        try:
            blend = [float(v) for v in blend.split(",") if v.strip()]
        except ValueError:
            raise NstError(f"--style-blend {blend!r}: give comma-separated numbers such as 3,7") from None
    values = [float(v) for v in blend]
    if len(values) != count:
        raise NstError(f"--style-blend has {len(values)} weight(s) for {count} style image(s); give one per style")
    if any(v < 0 or not np.isfinite(v) for v in values) or sum(values) <= 0:
        raise NstError("--style-blend weights must be non-negative numbers with a positive sum")
    total = sum(values)
    return [v / total for v in values]


def check_options(opts: Options, relu_names: list[str]) -> None:
    """Reject bad options before any work starts, each with a one-line reason."""
    OPTIMIZERS.check(opts.optimizer)
    PATHS.check(opts.path)
    if opts.path == "fused" and host_only(opts):
        raise NstError("style masks, --normalize-gradients and --tile need --path split (or auto)")
    if opts.tile and (opts.tile < 32 or opts.tile % 16):
        raise NstError(f"--tile {opts.tile}: give 0 (no tiling) or a multiple of 16 of at least 32, such as 1024")
    if tiled(opts) and (opts.style_masks is not None or opts.normalize_gradients):
        raise NstError("--tile does not combine with style masks or --normalize-gradients yet; drop one of them")
    POOLINGS.check(opts.pooling)
    if not (MIN_SIDE <= opts.size <= MAX_SIDE):
        raise NstError(f"--size {opts.size} is out of range; use {MIN_SIDE}..{MAX_SIDE} pixels")
    PRESERVE.check(opts.preserve_colors)
    MATCHING.check(opts.match_colors)
    scale_schedule(opts)
    if opts.iterations < 1:
        raise NstError(f"--iterations {opts.iterations}: give at least 1")
    if not (1 <= opts.history <= 1000):
        raise NstError(f"--history {opts.history} is out of range; use 1..1000 past steps")
    if not (0.05 <= opts.style_scale <= 8):
        raise NstError(f"--style-scale {opts.style_scale} is out of range; use 0.05..8")
    for name, value in (
        ("content-weight", opts.content_weight),
        ("style-weight", opts.style_weight),
        ("tv-weight", opts.tv_weight),
        ("lr", opts.lr),
    ):
        if not np.isfinite(value) or value < 0:
            raise NstError(f"--{name} {value} must be a non-negative number")
    for flag, layers in (("content-layers", opts.content_layers), ("style-layers", opts.style_layers)):
        for layer, weight in layers.items():
            if layer not in relu_names:
                raise NstError(f"--{flag}: unknown layer {layer!r}; choose from {', '.join(relu_names)}")
            if not np.isfinite(weight) or weight < 0:
                raise NstError(f"--{flag}: weight {weight} of {layer} must be a non-negative number")
    if not opts.content_layers and not opts.style_layers:
        raise NstError("no content or style layers: give at least one layer")
