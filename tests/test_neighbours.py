"""The nn style loss (NNST): the blocked ONNX matching against a numpy reference, the loss gradient
against finite differences, the pyramid parameterisation, the colour correction and the options."""

from __future__ import annotations

import numpy as np
import pytest

from nst.engine import neighbours
from nst.engine.errors import NstError
from nst.engine.graphs.matching import build_matching
from nst.engine.kinds import objective_kind
from nst.engine.neighbours import Hypercolumns, Matcher, linear_weights, neighbour_loss_grad, whole
from nst.engine.presets import Options
from nst.engine.pyramid import PyramidObjective
from nst.engine.runtime import make_session, resolve_device

from .conftest import stripes, synthetic
from .reference import check_gradient

SHAPES = {"relu1_1": (1, 3, 16, 20), "relu2_1": (1, 5, 8, 10), "relu3_1": (1, 4, 4, 5)}
LAYERS = {"relu1_1": 1.0, "relu2_1": 0.5, "relu3_1": 2.0}


def random_acts(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: np.maximum(rng.normal(0.3, 1.0, s), 0).astype(np.float32) for k, s in SHAPES.items()}


def reference_columns(acts: dict[str, np.ndarray]) -> np.ndarray:
    """Every layer / its channels, resized (align_corners bilinear) to the quarter grid, stacked: float64,
    (positions, channels)."""
    parts = []
    for layer, weight in LAYERS.items():
        a = acts[layer][0].astype(np.float64)
        ry, rx = linear_weights(4, a.shape[1], True), linear_weights(5, a.shape[2], True)
        parts.append(np.einsum("yh,chw,xw->yxc", ry, a, rx).reshape(-1, a.shape[0]) * weight / a.shape[0])
    return np.concatenate(parts, axis=1)


@pytest.fixture(scope="module")
def session():
    return make_session(build_matching().SerializeToString(), resolve_device("cpu"), 1, layout_rewrite=False)


def test_linear_weights_interpolate_a_ramp_as_pytorch_does():
    ramp = np.arange(7, dtype=np.float32)
    np.testing.assert_allclose(linear_weights(13, 7, True) @ ramp, np.linspace(0, 6, 13), atol=1e-6)
    half_pixel = np.clip((np.arange(14) + 0.5) / 2 - 0.5, 0, 6)  # align_corners=False, edges held
    np.testing.assert_allclose(linear_weights(14, 7, False) @ ramp, half_pixel, atol=1e-6)


def test_hypercolumn_blocks_equal_the_whole(monkeypatch):
    acts = random_acts(1)
    monkeypatch.setattr(neighbours, "BLOCK_BYTES", 4 * 5 * 12)  # one grid row per block
    columns = Hypercolumns(SHAPES, LAYERS, 16, 20)
    assert len(list(columns.blocks())) == 4
    np.testing.assert_allclose(columns.all(acts), reference_columns(acts), rtol=1e-5, atol=1e-6)


def test_blocked_matching_gives_the_numpy_neighbours_and_loss(session, monkeypatch):
    """The ONNX graph over blocks against the whole distance matrix in float64: same neighbours, same loss.
    The query is centred by its mean over every position, not per block."""
    monkeypatch.setattr(neighbours, "BLOCK_BYTES", 4 * 5 * 40)  # 2 grid rows (10 positions) per block
    acts, style_acts = random_acts(2), random_acts(3)
    s = reference_columns(style_acts)
    centre = s.mean(axis=0, keepdims=True)
    unit = (s - centre) / np.linalg.norm(s - centre, axis=1, keepdims=True)
    q = reference_columns(acts)
    q -= q.mean(axis=0, keepdims=True)  # the query centred by its own mean, the style by its own
    distances = 1 - (q / np.linalg.norm(q, axis=1, keepdims=True)) @ unit.T  # (positions, style positions)
    columns = Hypercolumns(SHAPES, LAYERS, 16, 20)
    matcher = Matcher(session, unit.astype(np.float32), centre.astype(np.float32))
    index, distance = matcher.match(columns, lambda: whole(columns, acts))
    assert len(list(columns.blocks(unit.shape[0]))) == 2
    np.testing.assert_array_equal(index, distances.argmin(axis=1))
    np.testing.assert_allclose(distance, distances.min(axis=1), atol=1e-5)
    # the loss to those targets is centred by the style's mean
    f = reference_columns(acts) - centre
    want = np.sum(1 - np.sum(f * unit[index], axis=1) / np.linalg.norm(f, axis=1))
    loss, _ = neighbour_loss_grad(columns.all(acts), matcher.style, index, matcher.centre, 0.5)
    assert loss == pytest.approx(0.5 * want, rel=1e-5)


def test_matching_ignores_an_offset_between_the_images_features(session):
    """A content whose features are the style's plus a constant per channel matches each position to its own
    style position: the query is centred by its own mean (by the style's, the offset would pull every
    position towards the same few style columns)."""
    style_acts = random_acts(8)
    acts = {k: v + np.float32(3.0) for k, v in style_acts.items()}
    columns = Hypercolumns(SHAPES, LAYERS, 16, 20)
    s = columns.all(style_acts).astype(np.float64)
    centre = s.mean(axis=0, keepdims=True)
    unit = ((s - centre) / np.linalg.norm(s - centre, axis=1, keepdims=True)).astype(np.float32)
    index, distance = Matcher(session, unit, centre.astype(np.float32)).match(columns, lambda: whole(columns, acts))
    np.testing.assert_array_equal(index, np.arange(columns.positions))
    np.testing.assert_allclose(distance, 0, atol=1e-5)


def reference_loss_grad(features, style, index, centre, scale):
    """The cosine loss and its gradient in float64 numpy, as the kernel's reference."""
    f = features.astype(np.float64) - centre
    t = style[index].astype(np.float64)
    norm = np.linalg.norm(f, axis=1, keepdims=True)
    dot = np.sum(f * t, axis=1, keepdims=True)
    return scale * float(np.sum(1 - dot / norm)), (-scale / norm) * (t - f * (dot / norm**2))


@pytest.mark.parametrize("positions", [7, 256, 700])
def test_cosine_kernel_equals_numpy(positions):
    rng = np.random.default_rng(positions)
    features = rng.normal(0.2, 1, (positions, 37)).astype(np.float32)
    style = rng.normal(size=(50, 37)).astype(np.float32)
    style /= np.linalg.norm(style, axis=1, keepdims=True)
    centre = rng.normal(0, 0.1, (1, 37)).astype(np.float32)
    index = rng.integers(0, 50, positions)
    loss, grad = neighbour_loss_grad(features, style, index, centre, 0.3)
    want_loss, want_grad = reference_loss_grad(features, style, index, centre, 0.3)
    assert loss == pytest.approx(want_loss, rel=1e-5)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-4, atol=1e-6)


def test_hypercolumn_adjoint_is_the_resize_transpose():
    """<resize(a), g> == <a, adjoint(g)> for each layer and block, against the dense numpy matrices."""
    acts, rng = random_acts(6), np.random.default_rng(7)
    columns = Hypercolumns(SHAPES, LAYERS, 16, 20)
    g = rng.normal(size=(columns.positions, columns.channels)).astype(np.float32)
    grads = {k: np.zeros_like(v) for k, v in acts.items()}
    for r0, r1 in [(0, 1), (1, 4)]:
        columns.add_adjoint(grads, g[r0 * 5 : r1 * 5], (slice(r0, r1), slice(0, 5)))
    assert sum(float(np.sum(grads[k] * acts[k])) for k in acts) == pytest.approx(
        float(np.sum(reference_columns(acts) * g)), rel=1e-5
    )


def test_loss_gradient_through_the_hypercolumns_matches_finite_differences():
    acts, style_acts = random_acts(4), random_acts(5)
    columns = Hypercolumns(SHAPES, LAYERS, 16, 20)
    s = columns.all(style_acts).astype(np.float64)
    centre = s.mean(axis=0, keepdims=True)
    unit = (s - centre) / np.linalg.norm(s - centre, axis=1, keepdims=True)
    index = np.random.default_rng(0).integers(0, unit.shape[0], columns.positions)

    def loss(a: dict[str, np.ndarray]) -> float:
        return neighbour_loss_grad(columns.all(a), unit, index, centre, 0.7)[0]

    a64 = {k: v.astype(np.float64) for k, v in acts.items()}
    grads = {k: np.zeros_like(v) for k, v in a64.items()}
    for rows, cols in columns.blocks():
        block = (rows, cols)
        _, g = neighbour_loss_grad(columns.block(a64, block), unit, index[rows.start * 5 : rows.stop * 5], centre, 0.7)
        columns.add_adjoint(grads, g, block)
    rng = np.random.default_rng(1)
    for _ in range(3):
        d = {k: rng.normal(size=v.shape) for k, v in a64.items()}
        h = 1e-5
        numeric = (loss({k: a64[k] + h * d[k] for k in d}) - loss({k: a64[k] - h * d[k] for k in d})) / (2 * h)
        analytic = sum(float(np.sum(grads[k] * d[k])) for k in d)
        assert analytic == pytest.approx(numeric, rel=1e-4)


def test_objective_gradient_with_nn_matches_finite_differences(st):
    content, style = synthetic(36, 44, seed=1), stripes(40, 40)
    prepared = st.prepare(content, [style], preset="nnst", size=44, init="noise", seed=5, pyramid=False)
    assert objective_kind(prepared.options, "cpu") == "neighbour"
    prepared.objective.loss_and_grad(prepared.x0)
    assert prepared.objective.last.style > 0
    check_gradient(prepared.objective, prepared.x0)


class Quadratic:
    """A stand-in objective: 0.5 |x - t|^2 on the image."""

    runner = None
    options = Options()
    evaluations = 0
    last = None

    def __init__(self, target: np.ndarray) -> None:
        self.target = target

    def loss_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        diff = x.astype(np.float64) - self.target
        return 0.5 * float(np.sum(diff * diff)), diff.astype(np.float32)


def test_pyramid_round_trip_and_gradient():
    rng = np.random.default_rng(2)
    image = rng.uniform(0, 255, (1, 3, 23, 30)).astype(np.float32)
    pyramid = PyramidObjective(Quadratic(rng.uniform(0, 255, image.shape)), image.shape)
    assert len(pyramid.sizes) > 3 and min(pyramid.sizes[-1]) >= 1
    c = pyramid.decompose(image)
    np.testing.assert_allclose(pyramid.synthesize(c), image, atol=1e-3)
    _, grad = pyramid.loss_and_grad(c)
    d = rng.normal(size=c.shape)
    h = 1e-2
    numeric = (pyramid.loss_and_grad(c + h * d)[0] - pyramid.loss_and_grad(c - h * d)[0]) / (2 * h)
    assert float(np.sum(grad * d)) == pytest.approx(numeric, rel=1e-3)


def test_colour_correction_takes_the_style_chroma_and_the_result_lightness():
    from nst.engine.colour import _to_oklab, colour_correct

    content, style = synthetic(32, 40, seed=2).astype(np.float32), stripes(30, 30).astype(np.float32)
    result = synthetic(32, 40, seed=7).astype(np.float32)
    out = colour_correct(result, content, [style])
    lab_out, lab_style = _to_oklab(out.reshape(-1, 3) / 255.0), _to_oklab(style.reshape(-1, 3) / 255.0)
    assert out.shape == result.shape and 0 <= out.min() and out.max() <= 255
    np.testing.assert_allclose(lab_out[:, 1:].mean(axis=0), lab_style[:, 1:].mean(axis=0), atol=0.02)
    lightness = _to_oklab(result.reshape(-1, 3) / 255.0)[:, 0]
    assert np.corrcoef(lab_out[:, 0], lightness)[0, 1] > 0.9


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"alpha": 1.5}, "--alpha 1.5 is out of range"),
        ({"path": "fused"}, "does not combine with --path fused"),
        ({"optimizer": "lbfgs"}, "--pyramid steps"),
        ({"alpha": "0.5"}, "alpha='0.5'"),
    ],
)
def test_bad_nn_options_are_one_line(st, overrides, message):
    with pytest.raises(NstError, match=message):
        st.options("nnst", **overrides)


def test_alpha_out_of_range_is_refused_with_any_loss(st):
    with pytest.raises(NstError, match="--alpha 2 is out of range"):
        st.options("nst", alpha=2)


def test_nnst_transfer_end_to_end(st):
    content, style = synthetic(48, 64, seed=3), stripes(40, 40)
    out = st.transfer(content, [style], preset="nnst", size=64, scale_iterations="1,1,1,20")
    plain = st.transfer(content, [style], preset="nnst", size=64, scale_iterations="1,1,1,20", colour_correction=False)
    assert out.shape == (48, 64, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(float) - content).mean() > 5  # stylised
    assert np.abs(out.astype(float) - plain).mean() > 1  # the colour correction changed it


def test_server_takes_the_nn_options_within_its_cap(st):
    from nst.serve.config import ServeConfig
    from nst.serve.intake import Refused, parse_options, resolve

    config = ServeConfig()
    client = parse_options('{"preset": "nnst", "size": 256, "alpha": 0.5, "colour_correction": false}')
    opts, _ = resolve(client, 1, st.spec.relu_names, config)
    assert (opts.style_loss, opts.alpha, opts.colour_correction) == ("nn", 0.5, False)
    with pytest.raises(Refused, match="limit of 512 px for it"):
        resolve(parse_options('{"style_loss": "nn", "size": 1024}'), 1, st.spec.relu_names, config)
    with pytest.raises(Refused, match="is not true or false"):
        parse_options('{"colour_correction": 1}')
    with pytest.raises(Refused, match="alpha 2.0 is out of range"):
        resolve(parse_options('{"preset": "nnst", "alpha": 2.0}'), 1, st.spec.relu_names, config)


def test_cli_flags_reach_the_engine(tmp_path):
    import subprocess
    import sys

    from nst.engine.images import read_image, write_image

    write_image(tmp_path / "content.png", synthetic(48, 64))
    write_image(tmp_path / "style.png", stripes(40, 40))
    base = [sys.executable, "-m", "nst", "transfer", tmp_path / "content.png", tmp_path / "style.png", "--quiet"]
    base += ["--preset", "nnst", "--size", 64, "--scale-iterations", "1,1,1,3"]
    r = subprocess.run([*map(str, base), "-o", str(tmp_path / "a.png"), "--alpha", "0.5", "--no-colour-correction"])
    assert r.returncode == 0 and read_image(tmp_path / "a.png").shape == (48, 64, 3)
    r = subprocess.run([*map(str, base), "-o", str(tmp_path / "b.png"), "--alpha", "7"], capture_output=True, text=True)
    assert r.returncode == 2 and "--alpha 7.0 is out of range" in r.stderr and len(r.stderr.splitlines()) == 1
