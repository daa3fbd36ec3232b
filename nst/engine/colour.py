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


# OkLab (Ottosson), applied to sRGB values as they are, as the NNST authors do (no gamma decoding).
_OKLAB_LMS = np.array(
    [
        [0.4122214708, 0.5363325363, 0.0514459929],
        [0.2119034982, 0.6806995451, 0.1073969566],
        [0.0883024619, 0.2817188376, 0.6299787005],
    ]
)
_OKLAB_LAB = np.array(
    [
        [0.2104542553, 0.7936177850, -0.0040720468],
        [1.9779984951, -2.4285922050, 0.4505937099],
        [0.0259040371, 0.7827717662, -0.8086757660],
    ]
)


def _to_oklab(rgb: np.ndarray) -> np.ndarray:
    return np.cbrt(np.clip(rgb, 0.0, 1.0) @ _OKLAB_LMS.T) @ _OKLAB_LAB.T


def _from_oklab(lab: np.ndarray) -> np.ndarray:
    return np.clip((lab @ np.linalg.inv(_OKLAB_LAB).T) ** 3 @ np.linalg.inv(_OKLAB_LMS).T, 0.0, 1.0)


def _moments_map(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """`source` (N, D) affinely mapped (whitened, then coloured) to `target`'s mean and covariance."""

    def roots(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values, vectors = np.linalg.eigh(
            np.cov(x, rowvar=False, bias=True).reshape(x.shape[1], -1) + 1e-4 * np.eye(x.shape[1])
        )
        values = np.sqrt(np.maximum(values, 1e-8))
        return (vectors * values) @ vectors.T, (vectors / values) @ vectors.T

    _, whiten = roots(source)
    colour, _ = roots(target)
    return (source - source.mean(axis=0)) @ whiten @ colour + target.mean(axis=0)


def _guided_smooth(lab: np.ndarray, passes: int = 5) -> np.ndarray:
    """The a, b channels of an HxWx3 OkLab image averaged over 3x3 windows weighted by how alike the L
    channel is (the authors' edge-aware filter), so the chroma follows the luminance's edges."""
    h, w = lab.shape[:2]
    lum = np.pad(lab[:, :, 0], 1, mode="edge")
    weights = [np.exp(-10.0 * np.abs(lab[:, :, 0] - lum[i : i + h, j : j + w])) for i in range(3) for j in range(3)]
    total = np.sum(weights, axis=0)[:, :, None]
    chroma = lab[:, :, 1:]
    for _ in range(passes):
        pad = np.pad(chroma, ((1, 1), (1, 1), (0, 0)), mode="edge")
        windows = [pad[i : i + h, j : j + w] for i in range(3) for j in range(3)]
        chroma = np.sum([wt[:, :, None] * win for wt, win in zip(weights, windows)], axis=0) / total
    out = lab.copy()
    out[:, :, 1:] = chroma
    return out


def colour_correct(result: np.ndarray, content: np.ndarray, styles: list[np.ndarray]) -> np.ndarray:
    """NNST's final colour correction (HxWx3 float 0..255, the result's size): the result's OkLab lightness
    with the content's chroma mapped to the style's chroma mean and covariance, smoothed along the
    lightness's edges, every channel kept within the style's range. A grey style instead maps all three
    of the result's channels to the style's moments."""
    h, w = result.shape[:2]
    out = _to_oklab(result.reshape(-1, 3).astype(np.float64) / 255.0)
    source = _to_oklab(content.reshape(-1, 3).astype(np.float64) / 255.0)
    style = _to_oklab(np.concatenate([s.reshape(-1, 3) for s in styles]).astype(np.float64) / 255.0)
    low, high = style.min(axis=0), style.max(axis=0)
    new = np.clip(out, low, high)
    if np.abs(np.cov(style[:, 1:], rowvar=False, bias=True)).max() < 6e-5:
        new[:, 1:] = out[:, 1:]
        new = _moments_map(new, style)
    else:
        new[:, 1:] = _moments_map(source[:, 1:], style[:, 1:])
        new = _guided_smooth(new.reshape(h, w, 3)).reshape(-1, 3)
    new = np.clip(new, low, high)
    return (_from_oklab(new) * 255.0).reshape(h, w, 3).astype(np.float32)
