"""Total variation: 1/2 x weight x the sum of squared differences between neighbouring pixels."""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def tv_loss_grad(image: np.ndarray, weight: float):
    """For an image of shape (C, H, W) float32: (loss, gradient of the same shape)."""
    c_n, h, w = image.shape
    grad = np.zeros_like(image)
    wt = np.float32(weight)
    loss = 0.0
    for row in prange(c_n * h):
        c = row // h
        i = row % h
        for j in range(w):
            x = image[c, i, j]
            g = np.float32(0.0)
            if j + 1 < w:
                d = image[c, i, j + 1] - x
                loss += np.float64(d) * d
                g -= d
            if i + 1 < h:
                d = image[c, i + 1, j] - x
                loss += np.float64(d) * d
                g -= d
            if j > 0:
                g += x - image[c, i, j - 1]
            if i > 0:
                g += x - image[c, i - 1, j]
            grad[c, i, j] = wt * g
    return 0.5 * weight * loss, grad
