"""Temporal warping error (Lai et al., "Learning Blind Video Temporal Consistency", 2018), with its own flow.

The flow that scores a method must not be the one the method used (the same flow on both sides flatters
it), so it is computed here from the input frames at a larger size (finer detail, other pyramid levels), then scaled
down.
"""

from __future__ import annotations

import numpy as np

from nst.engine.images import resize

from .flow import consistency_mask, dis_flow, warp


def evaluation_flow(source: np.ndarray, target: np.ndarray, h: int, w: int, upscale: int = 4) -> np.ndarray:
    """Flow source -> target (HxWx3 frames at any size) computed at `upscale` times (h, w), returned at (h, w)."""
    import cv2

    big = [
        cv2.cvtColor(np.clip(resize(f, h * upscale, w * upscale) + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
        for f in (source, target)
    ]
    flow = dis_flow(big[0], big[1])
    return cv2.resize(flow, (w, h), interpolation=cv2.INTER_AREA) / np.float32(upscale)


class WarpingError:
    """E_warp of output sequences of one input clip: flows and masks computed once, from the inputs."""

    def __init__(self, inputs: list[np.ndarray], h: int, w: int, upscale: int = 4) -> None:
        self.pairs = []
        for previous, current in zip(inputs, inputs[1:]):
            backward = evaluation_flow(current, previous, h, w, upscale)
            mask = consistency_mask(evaluation_flow(previous, current, h, w, upscale), backward)
            self.pairs.append((backward, mask))

    def per_pair(self, outputs: list[np.ndarray]) -> list[float]:
        """Masked mean of the squared RGB distance (0..1 scale) between each output and the previous one
        warped onto it."""
        errors = []
        for (backward, mask), previous, current in zip(self.pairs, outputs, outputs[1:]):
            diff = (np.asarray(current, np.float32) - warp(np.asarray(previous, np.float32), backward)) / 255.0
            errors.append(float((mask * np.sum(diff**2, axis=2)).sum() / max(mask.sum(), 1.0)))
        return errors

    def __call__(self, outputs: list[np.ndarray]) -> float:
        return float(np.mean(self.per_pair(outputs)))
