"""Tiling: the tiles partition the image on the pooling grid, the tiled objective equals the whole-image
objective (loss and gradient) while its grid moves, and a tiled transfer gives the untiled result."""

from __future__ import annotations

import numpy as np
import pytest

from nst.engine import NstError
from nst.engine.images import fit_size
from nst.engine.objective import Objective, content_targets, style_targets
from nst.engine.tiling import ALIGN, TiledObjective, TileGrid, reach, tiled_style_targets, tiles

from .conftest import stripes, synthetic

SHALLOW = dict(content_layers={"relu2_1": 1.0}, style_layers={"relu1_1": 1.0, "relu2_1": 1.0})


def test_reach_covers_the_receptive_field(st):
    # relu2_1: conv, conv, pool (stride 1), conv (stride 2) = 5 pixels -> 16; relu5_1: 85 -> 96
    assert reach(st.spec, "relu2_1") == 16 and reach(st.spec, "relu5_1") == 96 and reach(st.spec, "relu4_2") == 48


@pytest.mark.parametrize("offset", [(0, 0), (16, 48)])
def test_cores_partition_the_image_on_the_pooling_grid(offset):
    h, w = 150, 203
    covered = np.zeros((h, w), np.int32)
    for t in tiles(h, w, 64, 32, offset):
        covered[t.cy0 : t.cy1, t.cx0 : t.cx1] += 1
        assert t.y0 % ALIGN == 0 and t.x0 % ALIGN == 0 and t.cy0 % ALIGN == 0 and t.cx0 % ALIGN == 0
        assert t.y0 == max(0, t.cy0 - 32) and t.y1 == min(h, t.cy1 + 32) and t.x1 == min(w, t.cx1 + 32)
        assert t.cy1 - t.cy0 <= 64 and t.cx1 - t.cx0 <= 64
    assert (covered == 1).all()


def _objectives(st, h, w, core, pooling="max", style_loss="gram", **layers):
    rng = np.random.default_rng(0)
    opts = st.options(
        "johnson", pooling=pooling, path="split", size=max(h, w), tv_weight=0.01, style_loss=style_loss, **layers
    )
    runner = st.runner(opts)
    content, style = (rng.uniform(0, 255, shape).astype(np.float32) for shape in ((1, 3, h, w), (1, 3, 70, 60)))
    target = style_targets(runner, [style], [1.0], opts)
    whole = Objective(runner, content_targets(runner, content, opts)[0], target, opts)
    grid = TileGrid(st.spec, list(runner.loss_layers), h, w, core, pooling)
    tiled = TiledObjective(runner, grid, grid.features(runner, content, list(opts.content_layers)), target, opts)
    return whole, tiled, rng.uniform(0, 255, (1, 3, h, w)).astype(np.float32)


@pytest.mark.parametrize(
    "pooling,h,w,style_loss", [("max", 80, 112, "gram"), ("avg", 83, 109, "gram"), ("max", 83, 109, "w2")]
)
def test_tiled_objective_equals_the_whole_image(st, pooling, h, w, style_loss):
    # W2 is not a sum over positions, but its moments are: the tiles add up moments, then share one gradient
    whole, tiled, x = _objectives(st, h, w, 32, pooling, style_loss, **SHALLOW)
    want_loss, want_grad = whole.loss_and_grad(x)
    assert len(tiled.grid.at(0)) >= 9
    for _ in range(3):  # the grid moves each evaluation; the result does not
        loss, grad = tiled.loss_and_grad(x)
        assert loss == pytest.approx(want_loss, rel=1e-6)
        assert np.abs(grad - want_grad).max() <= 1e-5 * np.abs(want_grad).max()
    assert {t.cy0 for t in tiled.grid.at(1)} != {t.cy0 for t in tiled.grid.at(0)}


def test_second_pass_starts_from_the_tile_the_first_ended_with(st, monkeypatch):
    whole, tiled, x = _objectives(st, 80, 112, 32, **SHALLOW)
    calls = []
    forward = tiled.runner.forward
    monkeypatch.setattr(tiled.runner, "forward", lambda image: calls.append(image.shape) or forward(image))
    loss, grad = tiled.loss_and_grad(x)
    n = len(tiled.grid.at(0))
    assert len(calls) == 2 * n - 1  # one forward per tile for the Grams, one less for the gradients
    want_loss, want_grad = whole.loss_and_grad(x)
    assert loss == pytest.approx(want_loss, rel=1e-6)
    assert np.abs(grad - want_grad).max() <= 1e-5 * np.abs(want_grad).max()


@pytest.mark.parametrize("style_loss", ["gram", "w2"])
def test_tiled_objective_is_exact_through_relu5_1(st, style_loss):
    whole, tiled, x = _objectives(
        st,
        200,
        184,
        64,
        style_loss=style_loss,
        content_layers={"relu4_2": 1.0},
        style_layers={"relu1_1": 1.0, "relu3_1": 1.0, "relu5_1": 1.0},
    )
    want_loss, want_grad = whole.loss_and_grad(x)
    loss, grad = tiled.loss_and_grad(x)
    assert tiled.grid.halo == 96 and len(tiled.grid.at(0)) >= 9
    assert loss == pytest.approx(want_loss, rel=1e-6)
    assert np.abs(grad - want_grad).max() <= 1e-5 * np.abs(want_grad).max()


@pytest.mark.parametrize("style_loss", ["gram", "w2"])
def test_tiled_style_targets_equal_the_whole_image(st, style_loss):
    opts = st.options("johnson", path="split", style_loss=style_loss, **SHALLOW)
    runner = st.runner(opts)
    styles = [np.random.default_rng(3).uniform(0, 255, (1, 3, 90, 130)).astype(np.float32)]
    want = style_targets(runner, styles, [1.0], opts)
    got = tiled_style_targets(runner, st.spec, styles, [1.0], opts, 32)
    for layer in want:
        np.testing.assert_allclose(got[layer], want[layer], rtol=1e-4, atol=1e-3 * np.abs(want[layer]).max())


@pytest.mark.parametrize("style_loss", ["gram", "w2"])
def test_tiled_transfer_matches_untiled(st, style_loss):
    # Noisy content: flat regions tie in max pooling, and a rounding difference between tile and whole
    # image then routes a gradient to the other pixel of the window, which L-BFGS-B amplifies later.
    rng = np.random.default_rng(0)
    content = np.clip(synthetic(96, 128) * 0.8 + 25 + rng.uniform(-20, 20, (96, 128, 3)), 0, 255).astype(np.float32)
    kwargs = dict(size=128, iterations=3, tv_weight=0.01, path="split", style_loss=style_loss, **SHALLOW)
    untiled = st.stylize(content, [stripes(64, 64)], preset="johnson", **kwargs)
    seen = []
    tiled = st.stylize(content, [stripes(64, 64)], preset="johnson", tile=32, callback=seen.append, **kwargs)
    assert len(seen) == 3 and untiled.shape == tiled.shape == (96, 128, 3)
    assert np.abs(untiled - content).mean() > 5  # the run did move the pixels
    assert np.abs(tiled - untiled).max() < 0.01  # and 12 moving tiles moved them the same way: no seams


def test_tiles_without_their_halo_would_show(st, monkeypatch):
    # the check above can fail: with no halo each tile sees zero padding at its border
    whole, tiled, x = _objectives(st, 64, 96, 32, **SHALLOW)
    monkeypatch.setattr(tiled.grid, "halo", 0)
    want = whole.loss_and_grad(x)[1]
    assert np.abs(tiled.loss_and_grad(x)[1] - want).max() > 0.01 * np.abs(want).max()


def test_tile_option_checks(st):
    with pytest.raises(NstError, match="multiple of 16"):
        st.options("nst", tile=50)
    with pytest.raises(NstError, match="at least 32"):
        st.options("nst", tile=16)
    with pytest.raises(NstError, match="need --path split"):
        st.options("nst", tile=256, path="fused", style_loss="gram")
    assert st.path(st.options("nst", tile=256, size=512)) == "split"  # the default's W2 tiles too
    assert st.path(st.options("nst", tile=1024, size=512, style_loss="gram")) == "fused"  # small enough: no tiles


def test_coarse_scales_of_a_tiled_run_take_large_styles_in_tiles(st, monkeypatch):
    """At a scale small enough to run whole, a style image larger than --tile (the final size's, by default)
    is still taken in tiles: the memory check counts a tile of it, not the whole."""
    from nst.engine import transfer as transfer_module

    seen: list[tuple[int, int]] = []
    real = transfer_module.tiled_style_targets

    def spy(runner, spec, styles, *rest):
        seen.extend(s.shape[2:] for s in styles)
        return real(runner, spec, styles, *rest)

    monkeypatch.setattr(transfer_module, "tiled_style_targets", spy)
    options = dict(size=128, scales=2, iterations=1, tile=64, **SHALLOW)
    opts = st.options(**options)
    assert [st.kind(opts, *fit_size(64, 128, side)) for side in (64, 128)] == ["split", "tiled"]
    st.stylize(synthetic(64, 128), [stripes(100, 100)], **options)
    assert seen == [(128, 128)]  # at the final size, in tiles at the coarse scale, then from the cache
