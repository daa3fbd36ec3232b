"""L-BFGS on the pixels, bounded to a box: the projected gradient, the two-loop recursion over float32
step memory (float64 sums), the projected step and the memory update, each one pass over the image.

They run on one thread, vectorised (fastmath lets the float64 sums reorder): each pass is memory-bound
and short, so threads gain little, and on a busy machine waiting at numba's parallel barrier costs many
times the pass itself."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, fastmath=True)
def projected_gradient(x: np.ndarray, g: np.ndarray, low: float, high: float, out: np.ndarray) -> float:
    """out = g with the entries zeroed whose pixel sits on a bound and is pushed outwards; returns max |out|
    (0 at a box-constrained stationary point)."""
    lo = np.float32(low)
    hi = np.float32(high)
    biggest = 0.0
    for i in range(x.size):
        v = g[i]
        if (x[i] <= lo and v > 0) or (x[i] >= hi and v < 0):
            v = np.float32(0.0)
        out[i] = v
        biggest = max(biggest, abs(np.float64(v)))
    return biggest


@njit(cache=True, fastmath=True)
def _dot(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> float:
    """sum a b w: with w the 0/1 mask of free pixels, a.b over them (no branch, so it vectorises)."""
    total = 0.0
    for i in range(a.size):
        total += np.float64(a[i]) * np.float64(b[i]) * np.float64(w[i])
    return total


@njit(cache=True, fastmath=True)
def _axpy(alpha: float, x: np.ndarray, y: np.ndarray, w: np.ndarray) -> None:
    """y += alpha x w: over the free pixels only."""
    a = np.float32(alpha)
    for i in range(y.size):
        y[i] += a * x[i] * w[i]


@njit(cache=True, fastmath=True)
def lbfgs_direction(gp: np.ndarray, S: np.ndarray, Y: np.ndarray, order: np.ndarray, d: np.ndarray) -> float:
    """d = -H gp over the free pixels (gp != 0; pixels a bound holds get d = 0), by the two-loop recursion
    over the stored steps S[k] and gradient changes Y[k] taken in `order` (oldest first), each pair
    restricted to the free pixels (a pair whose restricted curvature s.y is not positive is skipped) and
    H0 = gamma I scaled by the newest usable pair.  Without pairs: steepest descent.  Returns gp.d."""
    m = order.size
    alpha = np.zeros(m)
    rho = np.zeros(m)
    gamma = 1.0
    newest = True
    w = np.empty(gp.size, np.float32)
    for i in range(gp.size):
        w[i] = 1.0 if gp[i] != 0 else 0.0
        d[i] = -gp[i]
    for j in range(m - 1, -1, -1):
        k = order[j]
        sy = _dot(S[k], Y[k], w)
        if sy <= 0.0:
            continue
        rho[j] = 1.0 / sy
        if newest:
            gamma = sy / _dot(Y[k], Y[k], w)
            newest = False
        alpha[j] = rho[j] * _dot(S[k], d, w)
        _axpy(-alpha[j], Y[k], d, w)
    scale = np.float32(gamma)
    for i in range(d.size):
        d[i] *= scale
    for j in range(m):
        if rho[j] == 0.0:
            continue
        k = order[j]
        beta = rho[j] * _dot(Y[k], d, w)
        _axpy(alpha[j] - beta, S[k], d, w)
    return _dot(gp, d, w)


@njit(cache=True, fastmath=True)
def projected_step(x: np.ndarray, d: np.ndarray, t: float, low: float, high: float, out: np.ndarray) -> None:
    """out = clip(x + t d, low, high)."""
    step = np.float32(t)
    lo = np.float32(low)
    hi = np.float32(high)
    for i in range(x.size):
        out[i] = min(max(x[i] + step * d[i], lo), hi)


@njit(cache=True, fastmath=True)
def store_step(
    x_new: np.ndarray, x: np.ndarray, g_new: np.ndarray, g: np.ndarray, s: np.ndarray, y: np.ndarray
) -> tuple[float, float, float]:
    """s = x_new - x, y = g_new - g, written in place; returns (s.y, y.y, s.g) for the curvature test,
    the next H0 scale and the Armijo test."""
    sy = 0.0
    yy = 0.0
    sg = 0.0
    for i in range(x.size):
        si = x_new[i] - x[i]
        yi = g_new[i] - g[i]
        s[i] = si
        y[i] = yi
        sy += np.float64(si) * np.float64(yi)
        yy += np.float64(yi) * np.float64(yi)
        sg += np.float64(si) * np.float64(g[i])
    return sy, yy, sg
