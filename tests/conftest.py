"""Shared fixtures: small synthetic images, the shared folder, one StyleTransfer for the session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
IMAGES = SHARED / "images"


def synthetic(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth-ish RGB uint8 test picture (gradients plus a few blobs), deterministic."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx / w * 255, yy / h * 255, (xx + yy) / (h + w) * 255], axis=2)
    for _ in range(4):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(3, max(4, min(h, w) / 3))
        colour = rng.uniform(0, 255, 3)
        mask = ((yy - cy) ** 2 + (xx - cx) ** 2) < r * r
        img[mask] = colour
    return img.clip(0, 255).astype(np.uint8)


def stripes(h: int, w: int) -> np.ndarray:
    """A high-contrast striped style picture."""
    yy, xx = np.mgrid[0:h, 0:w]
    r = ((xx // 4) % 2) * 220 + 20
    g = ((yy // 6) % 2) * 180 + 40
    b = (((xx + yy) // 5) % 2) * 200 + 30
    return np.stack([r, g, b], axis=2).astype(np.uint8)


@pytest.fixture(scope="session")
def st():
    from nst.engine import StyleTransfer

    return StyleTransfer(device="cpu")


@pytest.fixture
def shared_images():
    if not IMAGES.is_dir():
        pytest.skip("../shared/images is not beside this checkout")
    return IMAGES


def need(available: bool, reason: str) -> None:
    """Skip with `reason` when a tool is missing, except in CI (env CI=true), where that is a failure."""
    import os

    if available:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI must run this test)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory):
    """A bundle exported with the nst preset's layers and weights."""
    from nst.bundle.export import export_folder

    folder = tmp_path_factory.mktemp("bundle")
    export_folder(folder)
    return folder
