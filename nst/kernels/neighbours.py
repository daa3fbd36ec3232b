"""The nn style loss's arithmetic: bilinear resizing of activations into hypercolumns (and its adjoint) and
the centred cosine distance to matched style columns with its gradient.

Each output of a bilinear resize reads two rows and two columns of its input, so doing it by index and
weight reads each activation once, where interpolation matrices would multiply mostly by zeros.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


def linear_taps(n_out: int, n_in: int, align_corners: bool) -> tuple[np.ndarray, np.ndarray]:
    """Each output's lower input index (int64) and the weight of the one above it (float32) for 1-D linear
    interpolation as PyTorch's bilinear, without antialiasing; the upper index is min(low + 1, n_in - 1)."""
    if align_corners:
        src = np.arange(n_out) * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(1)
    else:
        src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    low = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    return low, (src - low).astype(np.float32)


GROUP = 16  # channels per thread's task: one cache line of each position's hypercolumn


@njit(cache=True, inline="always")
def _tap(low, frac, k, n):
    """The two input indices and the upper one's weight of output k along an axis of n inputs."""
    return low[k], min(low[k] + 1, n - 1), frac[k]


@njit(cache=True, parallel=True)
def resize_into(a, row_low, row_frac, col_low, col_frac, r0, r1, scale, out, offset):
    """out[(i - r0) * gw + j, offset + c] = scale * bilinear sample of a[c] (C, H, W) at grid row i in r0..r1
    and grid column j; `out` is a (positions, channels) block of hypercolumns, one position per row."""
    channels, height, width = a.shape
    gw = col_low.shape[0]
    for group in prange((channels + GROUP - 1) // GROUP):
        # Channel by channel within a group: each plane is read in order, and the group's lines of `out`
        # stay in cache from one channel to the next.
        for c in range(group * GROUP, min(channels, group * GROUP + GROUP)):
            for i in range(r0, r1):
                y0, y1, fy = _tap(row_low, row_frac, i, height)
                base = (i - r0) * gw
                for j in range(gw):
                    x0, x1, fx = _tap(col_low, col_frac, j, width)
                    top = a[c, y0, x0] + fx * (a[c, y0, x1] - a[c, y0, x0])
                    bottom = a[c, y1, x0] + fx * (a[c, y1, x1] - a[c, y1, x0])
                    out[base + j, offset + c] = scale * (top + fy * (bottom - top))


@njit(cache=True, parallel=True)
def resize_adjoint_add(g, offset, row_low, row_frac, col_low, col_frac, r0, r1, scale, grad):
    """The adjoint of `resize_into`: adds scale * (its transpose applied to g[:, offset:offset + C]) into
    grad (C, H, W). Each group of channels is one thread's, so the scattered adds never race."""
    channels, height, width = grad.shape
    gw = col_low.shape[0]
    for group in prange((channels + GROUP - 1) // GROUP):
        for c in range(group * GROUP, min(channels, group * GROUP + GROUP)):
            for i in range(r0, r1):
                y0, y1, fy = _tap(row_low, row_frac, i, height)
                base = (i - r0) * gw
                for j in range(gw):
                    x0, x1, fx = _tap(col_low, col_frac, j, width)
                    v = scale * g[base + j, offset + c]
                    top, bottom = v * (1 - fy), v * fy
                    grad[c, y0, x0] += top * (1 - fx)
                    grad[c, y0, x1] += top * fx
                    grad[c, y1, x0] += bottom * (1 - fx)
                    grad[c, y1, x1] += bottom * fx


# fastmath lets the sums over channels run in vector lanes; float32 sums of a few thousand terms of one
# sign (the norms) or bounded by them (the dot products) keep about six digits.
@njit(cache=True, parallel=True, fastmath=True)
def cosine_loss_grad(features, style, index, centre, scale, tiny):
    """scale * sum over positions p of (1 - cos(features[p] - centre, style[index[p]])) for (P, C) features
    and unit style rows (S, C), and its gradient with respect to the features."""
    positions, channels = features.shape
    grad = np.empty_like(features)
    losses = np.zeros(positions)
    for p in prange(positions):
        t = style[index[p]]
        f = features[p]
        norm2 = f[0] * 0
        dot = f[0] * 0
        for c in range(channels):
            v = f[c] - centre[c]
            norm2 += v * v
            dot += v * t[c]
        norm = max(np.sqrt(norm2), tiny)
        losses[p] = 1.0 - dot / norm
        coef_t = -scale / norm
        coef_f = scale * dot / (norm * norm * norm)
        for c in range(channels):
            grad[p, c] = coef_t * t[c] + coef_f * (f[c] - centre[c])
    return scale * losses.sum(), grad
