"""The Adam update, in place, as TensorFlow writes it (bias correction folded into the step size)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def adam_step(
    x: np.ndarray,
    grad: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    low: float,
    high: float,
) -> None:
    """One Adam step on flat float32 arrays; step counts from 1; the result is clipped to [low, high]."""
    b1 = np.float32(beta1)
    b2 = np.float32(beta2)
    lr_t = np.float32(lr * np.sqrt(1.0 - beta2**step) / (1.0 - beta1**step))
    e = np.float32(eps)
    lo = np.float32(low)
    hi = np.float32(high)
    for i in prange(x.size):
        g = grad[i]
        m[i] = b1 * m[i] + (np.float32(1.0) - b1) * g
        v[i] = b2 * v[i] + (np.float32(1.0) - b2) * g * g
        value = x[i] - lr_t * m[i] / (np.sqrt(v[i]) + e)
        x[i] = min(max(value, lo), hi)
