"""First images and style masks: what an optimisation starts from and where each style applies."""

from __future__ import annotations

import numpy as np

from .choices import INITS  # noqa: F401 (its callers import the first-image kinds from here)
from .errors import NstError
from .images import as_image


def initial_image(kind: str, content: np.ndarray, mean: np.ndarray, seed: int) -> np.ndarray:
    """The first image: the content, Gaussian noise, uniform random pixels, or the assignment's noisy
    content."""
    if kind == "content":
        return content.copy()
    rng = np.random.RandomState(seed)
    _, _, h, w = content.shape
    if kind == "noise":
        # Gaussian noise (sigma 32 levels) around the network's mean colour.
        noise = mean + rng.normal(0.0, 32.0, content.shape)
        return np.ascontiguousarray(np.clip(noise, 0, 255), dtype=np.float32)
    if kind == "noisy-content":
        # The assignment: numpy seeded, two randn() draws, then 0.6 * U(-20, 20) + 0.4 * content
        # in mean-subtracted space.
        rng.randn()
        rng.randn()
        noise = rng.uniform(-20, 20, (1, h, w, 3)).astype(np.float32).transpose(0, 3, 1, 2)
        return np.ascontiguousarray(noise * 0.6 + (content - mean) * 0.4 + mean, dtype=np.float32)
    return np.ascontiguousarray(rng.uniform(0, 255, content.shape), dtype=np.float32)


def mask_sources(sources) -> list:
    """Style masks as given ('a.png,,b.png' or a list) -> one path, array or None (everywhere) per style."""
    if isinstance(sources, str):
        return [s.strip() or None for s in sources.split(",")]
    return list(sources)


def load_masks(sources, count: int, h: int, w: int) -> list[np.ndarray]:
    """One HxW float32 mask in 0..1 per style (None: everywhere), resized to the content's size."""
    sources = mask_sources(sources)
    if len(sources) != count:
        raise NstError(
            f"--style-masks has {len(sources)} mask(s) for {count} style image(s); give one per style "
            "(an empty entry means everywhere)"
        )
    masks = []
    for i, source in enumerate(sources):
        if source is None:
            masks.append(np.ones((h, w), np.float32))
            continue
        import cv2

        grey = (_mask_image(source, f"style mask {i + 1}").mean(axis=2) / 255.0).astype(np.float32)
        masks.append(np.clip(cv2.resize(grey, (w, h), interpolation=cv2.INTER_AREA), 0.0, 1.0))
    return masks


def _mask_image(source, what: str) -> np.ndarray:
    """A mask file or array as HxWx3 0..255; a float array holds weights in 0..1 (refused beyond, rather than
    guessing that it meant 0..255)."""
    floats = isinstance(source, np.ndarray) and np.issubdtype(source.dtype, np.floating)
    if floats and source.size and np.isfinite(source).all() and float(source.max()) > 1.0:
        raise NstError(
            f"{what}: a float mask holds weights in 0..1, this one reaches {source.max():g}; divide it by 255"
        )
    return as_image(source, what, float_white=1.0)
