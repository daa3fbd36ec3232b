"""Content loss: a scaled sum of squared differences between activations, and its gradient."""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def content_loss_grad(features: np.ndarray, target: np.ndarray, scale: float):
    """loss = scale * sum((F - P)^2), gradient 2 scale (F - P); flat float32 arrays of equal size."""
    n = features.size
    grad = np.empty_like(features)
    loss = 0.0
    two_scale = np.float32(2.0 * scale)
    for i in prange(n):
        d = features[i] - target[i]
        grad[i] = two_scale * d
        loss += np.float64(d) * d
    return scale * loss, grad
