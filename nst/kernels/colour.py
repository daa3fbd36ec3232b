"""Colour transforms: RGB <-> YCbCr (JPEG's full-range BT.601), a 3x3 affine colour map, and
per-channel histogram matching.  Images are HxWx3 float32 in 0..255."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# Y, Cb, Cr rows; Cb and Cr are offset by 128 after the matrix.
RGB_TO_YCBCR = np.array(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], dtype=np.float32
)
YCBCR_TO_RGB = np.linalg.inv(RGB_TO_YCBCR.astype(np.float64)).astype(np.float32)
CHROMA_OFFSET = np.array([0.0, 128.0, 128.0], dtype=np.float32)


@njit(cache=True, parallel=True)
def affine_colour(image: np.ndarray, matrix: np.ndarray, before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """out = matrix @ (pixel - before) + after for every pixel of an HxWx3 float32 image."""
    h, w, _ = image.shape
    out = np.empty_like(image)
    for i in prange(h):
        for j in range(w):
            a = image[i, j, 0] - before[0]
            b = image[i, j, 1] - before[1]
            c = image[i, j, 2] - before[2]
            for k in range(3):
                out[i, j, k] = matrix[k, 0] * a + matrix[k, 1] * b + matrix[k, 2] * c + after[k]
    return out


def rgb_to_ycbcr(image: np.ndarray) -> np.ndarray:
    """HxWx3 RGB -> YCbCr (Y in 0..255, Cb and Cr centred on 128)."""
    return affine_colour(image, RGB_TO_YCBCR, np.zeros(3, np.float32), CHROMA_OFFSET)


def ycbcr_to_rgb(image: np.ndarray) -> np.ndarray:
    """HxWx3 YCbCr -> RGB (not clipped)."""
    return affine_colour(image, YCBCR_TO_RGB, CHROMA_OFFSET, np.zeros(3, np.float32))


@njit(cache=True)
def _channel_cdf(values: np.ndarray, bins: int) -> np.ndarray:
    hist = np.zeros(bins, np.float64)
    scale = (bins - 1) / 255.0
    for v in values:
        idx = int(min(max(v, 0.0), 255.0) * scale + 0.5)
        hist[idx] += 1.0
    cdf = np.cumsum(hist)
    return cdf / cdf[-1]


@njit(cache=True, parallel=True)
def match_histograms(source: np.ndarray, reference: np.ndarray, bins: int = 1024) -> np.ndarray:
    """Map each channel of `source` so that its histogram follows `reference`'s (HxWx3 float32)."""
    out = np.empty_like(source)
    levels = np.linspace(0.0, 255.0, bins)
    scale = (bins - 1) / 255.0
    for k in prange(3):
        src_cdf = _channel_cdf(source[:, :, k].ravel(), bins)
        ref_cdf = _channel_cdf(reference[:, :, k].ravel(), bins)
        mapping = np.interp(src_cdf, ref_cdf, levels)
        for i in range(source.shape[0]):
            for j in range(source.shape[1]):
                idx = int(min(max(source[i, j, k], 0.0), 255.0) * scale + 0.5)
                out[i, j, k] = mapping[idx]
    return out


@njit(cache=True, parallel=True)
def luminance_transfer(result: np.ndarray, content: np.ndarray) -> np.ndarray:
    """RGB with `result`'s YCbCr luminance and `content`'s chroma; where that colour leaves the RGB cube,
    the luminance (never the chroma) is moved to the nearest value inside it."""
    h, w, _ = result.shape
    out = np.empty_like(result)
    for i in prange(h):
        for j in range(w):
            y = 0.0
            cb = 0.0
            cr = 0.0
            for k in range(3):
                y += RGB_TO_YCBCR[0, k] * result[i, j, k]
                cb += RGB_TO_YCBCR[1, k] * content[i, j, k]
                cr += RGB_TO_YCBCR[2, k] * content[i, j, k]
            low = -1e30
            high = 1e30
            offsets = np.empty(3)
            for k in range(3):  # RGB_k = Y * sum(row) + chroma part; rows of the inverse have Y weight 1
                offsets[k] = YCBCR_TO_RGB[k, 1] * cb + YCBCR_TO_RGB[k, 2] * cr
                low = max(low, -offsets[k])
                high = min(high, 255.0 - offsets[k])
            y = min(max(y, low), high)
            for k in range(3):
                out[i, j, k] = min(max(y + offsets[k], 0.0), 255.0)
    return out
