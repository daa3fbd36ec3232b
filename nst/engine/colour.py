"""Colour options of a transfer: keep the content's colours (luminance-only result), and match the
style image's colours to the content's before the transfer."""

from __future__ import annotations

import numpy as np

from nst.kernels.colour import affine_colour, luminance_transfer, match_histograms

from .choices import MATCHING, PRESERVE
from .errors import NstError


def preserve_colours(result: np.ndarray, content: np.ndarray, space: str = "ycbcr") -> np.ndarray:
    """The result's luminance with the content's chroma (HxWx3 float32, same size), clipped to 0..255."""
    if space == "ycbcr":
        return luminance_transfer(
            np.ascontiguousarray(result, dtype=np.float32), np.ascontiguousarray(content, dtype=np.float32)
        )
    if space == "lab":
        import cv2

        lab = cv2.cvtColor(np.ascontiguousarray(result / 255.0, dtype=np.float32), cv2.COLOR_RGB2Lab)
        lab[:, :, 1:] = cv2.cvtColor(np.ascontiguousarray(content / 255.0, dtype=np.float32), cv2.COLOR_RGB2Lab)[
            :, :, 1:
        ]
        return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB) * 255.0, 0.0, 255.0)
    raise NstError(f"--preserve-colors {space!r}: use one of {', '.join(PRESERVE)}")


def _sqrt_psd(matrix: np.ndarray, inverse: bool = False) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    values = np.maximum(values, 1.0)  # a grey or flat style has (nearly) no variance along some axes
    power = -0.5 if inverse else 0.5
    return (vectors * values**power) @ vectors.T


def match_colours(style: np.ndarray, content: np.ndarray, method: str) -> np.ndarray:
    """The style image recoloured to the content's colour statistics (HxWx3 float32, style's size)."""
    if method == "none":
        return style
    if method == "histogram":
        return np.clip(match_histograms(style, content), 0.0, 255.0).astype(np.float32)
    if method == "meancov":
        s = style.reshape(-1, 3).astype(np.float64)
        c = content.reshape(-1, 3).astype(np.float64)
        mu_s, mu_c = s.mean(axis=0), c.mean(axis=0)
        transform = _sqrt_psd(np.cov(c, rowvar=False)) @ _sqrt_psd(np.cov(s, rowvar=False), inverse=True)
        out = affine_colour(style, transform.astype(np.float32), mu_s.astype(np.float32), mu_c.astype(np.float32))
        return np.clip(out, 0.0, 255.0)
    raise NstError(f"--match-colors {method!r}: use one of {', '.join(MATCHING)}")
