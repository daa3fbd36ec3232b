"""Image layout conversions: HxWx3 (uint8, uint16 or float) <-> (1, 3, H, W) float32 in 0..255."""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def hwc_to_nchw(image: np.ndarray, scale: float) -> np.ndarray:
    """HxWx3 array of any real dtype -> (1, 3, H, W) float32, each value multiplied by `scale`."""
    h, w, c = image.shape
    out = np.empty((1, c, h, w), dtype=np.float32)
    s = np.float32(scale)
    for i in prange(h):
        for j in range(w):
            for k in range(c):
                out[0, k, i, j] = np.float32(image[i, j, k]) * s
    return out


@njit(cache=True, parallel=True)
def nchw_to_hwc_float(x: np.ndarray) -> np.ndarray:
    """(1, 3, H, W) float32 -> HxWx3 float32, clipped to 0..255."""
    _, c, h, w = x.shape
    out = np.empty((h, w, c), dtype=np.float32)
    for i in prange(h):
        for j in range(w):
            for k in range(c):
                out[i, j, k] = min(max(x[0, k, i, j], np.float32(0.0)), np.float32(255.0))
    return out


@njit(cache=True, parallel=True)
def nchw_to_hwc_uint8(x: np.ndarray) -> np.ndarray:
    """(1, 3, H, W) float32 in 0..255 -> HxWx3 uint8, rounded to nearest and clipped."""
    _, c, h, w = x.shape
    out = np.empty((h, w, c), dtype=np.uint8)
    for i in prange(h):
        for j in range(w):
            for k in range(c):
                value = min(max(x[0, k, i, j], np.float32(0.0)), np.float32(255.0))
                out[i, j, k] = np.uint8(np.floor(value + np.float32(0.5)))
    return out
