"""Optical flow between input frames (OpenCV DIS or Farneback), warping by it, and where it can be trusted.

Conventions: a flow is HxWx2 float32 (dx, dy) in pixels; `backward = flow(frame_t, frame_t-1)` maps every
pixel of frame t to where it was in frame t-1, so `warp(output_t-1, backward)` lines up with frame t.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from nst.engine.errors import NstError

FLOWS = ("dis", "farneback")


def dis_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """DIS optical flow from HxW uint8 `a` to `b`."""
    import cv2

    dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    # None: no first guess. OpenCV's stub asks for an array, but DIS would take an HxWx2 float32 one as its start.
    return dis.calc(a, b, cast(Any, None))


def _gray(image: np.ndarray) -> np.ndarray:
    """HxWx3 float 0..255 RGB -> HxW uint8 luma, the input both OpenCV methods take."""
    import cv2

    return cv2.cvtColor(np.clip(image + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)


def optical_flow(source: np.ndarray, target: np.ndarray, method: str = "dis") -> np.ndarray:
    """The flow from `source` to `target` (HxWx3 RGB): source(p) is seen at target(p + flow(p))."""
    import cv2

    a, b = _gray(source), _gray(target)
    if method == "dis":
        flow = dis_flow(a, b)
    elif method == "farneback":
        flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 4, 15, 5, 5, 1.1, 0)
    else:
        raise NstError(f"--flow {method!r}: use one of {', '.join(FLOWS)}")
    return np.ascontiguousarray(flow, dtype=np.float32)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample `image` (HxW or HxWxC) at p + flow(p), bilinear, borders replicated."""
    import cv2

    h, w = flow.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(
        image.astype(np.float32),
        xx + flow[..., 0],
        yy + flow[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def consistency_mask(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """1 where the backward flow of frame t can be trusted, else 0 (Ruder et al., eq. 3-4).

    `forward` is flow(t-1 -> t), `backward` flow(t -> t-1).  A pixel is dropped where following the backward
    flow and then the forward flow does not come back (disocclusion) or where the flow changes sharply
    (motion boundaries); pixels whose backward flow leaves the frame are dropped too.
    """
    h, w = backward.shape[:2]
    there = warp(forward, backward)  # the forward flow at the point each pixel came from
    round_trip = np.sum((there + backward) ** 2, axis=2)
    occluded = round_trip > 0.01 * (np.sum(there**2, axis=2) + np.sum(backward**2, axis=2)) + 0.5
    gy_u, gx_u = np.gradient(backward[..., 0])
    gy_v, gx_v = np.gradient(backward[..., 1])
    boundary = gx_u**2 + gy_u**2 + gx_v**2 + gy_v**2 > 0.01 * np.sum(backward**2, axis=2) + 0.002
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    sx, sy = xx + backward[..., 0], yy + backward[..., 1]
    outside = (sx < 0) | (sx > w - 1) | (sy < 0) | (sy > h - 1)
    return (~(occluded | boundary | outside)).astype(np.float32)


class FramePair:
    """The flow between two input frames, computed once: the backward flow and its trust mask."""

    def __init__(self, previous: np.ndarray, current: np.ndarray, method: str = "dis") -> None:
        self.backward = optical_flow(current, previous, method)
        self.mask = consistency_mask(optical_flow(previous, current, method), self.backward)

    def warp(self, image: np.ndarray) -> np.ndarray:
        """`image` (an output of frame t-1, HxWx3) moved onto frame t."""
        return warp(image, self.backward)
