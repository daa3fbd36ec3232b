"""The full objective on the real VGG-19: gradient against finite differences for both conventions,
the presets' formulas, and the seed preset's Iteration 0 against the assignment."""

from __future__ import annotations

import io

import numpy as np
import pytest

from nst.engine.errors import NstError
from nst.engine.presets import CONVENTIONS, parse_layers, resolve_options
from nst.seedreport import SeedReport

from .conftest import stripes, synthetic
from .reference import check_gradient


@pytest.mark.parametrize("path", ["split", "fused"])
@pytest.mark.parametrize(
    "preset,extra",
    [
        ("johnson", {}),
        ("johnson", {"pooling": "avg", "tv_weight": 0.1, "style_layers": "relu1_1:1,relu3_1:0.5"}),
        ("seed", {"tv_weight": 0.01}),
    ],
)
def test_full_gradient_matches_finite_differences(st, preset, extra, path):
    content, style = synthetic(36, 44, seed=1), stripes(40, 40)
    prepared = st.prepare(content, [style], preset=preset, size=44, init="noise", seed=5, path=path, **extra)
    loss, grad = prepared.objective.loss_and_grad(prepared.x0)
    assert grad.shape == prepared.x0.shape and np.isfinite(loss)
    for seed in range(2):
        check_gradient(prepared.objective, prepared.x0, seed)


@pytest.mark.parametrize(
    "layers",
    [
        {},
        {"content_layers": "", "style_layers": "relu1_1,relu2_1:0.5"},
        {"style_layers": "", "content_layers": "relu2_1,relu4_2:2"},
        {"style_layers": "relu4_2,relu1_1", "content_layers": "relu4_2"},
    ],
)
def test_fused_path_equals_split_path(st, layers):
    content, style = synthetic(40, 48, seed=2), stripes(40, 40)
    x = np.random.default_rng(1).uniform(0, 255, (1, 3, 40, 48)).astype(np.float32)
    split = st.objective(content, [style], size=48, path="split", style_loss="gram", **layers)
    fused = st.objective(content, [style], size=48, path="fused", style_loss="gram", **layers)
    loss_s, grad_s = split.loss_and_grad(x)
    loss_f, grad_f = fused.loss_and_grad(x)
    assert loss_f == pytest.approx(loss_s, rel=1e-4)
    assert fused.last.content == pytest.approx(split.last.content, rel=1e-4, abs=1e-6)
    assert fused.last.style == pytest.approx(split.last.style, rel=1e-4, abs=1e-6)
    np.testing.assert_allclose(grad_f, grad_s, rtol=2e-3, atol=1e-4 * np.abs(grad_s).max())


def test_losses_add_up_and_zero_at_the_target(st):
    content = synthetic(40, 40)
    obj = st.objective(content, [content], preset="johnson", size=40, tv_weight=0.0, path="fused")
    from nst.kernels import hwc_to_nchw

    loss, grad = obj.loss_and_grad(hwc_to_nchw(content, 1.0))
    assert loss == pytest.approx(0.0, abs=1e-3 * max(1.0, obj.last.style))
    assert obj.last.total == pytest.approx(obj.last.content + obj.last.style + obj.last.tv)


def test_conventions_follow_their_formulas():
    johnson, seed = CONVENTIONS["johnson"], CONVENTIONS["seed"]
    c, h, w = 64, 10, 20
    assert johnson.content_scale(5.0, c, h, w) == pytest.approx(5.0 / (c * h * w))  # weight x MSE
    assert seed.content_scale(10.0, c, h, w) == pytest.approx(10.0 / (4 * c * h * w))  # 1/(4 nH nW nC)
    # style: k * sum((G/n - T)^2) must equal weight/(4 C^2 (HW)^2) sum (G_S - G_G)^2 for the seed
    g_s, g_g = np.random.default_rng(0).normal(size=(2, c, c))
    n = seed.gram_divisor(c, h, w)
    got = seed.style_scale(40.0, c) * np.sum((g_g / n - g_s / n) ** 2)
    assert got == pytest.approx(40.0 / (4 * c * c * (h * w) ** 2) * np.sum((g_s - g_g) ** 2))
    # johnson: weight x mean over C^2 of ((G_G - G_S) / CHW)^2
    n = johnson.gram_divisor(c, h, w)
    got = johnson.style_scale(100.0, c) * np.sum((g_g / n - g_s / n) ** 2)
    assert got == pytest.approx(100.0 * np.mean(((g_g - g_s) / (c * h * w)) ** 2))


def test_presets_defaults():
    j = resolve_options("johnson")
    assert (j.content_weight, j.style_weight, j.tv_weight, j.optimizer, j.iterations, j.pooling, j.init, j.size) == (
        5.0,
        100.0,
        1e-3,
        "lbfgsb",
        1000,
        "max",
        "content",
        512,
    )
    s = resolve_options("seed")
    assert (s.content_weight, s.style_weight, s.optimizer, s.lr, s.iterations, s.pooling, s.size) == (
        10.0,
        40.0,
        "adam",
        2.0,
        200,
        "avg",
        400,
    )
    assert s.style_layers == {f"relu{i}_1": 0.2 for i in range(1, 6)} and s.content_layers == {"relu4_2": 1.0}
    n = resolve_options()
    assert (
        n.preset == "nst"
        and n.scales == 3
        and n.history == 40
        and n.optimizer == "lbfgs"
        and (n.content_weight, n.style_loss) == (4.0, "w2")
        and "relu5_1" not in n.style_layers  # its features are the painting's objects: it copied them
    )
    with pytest.raises(NstError, match="unknown preset"):
        resolve_options("picasso")


def test_parse_layers():
    assert parse_layers("relu1_1:1,relu2_1:0.5, relu3_1") == {"relu1_1": 1.0, "relu2_1": 0.5, "relu3_1": 1.0}
    with pytest.raises(NstError, match="NAME:WEIGHT"):
        parse_layers("relu1_1:heavy")


def test_seed_preset_reproduces_the_assignment_iteration_0(st, shared_images, tmp_path):
    """Expected (shared/seed): total 5.05035e+09, content 7877.67, style 1.26257e+08; within 3%."""
    out = io.StringIO()
    opts = st.options("seed")
    report = SeedReport(opts.content_weight, opts.style_weight, tmp_path / "output", stream=out)
    st.transfer(
        str(shared_images / "louvre_small.jpg"),
        [str(shared_images / "monet.jpg")],
        preset="seed",
        iterations=2,
        callback=report,
    )
    line = out.getvalue().strip().splitlines()[0]
    assert line.startswith("Iteration 0 : total cost = ")
    values = [float(v) for v in line.replace("=", " ").split()[5::3]]
    total, content, style = values
    assert total == pytest.approx(5.05035e9, rel=0.03)
    assert content == pytest.approx(7877.67, rel=0.03)
    assert style == pytest.approx(1.26257e8, rel=0.03)
    assert (tmp_path / "output" / "0.png").is_file()


@pytest.mark.parametrize("path", ["split", "fused"])
def test_replicate_padding_gradient_matches_finite_differences(st, path):
    content, style = synthetic(36, 44, seed=1), stripes(40, 40)
    prepared = st.prepare(
        content, [style], size=44, init="noise", seed=5, path=path, padding="replicate", style_loss="gram"
    )
    check_gradient(prepared.objective, prepared.x0)
    x = prepared.x0
    loss, _ = prepared.objective.loss_and_grad(x)
    zero = st.objective(content, [style], size=44, init="noise", seed=5, path=path, style_loss="gram")
    assert zero.loss_and_grad(x)[0] != pytest.approx(loss, rel=1e-6)


def test_edge_fold_is_the_adjoint_of_edge_padding():
    """<pad(x), g> = <x, fold(g)> for the graph's fold, against numpy's edge padding."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from nst.engine.graphs.network import _fold_edges
    from nst.engine.graphs.onnxbuild import Builder, make_model

    b = Builder()
    _fold_edges(b, "g", "out")
    info = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, None, None]) for n in ("g", "out")]
    session = ort.InferenceSession(make_model(b, info[:1], info[1:], "fold").SerializeToString())
    rng = np.random.default_rng(2)
    g = rng.normal(size=(1, 3, 9, 12)).astype(np.float32)
    x = rng.normal(size=(1, 3, 7, 10))
    folded = session.run(None, {"g": g})[0]
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    assert folded.shape == x.shape
    assert float(np.sum(padded * g)) == pytest.approx(float(np.sum(x * folded)), rel=1e-5)
