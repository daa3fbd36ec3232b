"""The Wasserstein-2 style loss against a float64 numpy/scipy reference and finite differences, and its
place in the objective."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from nst.kernels.wasserstein import EPS, W2Target, moments, w2_loss_grad


def reference_w2(features: np.ndarray, style: np.ndarray, scale: float) -> float:
    """scale * W2^2 / tr(S_style) between Gaussians fitted to two feature sets, by scipy's general sqrtm."""
    f, s = features.astype(np.float64), style.astype(np.float64)
    c = f.shape[0]
    eps = EPS * np.trace(np.cov(s, bias=True)) / c
    cov_f = np.cov(f, bias=True) + eps * np.eye(c)
    cov_s = np.cov(s, bias=True) + eps * np.eye(c)
    root = scipy.linalg.sqrtm(cov_s).real
    cross = scipy.linalg.sqrtm(root @ cov_f @ root).real
    w2 = np.sum((f.mean(1) - s.mean(1)) ** 2) + np.trace(cov_f + cov_s - 2 * cross)
    return scale / np.trace(cov_s) * w2


@pytest.fixture
def pair():
    rng = np.random.default_rng(3)
    features = np.maximum(rng.normal(1.0, 2.0, (7, 60)), 0).astype(np.float32)
    style = np.maximum(rng.normal(0.5, 3.0, (7, 90)), 0).astype(np.float32)
    return features, style


def test_value_matches_scipy(pair):
    features, style = pair
    loss, _ = w2_loss_grad(features, W2Target.from_moments(moments(style)), 0.7)
    assert loss == pytest.approx(reference_w2(features, style, 0.7), rel=1e-6)


def test_zero_at_the_style_itself(pair):
    _, style = pair
    loss, grad = w2_loss_grad(style, W2Target.from_moments(moments(style)), 1.0)
    assert abs(loss) < 1e-6 * np.trace(np.cov(style.astype(np.float64)))
    assert np.abs(grad).max() < 1e-5


def test_gradient_matches_finite_differences(pair):
    features, style = pair
    _, grad = w2_loss_grad(features, W2Target.from_moments(moments(style)), 0.7)
    rng = np.random.default_rng(0)
    x = features.astype(np.float64)
    for _ in range(3):
        d = rng.normal(size=x.shape)
        d /= np.linalg.norm(d)
        h = 1e-4
        numeric = (reference_w2(x + h * d, style, 0.7) - reference_w2(x - h * d, style, 0.7)) / (2 * h)
        assert float(np.sum(grad * d)) == pytest.approx(numeric, rel=1e-4, abs=1e-9)


def test_blended_moments_are_the_mixture_of_both_styles(pair):
    features, style = pair
    both = np.concatenate([features, style], axis=1)  # equal weights need equal counts: use column weights
    blended = moments(features) * (60 / 150) + moments(style) * (90 / 150)
    np.testing.assert_allclose(blended, moments(both), rtol=1e-5, atol=1e-5)


def test_objective_gradient_with_w2_matches_finite_differences(st):
    from .conftest import stripes, synthetic
    from .reference import check_gradient

    content, style = synthetic(36, 44, seed=1), stripes(40, 40)
    prepared = st.prepare(content, [style], size=44, init="noise", seed=5, style_loss="w2", style_weight=50.0)
    prepared.objective.loss_and_grad(prepared.x0)
    assert prepared.objective.last.style > 0
    check_gradient(prepared.objective, prepared.x0)


@pytest.mark.parametrize("layers", ["relu1_1,relu2_1,relu3_1,relu4_1,relu5_1", "relu1_1:2,relu3_1"])
def test_fused_graph_w2_matches_the_host(st, layers):
    """The fused graph's Newton-Schulz square roots against the host's eigendecomposition."""
    from .conftest import stripes, synthetic

    content, style = synthetic(40, 48, seed=2), stripes(40, 40)
    x = np.random.default_rng(1).uniform(0, 255, (1, 3, 40, 48)).astype(np.float32)
    options = {"style_loss": "w2", "style_weight": 50.0, "style_layers": layers}
    split = st.objective(content, [style], size=48, path="split", **options)
    fused = st.objective(content, [style], size=48, path="fused", **options)
    loss_s, grad_s = split.loss_and_grad(x)
    loss_f, grad_f = fused.loss_and_grad(x)
    assert fused.last.style == pytest.approx(split.last.style, rel=3e-3)
    assert loss_f == pytest.approx(loss_s, rel=3e-3)
    assert np.linalg.norm(grad_f - grad_s) < 5e-3 * np.linalg.norm(grad_s)


def test_position_weights_fit_the_gaussian_to_the_masked_positions(pair):
    """Weights 0/1 give the W2 of the selected positions alone; its gradient is zero elsewhere."""
    features, style = pair
    target = W2Target.from_moments(moments(style))
    mask = (np.arange(features.shape[1]) % 3 != 0).astype(np.float32)
    loss, grad = w2_loss_grad(features, target, 0.7, mask)
    inside, grad_inside = w2_loss_grad(np.ascontiguousarray(features[:, mask > 0]), target, 0.7)
    assert loss == pytest.approx(inside, rel=1e-6)
    np.testing.assert_allclose(grad[:, mask > 0], grad_inside, rtol=1e-4, atol=1e-7)
    assert not grad[:, mask == 0].any()


def test_masked_objective_with_w2_matches_finite_differences(st):
    from .conftest import stripes, synthetic
    from .reference import check_gradient

    content = synthetic(36, 44, seed=1)
    left = np.zeros((36, 44), np.float32)
    left[:, :20] = 1.0
    prepared = st.prepare(
        content,
        [stripes(40, 40), synthetic(40, 40, seed=4)],
        size=44,
        init="noise",
        seed=5,
        style_loss="w2",
        style_weight=1e5,
        style_masks=[left, 1.0 - left],
    )
    assert type(prepared.objective).__name__ == "MaskedObjective"
    check_gradient(prepared.objective, prepared.x0)
