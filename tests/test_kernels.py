"""Every numba kernel against a plain numpy reference."""

from __future__ import annotations

import numpy as np
import pytest

from nst import kernels


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def test_gram_matches_numpy(rng):
    f = rng.normal(size=(16, 50)).astype(np.float32)
    np.testing.assert_allclose(kernels.gram(f), f.astype(np.float64) @ f.T.astype(np.float64), rtol=1e-5, atol=1e-4)


def test_gram_of_a_small_fixed_matrix():
    a = np.array([[1, -2, 3], [0.5, 4, 2], [2, 1, 0]], np.float32)
    np.testing.assert_allclose(kernels.gram(a), a @ a.T, rtol=1e-6)


def _style_reference(f, t, norm, scale):
    f64 = f.astype(np.float64)
    diff = f64 @ f64.T / norm - t
    return scale * np.sum(diff**2), 4 * scale / norm * diff @ f64


def test_style_loss_and_grad_match_numpy(rng):
    f = np.maximum(rng.normal(size=(8, 30)), 0).astype(np.float32)
    t = rng.normal(size=(8, 8)).astype(np.float32)
    t = (t + t.T) / 2
    loss, grad = kernels.style_loss_grad(f, t, 30.0, 0.7)
    want_loss, want_grad = _style_reference(f, t, 30.0, 0.7)
    assert loss == pytest.approx(want_loss, rel=1e-5)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-4, atol=1e-5)


def test_gram_loss_of_parts_matches_the_whole(rng):
    # tiles: the Grams of column blocks sum to the whole Gram, and D F_part is the part of the gradient
    f = np.maximum(rng.normal(size=(8, 40)), 0).astype(np.float32)
    t = rng.normal(size=(8, 8)).astype(np.float32)
    t = (t + t.T) / 2
    parts = [f[:, :15], f[:, 15:]]
    g = sum(kernels.gram(np.ascontiguousarray(p)) for p in parts)
    loss, d = kernels.gram_loss(g, t, 40.0, 0.7)
    want_loss, want_grad = _style_reference(f, t, 40.0, 0.7)
    assert loss == pytest.approx(want_loss, rel=1e-5)
    grad = np.concatenate([d @ p for p in parts], axis=1)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-4, atol=1e-5)
    diff = f.astype(np.float64) @ f.T / 40.0 - t
    np.testing.assert_allclose(d, 4 * 0.7 / 40.0 * diff, rtol=1e-4, atol=1e-6)


def test_style_grad_is_the_derivative(rng):
    f = rng.normal(size=(5, 12))
    t = rng.normal(size=(5, 5))
    t = (t + t.T) / 2
    _, grad = _style_reference(f, t, 12.0, 0.3)
    d = rng.normal(size=f.shape)
    eps = 1e-6
    numeric = (_style_reference(f + eps * d, t, 12.0, 0.3)[0] - _style_reference(f - eps * d, t, 12.0, 0.3)[0]) / (
        2 * eps
    )
    assert numeric == pytest.approx(np.sum(grad * d), rel=1e-6)


def test_content_loss_and_grad_match_numpy(rng):
    f = rng.normal(size=1000).astype(np.float32)
    p = rng.normal(size=1000).astype(np.float32)
    loss, grad = kernels.content_loss_grad(f, p, 0.25)
    d = f.astype(np.float64) - p
    assert loss == pytest.approx(0.25 * np.sum(d * d), rel=1e-6)
    np.testing.assert_allclose(grad, 0.5 * d, rtol=1e-6, atol=1e-7)


def _tv_reference(x, w):
    dx = np.diff(x.astype(np.float64), axis=2)
    dy = np.diff(x.astype(np.float64), axis=1)
    loss = 0.5 * w * (np.sum(dx**2) + np.sum(dy**2))
    g = np.zeros(x.shape)
    g[:, :, :-1] -= dx
    g[:, :, 1:] += dx
    g[:, :-1, :] -= dy
    g[:, 1:, :] += dy
    return loss, w * g


@pytest.mark.parametrize("shape", [(3, 7, 9), (3, 1, 5), (1, 4, 1)])
def test_tv_matches_numpy(rng, shape):
    x = rng.uniform(0, 255, shape).astype(np.float32)
    loss, grad = kernels.tv_loss_grad(x, 1e-3)
    want_loss, want_grad = _tv_reference(x, 1e-3)
    assert loss == pytest.approx(want_loss, rel=1e-6)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-4, atol=1e-6)
    d = rng.normal(size=shape)
    eps = 1e-3
    numeric = (_tv_reference(x + eps * d, 1e-3)[0] - _tv_reference(x - eps * d, 1e-3)[0]) / (2 * eps)
    assert numeric == pytest.approx(np.sum(want_grad * d), rel=1e-6)


def _adam_reference(x, grads, lr, b1=0.9, b2=0.999, eps=1e-8, low=-np.inf, high=np.inf):
    """TensorFlow's Adam: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t); x -= lr_t m / (sqrt(v) + eps)."""
    x = x.astype(np.float64).copy()
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        x = np.clip(x - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps), low, high)
    return x


@pytest.mark.parametrize("bounds", [(-np.inf, np.inf), (0.0, 255.0)])
def test_adam_matches_numpy(rng, bounds):
    x = rng.uniform(0, 255, 500).astype(np.float32)
    grads = [rng.normal(size=500).astype(np.float32) * 10 for _ in range(5)]
    got = x.copy()
    m = np.zeros_like(got)
    v = np.zeros_like(got)
    for t, g in enumerate(grads, start=1):
        kernels.adam_step(got, g, m, v, t, 2.0, 0.9, 0.999, 1e-8, *bounds)
    np.testing.assert_allclose(got, _adam_reference(x, grads, 2.0, low=bounds[0], high=bounds[1]), rtol=1e-5, atol=1e-3)
    if bounds[0] == 0.0:
        assert got.min() >= 0.0 and got.max() <= 255.0


def test_first_adam_step_moves_every_pixel_by_lr(rng):
    x = np.zeros(10, np.float32)
    g = rng.normal(size=10).astype(np.float32)
    kernels.adam_step(
        x, g, np.zeros(10, np.float32), np.zeros(10, np.float32), 1, 2.0, 0.9, 0.999, 1e-8, -np.inf, np.inf
    )
    np.testing.assert_allclose(x, -2.0 * np.sign(g), rtol=1e-3)


@pytest.mark.parametrize("dtype,scale", [(np.uint8, 1.0), (np.uint16, 255 / 65535), (np.float32, 1.0)])
def test_hwc_to_nchw_matches_numpy(rng, dtype, scale):
    top = 255 if dtype != np.uint16 else 65535
    img = rng.integers(0, top + 1, (5, 7, 3)).astype(dtype)
    got = kernels.hwc_to_nchw(img, scale)
    want = img.astype(np.float64).transpose(2, 0, 1)[None] * scale
    assert got.dtype == np.float32 and got.shape == (1, 3, 5, 7)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_nchw_to_hwc_uint8_rounds_and_clips():
    x = np.array([-5.0, 0.49, 0.5, 1.5, 254.6, 300.0], np.float32).reshape(1, 1, 1, 6).repeat(3, axis=1)
    got = kernels.nchw_to_hwc_uint8(x)
    want = np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)[0].transpose(1, 2, 0)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got[0, :, 0], [0, 0, 1, 2, 255, 255])


def test_nchw_to_hwc_float_roundtrip(rng):
    img = rng.uniform(0, 255, (4, 6, 3)).astype(np.float32)
    np.testing.assert_array_equal(kernels.nchw_to_hwc_float(kernels.hwc_to_nchw(img, 1.0)), img)


def _two_loop_reference(gp, pairs):
    """Nocedal & Wright's two-loop recursion in float64 on the free pixels (gp != 0): -H gp for the (s, y)
    pairs (oldest first) restricted to them, pairs without positive curvature left out, H0 from the newest."""
    free = gp != 0
    pairs = [(s * free, y * free) for s, y in pairs]
    pairs = [(s, y) for s, y in pairs if s @ y > 0]
    q = -gp.astype(np.float64)
    alphas = []
    for s, y in reversed(pairs):
        a = (s @ q) / (s @ y)
        q -= a * y
        alphas.append(a)
    if pairs:
        q *= (pairs[-1][0] @ pairs[-1][1]) / (pairs[-1][1] @ pairs[-1][1])
    for (s, y), a in zip(pairs, reversed(alphas)):
        q += s * (a - (y @ q) / (s @ y))
    return q


def test_lbfgs_direction_matches_the_two_loop_recursion(rng):
    n, m = 300, 4
    S = rng.normal(size=(m + 1, n)).astype(np.float32)
    Y = (S + 0.3 * rng.normal(size=(m + 1, n))).astype(np.float32)  # positive curvature s.y > 0
    Y[0] = -S[0]  # ... except this pair, which must be left out
    order = np.array([2, 0, 4, 1], np.int64)  # a ring buffer's slots, oldest first; slot 3 is the spare
    gp = rng.normal(size=n).astype(np.float32)
    gp[::7] = 0  # pixels held on a bound
    d = np.empty(n, np.float32)
    gd = kernels.lbfgs_direction(gp, S, Y, order, d)
    want = _two_loop_reference(gp, [(S[k].astype(np.float64), Y[k].astype(np.float64)) for k in order])
    np.testing.assert_allclose(d, want, rtol=1e-4, atol=1e-5)
    assert gd == pytest.approx(float(gp.astype(np.float64) @ want), rel=1e-5)
    assert gd < 0 and np.all(d[::7] == 0)


def test_lbfgs_direction_without_memory_is_steepest_descent(rng):
    gp = rng.normal(size=50).astype(np.float32)
    d = np.empty(50, np.float32)
    kernels.lbfgs_direction(gp, np.zeros((1, 50), np.float32), np.zeros((1, 50), np.float32), np.zeros(0, np.int64), d)
    np.testing.assert_allclose(d, -gp, rtol=1e-6)


def test_projected_gradient_and_step_respect_the_box(rng):
    x = rng.uniform(0, 255, 400).astype(np.float32)
    x[:100], x[100:200] = 0.0, 255.0
    g = rng.normal(size=400).astype(np.float32)
    gp = np.empty_like(g)
    biggest = kernels.projected_gradient(x, g, 0.0, 255.0, gp)
    held = ((x <= 0) & (g > 0)) | ((x >= 255) & (g < 0))
    np.testing.assert_array_equal(gp, np.where(held, 0, g))
    assert biggest == pytest.approx(np.abs(np.where(held, 0, g)).max())
    d = rng.normal(size=400).astype(np.float32) * 100
    out = np.empty_like(x)
    kernels.projected_step(x, d, 0.5, 0.0, 255.0, out)
    np.testing.assert_allclose(out, np.clip(x + 0.5 * d, 0, 255), rtol=1e-6)


def test_store_step_writes_differences_and_their_products(rng):
    x, x_new, g, g_new = (rng.normal(size=200).astype(np.float32) for _ in range(4))
    s, y = np.empty(200, np.float32), np.empty(200, np.float32)
    sy, yy, sg = kernels.store_step(x_new, x, g_new, g, s, y)
    np.testing.assert_allclose(s, x_new - x, rtol=1e-6)
    np.testing.assert_allclose(y, g_new - g, rtol=1e-6)
    s64, y64 = (x_new - x).astype(np.float64), (g_new - g).astype(np.float64)
    assert (sy, yy, sg) == pytest.approx((s64 @ y64, y64 @ y64, s64 @ g.astype(np.float64)), rel=1e-5)
