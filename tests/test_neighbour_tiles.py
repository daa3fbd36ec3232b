"""The nn loss in tiles (nst.engine.neighbour_tiles) against the same objective of the whole image: the same
style columns, the same matches, the same loss and image gradient, wherever the tile grid sits."""

from __future__ import annotations

import numpy as np
import pytest

from nst.engine.neighbour_tiles import TiledNeighbourObjective
from nst.engine.neighbours import NeighbourObjective

from .conftest import stripes, synthetic

# Layers down to the coarsest stride (8 pixels a row), where a position's taps reach furthest past a core.
SETTINGS = dict(
    preset="nnst", size=256, scales="256", scale_iterations="5", style_layers="relu1_1,relu2_1,relu3_1,relu4_1"
)


@pytest.fixture(scope="module")
def pair(st):
    content, style = synthetic(192, 256, seed=11), stripes(150, 170)
    start = np.random.default_rng(3).uniform(0, 255, (192, 256, 3)).astype(np.float32)
    common = dict(init=start, content_layers="relu2_1", content_weight=2.0, pyramid=False, **SETTINGS)
    whole = st.prepare(content, [style], **common)
    tiles = st.prepare(content, [style], tile=48, **common)
    return whole, tiles


def test_tiles_match_as_the_whole_image(pair):
    whole, tiles = pair
    assert type(whole.objective) is NeighbourObjective and isinstance(tiles.objective, TiledNeighbourObjective)
    assert len(tiles.objective.grid.at(0)) > 9  # interior tiles, cut on every side
    np.testing.assert_allclose(tiles.objective.matcher.style, whole.objective.matcher.style, atol=2e-6)
    np.testing.assert_array_equal(tiles.objective.index, whole.objective.index)
    assert tiles.objective.matched_distance == pytest.approx(whole.objective.matched_distance, rel=1e-5)


@pytest.mark.parametrize("step", [0, 1, 2])  # three places of the grid
def test_tiled_loss_and_gradient_equal_the_whole_images(pair, step):
    whole, tiles = pair
    x = whole.x0 + np.random.default_rng(step).normal(0, 4, whole.x0.shape).astype(np.float32)
    tiles.objective.evaluations = step  # the grid moves between evaluations
    loss, grad = tiles.objective.loss_and_grad(x)
    want_loss, want_grad = whole.objective.loss_and_grad(x)
    assert tiles.objective.last.style == pytest.approx(whole.objective.last.style, rel=1e-5)
    assert tiles.objective.last.content == pytest.approx(whole.objective.last.content, rel=1e-5)
    assert loss == pytest.approx(want_loss, rel=1e-5)
    scale = np.abs(want_grad).max()
    np.testing.assert_allclose(grad / scale, want_grad / scale, atol=2e-5)


def test_nnst_runs_in_tiles_end_to_end(st):
    """The preset's whole recipe (pyramid, scales, colour correction) with its finest scales in tiles."""
    content, style = synthetic(96, 128, seed=4), stripes(80, 80)
    out = st.transfer(content, [style], preset="nnst", size=128, tile=64, scale_iterations="1,1,2,3")
    assert out.shape == (96, 128, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(float) - content).mean() > 5  # stylised
