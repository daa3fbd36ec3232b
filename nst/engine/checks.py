"""Checks of a transfer's options, made before any work starts; each failure is one NstError line."""

from __future__ import annotations

import numbers
import os
from typing import Sequence

import numpy as np

from .choices import (
    INITS,
    MATCHING,
    MAX_SIDE,
    MIN_SIDE,
    OPTIMIZERS,
    PADDINGS,
    PATHS,
    POOLINGS,
    PRESERVE,
    STYLE_LOSSES,
)
from .errors import NstError
from .images import fit_size
from .kinds import host_only, tiled
from .presets import Options
from .schedule import scale_schedule

FLOAT32_MAX = float(np.finfo(np.float32).max)


def style_blend(blend: Sequence[float] | str | None, count: int) -> list[float]:
    """Blend weights for `count` styles, normalised to sum to 1 (equal when not given)."""
    if blend is None:
        return [1.0 / count] * count
    if isinstance(blend, str):
        try:
            blend = [float(v) for v in blend.split(",") if v.strip()]
        except ValueError:
            raise NstError(f"--style-blend {blend!r}: give comma-separated numbers such as 3,7") from None
    if not isinstance(blend, (list, tuple, np.ndarray)) or not all(_is_real(v) for v in blend):
        raise NstError(f"style_blend={blend!r}: give a list of numbers, one per style, or a string such as '3,7'")
    values = [float(v) for v in blend]
    if len(values) != count:
        raise NstError(f"--style-blend has {len(values)} weight(s) for {count} style image(s); give one per style")
    if any(v < 0 or not np.isfinite(v) for v in values) or max(values) <= 0:
        raise NstError("--style-blend weights must be non-negative finite numbers with a positive sum")
    top = max(values)  # dividing by the largest first keeps the sum finite, however large the weights
    scaled = [v / top for v in values]
    return [v / sum(scaled) for v in scaled]


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_text(value) -> bool:
    return isinstance(value, str)


def _is_flag(value) -> bool:
    return isinstance(value, (bool, np.bool_))


def _is_layers(value) -> bool:
    return isinstance(value, dict) and all(_is_text(k) and _is_real(v) for k, v in value.items())


def _is_path(value) -> bool:
    return isinstance(value, (str, os.PathLike))


def _is_sequence_or_text(value) -> bool:
    return value is None or isinstance(value, (str, list, tuple))


# What each option accepts from an API caller, and how to say it: a wrong type is one NstError line.
_TYPES = {
    "size": (_is_int, "an integer number of pixels"),
    "iterations": (_is_int, "an integer"),
    "history": (_is_int, "an integer"),
    "seed": (_is_int, "an integer"),
    "tile": (_is_int, "an integer number of pixels (0: no tiling)"),
    "scales": (lambda v: _is_int(v) or _is_text(v), "a count or a string of sizes such as '128,256'"),
    "scale_iterations": (lambda v: v is None or _is_int(v) or _is_text(v), "a string such as '300,200,100'"),
    "lr": (_is_real, "a number"),
    "content_weight": (_is_real, "a number"),
    "style_weight": (_is_real, "a number"),
    "tv_weight": (_is_real, "a number"),
    "style_scale": (_is_real, "a number"),
    "style_size": (_is_int, "an integer number of pixels (0: see style_at_final)"),
    "style_at_final": (_is_flag, "True or False"),
    "average": (_is_real, "a number (0: no averaging)"),
    "scale_ratio": (_is_real, "a number such as 2 or 1.414"),
    "beta2": (_is_real, "a number below 1, such as 0.999"),
    "detail": (_is_flag, "True or False"),
    "content_layers": (_is_layers, "a string such as 'relu4_2' or a dict of layer names to weights"),
    "style_layers": (_is_layers, "a string such as 'relu1_1:1,relu2_1:0.5' or a dict of layer names to weights"),
    "style_blend": (_is_sequence_or_text, "a list of numbers or a string such as '3,7'"),
    "style_masks": (_is_sequence_or_text, "a list of mask paths or arrays (None: everywhere)"),
    "init": (lambda v: _is_path(v) or isinstance(v, np.ndarray), "one of the kinds, an image path or an array"),
    "normalize_gradients": (_is_flag, "True or False"),
    "clip_pixels": (_is_flag, "True or False"),
    "alpha": (_is_real, "a number from 0 to 1"),
    "pyramid": (_is_flag, "True or False"),
    "colour_correction": (_is_flag, "True or False"),
}


def check_types(opts: Options) -> None:
    """Reject options of the wrong type (an API caller's `size="64"`) with one line instead of a TypeError."""
    for name, (accepts, expected) in _TYPES.items():
        value = getattr(opts, name)
        if not accepts(value):
            raise NstError(f"{name}={value!r} ({type(value).__name__}): expected {expected}")
    for name in (
        "optimizer",
        "pooling",
        "path",
        "style_loss",
        "padding",
        "preserve_colors",
        "match_colors",
        "convention",
        "report",
    ):
        if not _is_text(getattr(opts, name)):
            raise NstError(f"{name}={getattr(opts, name)!r}: expected a string")


def check_init(init) -> None:
    """An init that is neither a kind nor an existing file is most likely a misspelt kind: list the kinds."""
    if isinstance(init, (str, os.PathLike)) and str(init) not in INITS and not os.path.exists(init):
        raise NstError(f"--init {str(init)!r}: no such file, and not one of {', '.join(INITS)} (or give an image path)")


def check_sides(h: int, w: int, size: int) -> None:
    """The network needs MIN_SIDE px on each side at --size: say which size would do, or that none does (an
    aspect ratio beyond MAX_SIDE / MIN_SIDE). Coarser scales too small are left out (fitting_scales)."""
    short = lambda s: min(fit_size(h, w, s))
    if short(MAX_SIDE) < MIN_SIDE:
        raise NstError(
            f"the content image is {w}x{h}: its aspect ratio is too extreme, its short side would be under "
            f"{MIN_SIDE} px even at the largest --size {MAX_SIDE}; crop it to at most {MAX_SIDE // MIN_SIDE}:1"
        )
    need = next(s for s in range(MIN_SIDE, MAX_SIDE + 1) if short(s) >= MIN_SIDE)
    ph, pw = fit_size(h, w, size)
    if short(size) < MIN_SIDE:
        raise NstError(
            f"at --size {size} the {w}x{h} content image would be {pw}x{ph}; the network needs at least {MIN_SIDE} "
            f"px on each side: give --size {need} or more"
        )


def check_seed(seed: int) -> None:
    if not 0 <= seed < 2**32:
        raise NstError(f"--seed {seed} is out of range; use 0..{2**32 - 1}")


def check_preset(preset) -> None:
    if preset is not None and not isinstance(preset, str):
        raise NstError(f"preset={preset!r}: expected a preset name such as 'nst', 'johnson' or 'seed'")


def check_callback(callback) -> None:
    if callback is not None and not callable(callback):
        raise NstError(f"callback={callback!r}: expected a function taking a Progress, or None")


def clamp_threads(threads) -> tuple[int | None, str | None]:
    """The thread count to use (None: all cores) and a warning when more were asked than there are cores."""
    if threads is None:
        return None, None
    if not _is_int(threads) or threads < 1:
        raise NstError(f"--threads {threads!r}: give a whole number of threads of at least 1 (default: all cores)")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if threads > cores:
        return cores, f"--threads {threads} is more than the {cores} cores here; using {cores}"
    return int(threads), None


def _check_neighbours(opts: Options) -> None:
    """What the nn style loss does not combine with yet."""
    for asked, what in (
        (opts.style_masks is not None, "style masks"),
        (opts.normalize_gradients, "--normalize-gradients"),
        (opts.path == "fused", "--path fused"),
    ):
        if asked:
            raise NstError(f"--style-loss nn does not combine with {what} yet; drop it")
    if not opts.style_layers or max(opts.style_layers.values()) <= 0:
        raise NstError("--style-loss nn needs style layers with a positive weight for its hypercolumn")


def check_options(opts: Options, relu_names: list[str]) -> None:
    """Reject bad options before any work starts, each with a one-line reason."""
    check_types(opts)
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
    if not 1.05 <= opts.scale_ratio <= 8:
        raise NstError(f"--scale-ratio {opts.scale_ratio} is out of range; use 1.05..8 (2: halving, 1.414: sqrt 2)")
    scale_schedule(opts)
    if opts.iterations < 1:
        raise NstError(f"--iterations {opts.iterations}: give at least 1")
    if not (1 <= opts.history <= 1000):
        raise NstError(f"--history {opts.history} is out of range; use 1..1000 past steps")
    if not (0.05 <= opts.style_scale <= 8):
        raise NstError(f"--style-scale {opts.style_scale} is out of range; use 0.05..8")
    if opts.style_size and not (MIN_SIDE <= opts.style_size <= MAX_SIDE):
        raise NstError(
            f"--style-size {opts.style_size} is out of range; use 0 (see --style-at-final) or {MIN_SIDE}..{MAX_SIDE}"
        )
    if not 0 < opts.beta2 < 1:
        raise NstError(f"beta2={opts.beta2} is out of range; use a decay between 0 and 1, such as 0.999")
    if not 0 <= opts.average < 1:
        raise NstError(f"--average {opts.average} is out of range; use 0 (off) or a decay below 1, such as 0.99")
    STYLE_LOSSES.check(opts.style_loss)
    PADDINGS.check(opts.padding)
    if not 0 <= opts.alpha <= 1:  # checked whatever the loss: a value that would be refused later is wrong now
        raise NstError(f"--alpha {opts.alpha} is out of range; use 0 (match the image alone) .. 1 (the content alone)")
    if opts.style_loss == "nn":
        _check_neighbours(opts)
    if opts.pyramid and opts.optimizer != "adam":
        raise NstError(
            "--pyramid steps the image's pyramid coefficients, which have no pixel bounds: add --optimizer adam"
        )
    for name, value in (
        ("content-weight", opts.content_weight),
        ("style-weight", opts.style_weight),
        ("tv-weight", opts.tv_weight),
        ("lr", opts.lr),
    ):
        if not 0 <= value <= FLOAT32_MAX:
            raise NstError(f"--{name} {value} must be a non-negative number a float32 can hold")
    for flag, layers in (("content-layers", opts.content_layers), ("style-layers", opts.style_layers)):
        for layer, weight in layers.items():
            if layer not in relu_names:
                raise NstError(f"--{flag}: unknown layer {layer!r}; choose from {', '.join(relu_names)}")
            if not 0 <= weight <= FLOAT32_MAX:  # the graphs compute in float32: a larger weight is infinite there
                raise NstError(f"--{flag}: weight {weight} of {layer} must be a non-negative number a float32 can hold")
    if not opts.content_layers and not opts.style_layers:
        raise NstError("no content or style layers: give at least one layer")
    check_seed(opts.seed)
    check_init(opts.init)
