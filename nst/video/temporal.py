"""The temporal term: a wrapper objective that adds weight * mean(mask * (x - warped)^2) to the engine's.

Any objective with `loss_and_grad(image)` and `last` (the engine's split, fused, masked or tiled ones)
can be wrapped, so the engine's optimizers drive it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nst.engine.objective import Losses


@dataclass
class TemporalLosses(Losses):
    """The engine's terms plus the temporal one; total includes it."""

    temporal: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {**super().as_dict(), "temporal": self.temporal}


def temporal_loss_grad(image: np.ndarray, target: np.ndarray, mask: np.ndarray, weight: float):
    """weight * sum(mask * (image - target)^2) / image.size and its gradient; image, target (1, 3, H, W),
    mask (H, W).  The mean over all values keeps the weight independent of the frame size."""
    diff = image - target
    masked = diff * mask
    scale = weight / image.size
    return float(scale * np.dot(masked.ravel().astype(np.float64), diff.ravel())), (2.0 * scale) * masked


class TemporalObjective:
    """`inner`'s loss plus the temporal term toward `target` (the previous output, warped)."""

    def __init__(self, inner, target: np.ndarray, mask: np.ndarray, weight: float) -> None:
        self.inner = inner
        self.target = np.ascontiguousarray(target, dtype=np.float32)
        self.mask = np.ascontiguousarray(mask, dtype=np.float32)
        self.weight = float(weight)
        self.last: TemporalLosses | None = None

    @property
    def runner(self):
        return self.inner.runner

    @property
    def options(self):
        return self.inner.options

    @property
    def evaluations(self) -> int:
        return self.inner.evaluations

    def loss_and_grad(self, image: np.ndarray) -> tuple[float, np.ndarray]:
        """Total loss and its gradient for a (1, 3, H, W) float32 image."""
        loss, grad = self.inner.loss_and_grad(image)
        temporal, temporal_grad = temporal_loss_grad(image, self.target, self.mask, self.weight)
        base = self.inner.last
        self.last = TemporalLosses(base.total + temporal, base.content, base.style, base.tv, temporal)
        return loss + temporal, (grad + temporal_grad).astype(np.float32)
