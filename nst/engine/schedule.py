"""The coarse-to-fine schedule of a transfer: the size and iteration count of each scale, and where each
finer scale starts."""

from __future__ import annotations

import warnings

import numpy as np

from .choices import MIN_SIDE
from .errors import NstError, NstWarning
from .images import fit_size, resize
from .presets import Options


def scale_schedule(opts: Options) -> tuple[list[int], list[int]]:
    """Sizes (longest side) and iterations of each scale, coarse to fine, ending at exactly `size`."""
    if isinstance(opts.scales, str):
        try:
            sizes = [int(v) for v in opts.scales.split(",") if v.strip()]
        except ValueError:
            raise NstError(f"--scales {opts.scales!r}: give a count or sizes such as 128,256,512") from None
        if not sizes or sizes != sorted(sizes) or sizes[-1] != opts.size:
            raise NstError(f"--scales {opts.scales!r}: sizes must increase and end at --size {opts.size}")
    else:
        count = int(opts.scales)
        if not 1 <= count <= 8:
            raise NstError(f"--scales {count}: give 1..8 scales")
        ratio = opts.scale_ratio
        steps = [min(opts.size, max(MIN_SIDE * 2, round(opts.size / ratio ** (count - 1 - i)))) for i in range(count)]
        sizes = sorted(set(steps))  # small sizes collapse: never below 64 px nor above --size
    if opts.scale_iterations:
        try:
            counts = [int(v) for v in str(opts.scale_iterations).split(",") if v.strip()]
        except ValueError:
            raise NstError(f"--scale-iterations {opts.scale_iterations!r}: give numbers such as 300,200,100") from None
        expected = len(sizes) if isinstance(opts.scales, str) else int(opts.scales)
        if len(counts) != expected or min(counts) < 1:
            raise NstError(f"--scale-iterations needs {expected} positive counts, one per scale")
        counts = counts[len(counts) - len(sizes) :]  # collapsed small scales drop their first counts
    else:
        counts = [opts.iterations] * len(sizes)
    return sizes, counts


def fitting_scales(sizes: list[int], counts: list[int], h: int, w: int) -> tuple[list[int], list[int]]:
    """The schedule without its coarse scales at which an h x w content would be under MIN_SIDE px on its short
    side (a wide picture's), with one warning naming them: the network cannot see an image that thin, and the
    finer scales still reach the result. The final scale is checked by check_sides."""
    keep = [i for i, s in enumerate(sizes) if min(fit_size(h, w, s)) >= MIN_SIDE or i == len(sizes) - 1]
    if len(keep) < len(sizes):
        dropped = ", ".join(str(s) for i, s in enumerate(sizes) if i not in keep)
        warnings.warn(
            f"the {w}x{h} content would be under {MIN_SIDE} px on its short side at the coarse scale(s) of "
            f"{dropped} px: left out",
            NstWarning,
            stacklevel=3,
        )
    return [sizes[i] for i in keep], [counts[i] for i in keep]


def next_scale_start(result: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Where a finer scale starts: the coarser result (HxWx3 float 0..255) enlarged to the content's size,
    plus the content's detail band that the coarser scale could not hold (content minus content taken down
    to the result's size and back up): the finer scale then starts from the content's own fine detail
    instead of a blurred enlargement, so it reaches a lower loss in the same iterations."""
    h, w = content.shape[:2]
    low = resize(resize(content, *result.shape[:2]), h, w)
    return np.clip(resize(result, h, w) + (content - low), 0.0, 255.0)
