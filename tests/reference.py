"""Plain numpy references for the network pieces and a tiny random VggSpec to test graphs on."""

from __future__ import annotations

import numpy as np

from nst.engine.graphs.vgg import Layer, VggSpec


def tiny_spec(seed: int = 0) -> VggSpec:
    """conv(3->4) relu conv(4->4) relu pool conv(4->6) relu pool conv(6->5) relu: VGG's shape, small."""
    rng = np.random.default_rng(seed)
    layers = []
    plan = [(3, 4, "1_1"), (4, 4, "1_2"), None, (4, 6, "2_1"), None, (6, 5, "3_1")]
    pools = 0
    for step in plan:
        if step is None:
            pools += 1
            layers.append(Layer("pool", f"pool{pools}"))
            continue
        cin, cout, tag = step
        w = rng.normal(0, np.sqrt(2.0 / (9 * cin)), (cout, cin, 3, 3)).astype(np.float32)
        b = rng.normal(0, 0.05, cout).astype(np.float32)
        layers += [Layer("conv", f"conv{tag}", w, b), Layer("relu", f"relu{tag}")]
    mean = np.array([0.5, 0.4, 0.3], np.float32).reshape(1, 3, 1, 1)
    return VggSpec(mean, tuple(layers))


def conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """3x3, stride 1, pad 1 cross-correlation, NCHW, float64."""
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, w.shape[0], h, wd))
    for i in range(3):
        for j in range(3):
            out += np.einsum("nchw,oc->nohw", xp[:, :, i : i + h, j : j + wd], w[:, :, i, j])
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out


def conv_adjoint(g: np.ndarray, w: np.ndarray) -> np.ndarray:
    """d/dx of <g, conv(x, w)>: scatter each output gradient back through the kernel."""
    n, o, h, wd = g.shape
    out = np.zeros((n, w.shape[1], h + 2, wd + 2))
    for i in range(3):
        for j in range(3):
            out[:, :, i : i + h, j : j + wd] += np.einsum("nohw,oc->nchw", g, w[:, :, i, j])
    return out[:, :, 1:-1, 1:-1]


def max_pool(x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    h2, w2 = h // 2, w // 2
    return x[:, :, : 2 * h2, : 2 * w2].reshape(n, c, h2, 2, w2, 2).max(axis=(3, 5))


def max_pool_adjoint(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    h2, w2 = g.shape[2:]
    out = np.zeros_like(x, dtype=np.float64)
    blocks = x[:, :, : 2 * h2, : 2 * w2].reshape(n, c, h2, 2, w2, 2)
    mask = blocks == blocks.max(axis=(3, 5), keepdims=True)
    out[:, :, : 2 * h2, : 2 * w2] = (mask * g[:, :, :, None, :, None]).reshape(n, c, 2 * h2, 2 * w2)
    return out


def avg_pool_same(x: np.ndarray) -> np.ndarray:
    """TensorFlow SAME 2x2/2 average pooling: odd sizes round up, padded cells not counted."""
    n, c, h, w = x.shape
    h2, w2 = -(-h // 2), -(-w // 2)
    out = np.zeros((n, c, h2, w2))
    for i in range(h2):
        for j in range(w2):
            out[:, :, i, j] = x[:, :, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].mean(axis=(2, 3))
    return out


def avg_pool_same_adjoint(g: np.ndarray, x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    out = np.zeros(x.shape)
    for i in range(g.shape[2]):
        for j in range(g.shape[3]):
            cell = out[:, :, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2]
            cell += g[:, :, i : i + 1, j : j + 1] / (cell.shape[2] * cell.shape[3])
    return out


def forward(spec: VggSpec, image: np.ndarray, pooling: str) -> dict[str, np.ndarray]:
    """All ReLU (and pool) outputs of the spec, in float64."""
    x = image.astype(np.float64) - spec.mean
    saved = {}
    for layer in spec.layers:
        if layer.kind == "conv":
            x = conv(x, layer.weight.astype(np.float64), layer.bias.astype(np.float64))
        elif layer.kind == "relu":
            x = np.maximum(x, 0)
        else:
            x = max_pool(x) if pooling == "max" else avg_pool_same(x)
        saved[layer.name] = x
    return saved


def backward(spec: VggSpec, saved: dict[str, np.ndarray], grads: dict[str, np.ndarray], pooling: str) -> np.ndarray:
    """d/d image of sum_l <grads[l], relu_l> through the reference network."""
    layers = spec.layers
    last = max(grads, key=lambda n: [layer.name for layer in layers].index(n))
    upto = [layer.name for layer in layers].index(last)
    g = None
    for i in range(upto, -1, -1):
        layer = layers[i]
        if layer.kind == "relu":
            if layer.name in grads:
                g = grads[layer.name].astype(np.float64) if g is None else g + grads[layer.name]
            g = g * (saved[layer.name] > 0)
        elif layer.kind == "conv":
            g = conv_adjoint(g, layer.weight.astype(np.float64))
        else:
            x = saved[layers[i - 1].name]
            g = max_pool_adjoint(g, x) if pooling == "max" else avg_pool_same_adjoint(g, x)
    return g


def check_gradient(objective, x: np.ndarray, seed: int = 0, eps: float = 0.1, rel: float = 5e-3) -> None:
    """The objective's image gradient against a central difference along a direction half along the gradient
    (so the difference stands well above the float32 noise of a large loss) and half random (so every
    component counts)."""
    import pytest

    x = x.astype(np.float64)
    _, grad = objective.loss_and_grad(x.astype(np.float32))
    r = np.random.default_rng(seed).normal(size=x.shape)
    d = grad / np.linalg.norm(grad) + r / np.linalg.norm(r)
    d /= np.linalg.norm(d)
    plus, _ = objective.loss_and_grad((x + eps * d).astype(np.float32))
    minus, _ = objective.loss_and_grad((x - eps * d).astype(np.float32))
    numeric, analytic = (plus - minus) / (2 * eps), float(np.sum(grad * d))
    assert numeric == pytest.approx(analytic, rel=rel), (numeric, analytic)
