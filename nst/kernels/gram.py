"""Gram matrices and the Gram (style) loss with its gradient."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def gram(features: np.ndarray) -> np.ndarray:
    """F F^T for features of shape (C, M) (channels by positions); float32 in, float32 out."""
    return np.dot(features, features.T)


@njit(cache=True)
def style_loss_grad(features: np.ndarray, target: np.ndarray, norm: float, scale: float):
    """loss = scale * sum((F F^T / norm - target)^2) and its gradient (4 scale / norm) (G / norm - T) F.

    features (C, M) float32, target (C, C) float32; returns (loss as float, gradient (C, M) float32).
    """
    diff = np.dot(features, features.T) / np.float32(norm) - target
    loss = 0.0
    for i in range(diff.shape[0]):
        for j in range(diff.shape[1]):
            loss += np.float64(diff[i, j]) * diff[i, j]
    grad = np.dot(diff, features) * np.float32(4.0 * scale / norm)
    return scale * loss, grad


@njit(cache=True)
def gram_loss(gram: np.ndarray, target: np.ndarray, norm: float, scale: float):
    """The style loss from a Gram matrix summed elsewhere (over tiles): loss = scale * sum((G / norm - T)^2),
    and the (C, C) matrix D = (4 scale / norm) (G / norm - T) such that d loss / d F = D F for any part F
    of the features whose Grams sum to G."""
    diff = gram / np.float32(norm) - target
    loss = 0.0
    for i in range(diff.shape[0]):
        for j in range(diff.shape[1]):
            loss += np.float64(diff[i, j]) * diff[i, j]
    return scale * loss, diff * np.float32(4.0 * scale / norm)
