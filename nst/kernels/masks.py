"""Per-position scaling of features (style masks) and L1 gradient normalisation."""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def scale_columns(features: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """features (C, M) times weights (M,) per column: masked features, or masked gradients."""
    c, m = features.shape
    out = np.empty_like(features)
    for i in prange(c):
        for j in range(m):
            out[i, j] = features[i, j] * weights[j]
    return out


@njit(cache=True, parallel=True)
def normalize_l1(grad: np.ndarray, strength: float) -> np.ndarray:
    """strength * grad / (sum |grad| + 1e-8): jcjohnson's -normalize_gradients, kept per layer."""
    total = 0.0
    for i in prange(grad.size):
        total += abs(np.float64(grad[i]))
    factor = np.float32(strength / (total + 1e-8))
    out = np.empty_like(grad)
    for i in prange(grad.size):
        out[i] = grad[i] * factor
    return out
