"""The derived graphs: standard operators only, forward against numpy, gradients against the numpy
adjoints and against finite differences, for both poolings and odd sizes."""

from __future__ import annotations

import numpy as np
import pytest

from nst.engine.graphs.network import build_graphs
from nst.engine.runtime import GraphRunner, resolve_device

from . import reference as ref

ALLOWED = {
    "Sub",
    "Conv",
    "Relu",
    "MaxPool",
    "AveragePool",
    "Greater",
    "Cast",
    "Mul",
    "Add",
    "Resize",
    "Shape",
    "Slice",
    "Equal",
    "Concat",
    "Pad",
    "ConstantOfShape",
    "Div",
    "MatMul",
    "Transpose",
    "Reshape",
    "ReduceSum",
    "Sum",
    "Identity",
}
CASES = [("max", (12, 16)), ("max", (13, 11)), ("avg", (12, 16)), ("avg", (13, 11)), ("avg", (7, 9))]
LAYER_SETS = [["relu1_1", "relu2_1", "relu3_1"], ["relu2_1"], ["relu1_2", "relu3_1"]]


def _runner(spec, layers, pooling):
    return GraphRunner(build_graphs(spec, layers, pooling), resolve_device("cpu"), threads=1)


def _assert_standard(model):
    for node in model.graph.node:
        assert node.domain in ("", "ai.onnx"), f"{node.op_type} is in domain {node.domain}"
        assert node.op_type in ALLOWED, node.op_type
    assert all(op.domain in ("", "ai.onnx") for op in model.opset_import)
    assert max(op.version for op in model.opset_import) >= 17


@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_graphs_use_standard_operators_only(pooling):
    from nst.engine.graphs.vgg import load_spec

    spec = load_spec()
    pair = build_graphs(spec, ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"], pooling)
    from nst.engine.graphs.fused import build_fused

    fused = build_fused(spec, ["relu4_2"], ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"], pooling)
    for model in (pair.forward, pair.backward, fused):
        _assert_standard(model)
        assert not any(op.op_type.endswith("Grad") for op in model.graph.node)


@pytest.mark.parametrize("pooling,hw", CASES)
@pytest.mark.parametrize("layers", LAYER_SETS)
def test_forward_and_backward_match_numpy(pooling, hw, layers):
    spec = ref.tiny_spec()
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (1, 3, *hw)).astype(np.float32)
    runner = _runner(spec, layers, pooling)
    acts = runner.forward(x)
    saved = ref.forward(spec, x, pooling)
    for name in layers:
        np.testing.assert_allclose(acts[name], saved[name], rtol=1e-4, atol=1e-5)
    grads = {name: rng.normal(size=acts[name].shape).astype(np.float32) for name in layers}
    got = runner.backward(grads)
    want = ref.backward(spec, saved, grads, pooling)
    assert got.shape == x.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("pooling,hw", CASES)
def test_gradient_matches_finite_differences(pooling, hw):
    spec = ref.tiny_spec(seed=3)
    layers = ["relu1_1", "relu2_1", "relu3_1"]
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, (1, 3, *hw)).astype(np.float64)
    runner = _runner(spec, layers, pooling)
    acts = runner.forward(x.astype(np.float32))
    weights = {n: rng.normal(size=acts[n].shape) for n in layers}

    def loss(image):
        a = runner.forward(image.astype(np.float32))
        return sum(float(np.sum(weights[n] * a[n])) for n in layers)

    runner.forward(x.astype(np.float32))
    grad = runner.backward({n: weights[n].astype(np.float32) for n in layers})
    for trial in range(3):
        d = rng.normal(size=x.shape)
        eps = 1e-4  # small enough that few ReLU or max-pool switches are crossed
        numeric = (loss(x + eps * d) - loss(x - eps * d)) / (2 * eps)
        analytic = float(np.sum(grad * d))
        assert abs(numeric - analytic) <= 1e-2 * max(1.0, abs(analytic)), (trial, numeric, analytic)


def test_avg_pool_is_tensorflow_same():
    """3x5 -> 2x3: odd sizes round up and padded cells are left out of the mean."""
    spec = ref.tiny_spec()
    pool_model = build_graphs(spec, ["relu2_1"], "avg").forward
    assert any(
        n.op_type == "AveragePool" and any(a.name == "count_include_pad" and a.i == 0 for a in n.attribute)
        for n in pool_model.graph.node
    )
    x = np.arange(15, dtype=np.float64).reshape(1, 1, 3, 5)
    want = np.array([[[[3.0, 5.0, 6.5], [10.5, 12.5, 14.0]]]])
    np.testing.assert_allclose(ref.avg_pool_same(x), want)


def test_backward_needs_forward_first():
    runner = _runner(ref.tiny_spec(), ["relu1_1"], "max")
    with pytest.raises(RuntimeError):
        runner.backward({"relu1_1": np.zeros((1, 4, 4, 4), np.float32)})
