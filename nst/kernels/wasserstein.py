"""The Wasserstein-2 style loss: the squared W2 distance between Gaussians fitted to a layer's features.

For features F (C channels by M positions) with mean mu and covariance S, against a style's mu_t and S_t:

    W2^2 = |mu - mu_t|^2 + tr(S) + tr(S_t) - 2 tr((A S A)^(1/2)),   A = S_t^(1/2)

divided by the style's total variance tr(S_t) at the layer: a relative distance, so a layer's weight means
the same whatever the scale of its features (they differ by orders of magnitude between layers and
between networks; crowsonkb/style-transfer-pytorch divides by C and balances layers by their weights).
The style's square root is taken once per target; the one inside the loss comes from one symmetric
eigendecomposition per evaluation, which also gives (A S A)^(-1/2) for the gradient:
d W2^2 / d S = I - A (A S A)^(-1/2) A.
The matrix algebra runs in float64 through LAPACK (it is C x C, small next to the features).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Added to both covariances, times the style's mean variance at the layer (feature scales differ between
# layers and networks): ReLU features leave some directions without variance.
EPS = 1e-4


def moments(features: np.ndarray) -> np.ndarray:
    """A style target for features (C, M): their second raw moment F F^T / M (C rows) over their mean (one
    row), float32 (C + 1, C). Unlike covariances, raw moments of several styles blend linearly."""
    m = features.shape[1]
    srm = np.dot(features, features.T) / np.float32(m)
    return np.concatenate([srm, features.mean(axis=1, dtype=np.float64)[None].astype(np.float32)], axis=0)


def _symmetric(matrix: np.ndarray) -> np.ndarray:
    return (matrix + matrix.T) * 0.5


def _inverse(roots: np.ndarray) -> np.ndarray:
    """1 / roots, with 0 for directions without variance (rounding leaves them slightly off zero)."""
    keep = roots > 1e-12 * max(float(roots.max()), 1e-30)
    return np.where(keep, 1.0 / np.where(keep, roots, 1.0), 0.0)


def sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """The square root of a symmetric positive semi-definite matrix."""
    values, vectors = np.linalg.eigh(_symmetric(matrix))
    return (vectors * np.sqrt(np.maximum(values, 0.0))) @ vectors.T


@dataclass(frozen=True)
class W2Target:
    """A style's Gaussian at one layer: mean, covariance (eps added), its square root and trace."""

    mean: np.ndarray
    cov: np.ndarray
    cov_sqrt: np.ndarray
    cov_trace: float
    eps: float

    @classmethod
    def from_moments(cls, target: np.ndarray, eps: float = EPS) -> W2Target:
        """From `moments()` (possibly blended over styles); `eps` relative to the style's mean variance."""
        srm, mean = target[:-1].astype(np.float64), target[-1].astype(np.float64)
        cov = srm - np.outer(mean, mean)
        eps = eps * max(float(np.trace(cov)) / len(mean), 1e-12)
        cov += eps * np.eye(len(mean))
        return cls(mean, cov, sqrt_psd(cov), float(np.trace(cov)), eps)


def w2_loss_grad(
    features: np.ndarray, target: W2Target, weight: float, positions: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """loss = weight * W2^2 / tr(S_t) for features (C, M) float32, and d loss / d F (C, M) float32.
    `positions` (M weights, such as a style mask scaled to the layer) fits the Gaussian to the weighted
    positions only: a masked region is compared with the style, not diluted by the zeros outside it."""
    m = features.shape[1]
    w = np.ones(m, np.float32) if positions is None else np.asarray(positions, np.float32)
    total = max(float(w.sum(dtype=np.float64)), 1e-12)
    weighted = features if positions is None else features * w  # unweighted: no copy, and A A^T runs as syrk
    srm = np.dot(weighted, features.T).astype(np.float64) / total
    mean = (features @ w).astype(np.float64) / total
    loss, coef, offset = w2_coefficients(srm, mean, total, target, weight)
    grad = np.dot(coef, features)
    grad += offset[:, None]
    if positions is not None:
        grad *= w
    return loss, grad


def w2_coefficients(
    srm: np.ndarray, mean: np.ndarray, total: float, target: W2Target, weight: float
) -> tuple[float, np.ndarray, np.ndarray]:
    """The loss of `w2_loss_grad` from the features' raw second moment F F^T / M (C, C) and mean (C,) over
    `total` positions, both float64, and the gradient's parts: d loss / d F = coef @ F + offset 1^T (float32).
    The moments are sums over positions, so tiles can add theirs up and share one coef and offset."""
    c = len(mean)
    cov = srm - np.outer(mean, mean) + target.eps * np.eye(c)
    a = target.cov_sqrt
    values, vectors = np.linalg.eigh(_symmetric(a @ cov @ a))
    roots = np.sqrt(np.maximum(values, 0.0))
    diff = mean - target.mean
    w2 = float(diff @ diff) + float(np.trace(cov)) + target.cov_trace - 2.0 * float(roots.sum())
    k = weight / target.cov_trace
    b = a @ vectors  # A (A S A)^(-1/2) A = B diag(1 / roots) B^T: two products instead of four
    d_cov = k * (np.eye(c) - (b * _inverse(roots)) @ b.T)  # d loss / d cov, symmetric
    coef = (2.0 / total) * d_cov
    # d loss / d F = (2/M) d_cov (F - mu 1^T) + (2k/M) (mu - mu_t) 1^T: one (C, C) x (C, M) product.
    offset = (2.0 * k / total) * diff - coef @ mean
    return k * w2, coef.astype(np.float32), offset.astype(np.float32)
