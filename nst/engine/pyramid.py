"""The image held as a Laplacian pyramid (as NNST optimises it): an objective over the pyramid's
coefficients, so a plain gradient step moves coarse structure as readily as fine detail."""

from __future__ import annotations

import numpy as np

from .neighbours import linear_weights
from .objective import Losses
from .presets import Options

MAX_LEVELS = 8  # the authors' pyramid depth at 512 px


class PyramidObjective:
    """`inner`'s loss as a function of the Laplacian coefficients of a (1, 3, H, W) image, flattened finest
    first; halving (bilinear, as the authors' pyramid) until the short side would drop below 2 px."""

    def __init__(self, inner, shape: tuple[int, ...]) -> None:
        self.inner = inner
        self.shape = tuple(shape)
        h, w = self.shape[2:]
        self.sizes = [(h, w)]
        while len(self.sizes) <= MAX_LEVELS and min(h, w) // 2 >= 1 and min(h, w) >= 2:
            h, w = h // 2, w // 2
            self.sizes.append((h, w))
        pairs = list(zip(self.sizes[:-1], self.sizes[1:]))  # (fine, coarse) per level
        self.up = [(linear_weights(f[0], c[0], False), linear_weights(f[1], c[1], False)) for f, c in pairs]
        self.down = [(linear_weights(c[0], f[0], False), linear_weights(c[1], f[1], False)) for f, c in pairs]

    # What optimizers and progress read from every objective, passed through.
    @property
    def runner(self):
        return self.inner.runner

    @property
    def options(self) -> Options:
        return self.inner.options

    @property
    def evaluations(self) -> int:
        return self.inner.evaluations

    @property
    def last(self) -> Losses | None:
        return self.inner.last

    def record(self, content: float, style: float, tv: float) -> Losses:
        return self.inner.record(content, style, tv)

    @staticmethod
    def _apply(pair: tuple[np.ndarray, np.ndarray], a: np.ndarray) -> np.ndarray:
        rows, cols = pair
        return np.matmul(np.matmul(rows, a), cols.T)

    @staticmethod
    def _adjoint(pair: tuple[np.ndarray, np.ndarray], g: np.ndarray) -> np.ndarray:
        rows, cols = pair
        return np.matmul(np.matmul(rows.T, g), cols)

    def _split(self, flat: np.ndarray) -> list[np.ndarray]:
        levels, start = [], 0
        for h, w in self.sizes:
            levels.append(flat[start : start + 3 * h * w].reshape(3, h, w))
            start += 3 * h * w
        return levels

    def decompose(self, image: np.ndarray) -> np.ndarray:
        """The flat coefficients of a (1, 3, H, W) image."""
        cur, levels = image[0].astype(np.float32), []
        for up, down in zip(self.up, self.down):
            small = self._apply(down, cur)
            levels.append(cur - self._apply(up, small))
            cur = small
        levels.append(cur)
        return np.concatenate([level.reshape(-1) for level in levels])

    def synthesize(self, flat: np.ndarray) -> np.ndarray:
        """The (1, 3, H, W) image of flat coefficients."""
        levels = self._split(np.asarray(flat, np.float32))
        cur = levels[-1]
        for level, up in zip(levels[-2::-1], self.up[::-1]):
            cur = level + self._apply(up, cur)
        return np.ascontiguousarray(cur[None], np.float32)

    def loss_and_grad(self, flat: np.ndarray) -> tuple[float, np.ndarray]:
        loss, g = self.inner.loss_and_grad(self.synthesize(flat))
        cur, grads = g[0].astype(np.float32), []
        for up in self.up:  # each coarser level reaches the image through one more enlargement
            grads.append(cur.reshape(-1))
            cur = self._adjoint(up, cur)
        grads.append(cur.reshape(-1))
        return loss, np.concatenate(grads)
