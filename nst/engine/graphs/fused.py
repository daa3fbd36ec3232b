"""The fused objective graph: image and precomputed targets in, content loss, style loss and
d loss / d image out, in one ONNX graph (Gram matrices as MatMul inside it), so nothing leaves the device
during an iteration but two scalars and the gradient.

Per-layer normalisations are graph inputs (scalars), so one graph serves every preset and size:
    content:  scale * sum((A - P)^2)               gradient 2 scale (A - P)
    style:    k * sum((F F^T / n - T)^2)           gradient (4 k / n) (F F^T / n - T) F,   F = A as (C, HW)
    w2 style: k * W2^2 between the features' Gaussian and the style's (nst.kernels.wasserstein), k = weight / tr(S),
              its matrix square root by Newton-Schulz iterations (the host path takes an eigendecomposition)
    nn style: weight / P * sum over positions of the centred cosine distance to the matched style hypercolumn
              (graphs.hypercolumns; the bundle's, the engine computes it on the host in blocks)
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from .hypercolumns import emit_neighbour_term
from .network import emit_backward, emit_forward
from .onnxbuild import Builder, make_model, tensor_info
from .vgg import VggSpec


def _scalar(name: str) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [])


def content_inputs(layer: str) -> tuple[str, str]:
    return f"content_target_{layer}", f"content_scale_{layer}"


def style_inputs(layer: str) -> tuple[str, str, str]:
    return f"gram_target_{layer}", f"gram_norm_{layer}", f"style_scale_{layer}"


def nn_inputs() -> tuple[str, str, str, str]:
    """The nn style term's inputs: the style columns (C, S), their centre (C, 1), each position's match (P,)
    and the style weight (graphs.hypercolumns.emit_neighbour_term)."""
    return "nn_style", "nn_centre", "nn_index", "nn_weight"


def _nn_info(channels: int) -> list[onnx.ValueInfoProto]:
    style, centre, index, weight = nn_inputs()
    return [
        helper.make_tensor_value_info(style, TensorProto.FLOAT, [channels, "S"]),
        helper.make_tensor_value_info(centre, TensorProto.FLOAT, [channels, 1]),
        helper.make_tensor_value_info(index, TensorProto.INT64, ["P"]),
        _scalar(weight),
    ]


def w2_inputs(layer: str) -> tuple[str, str, str, str, str]:
    """The w2 style term's inputs: the style's mean (C), its covariance (C, C), that covariance's trace, the
    eps added to the result's covariance, and k = weight / that trace."""
    return (f"w2_mean_{layer}", f"w2_cov_{layer}", f"w2_trace_{layer}", f"w2_eps_{layer}", f"style_scale_{layer}")


NS_ITERATIONS = 18  # coupled Newton-Schulz steps for (S S_t)^(1/2) and its inverse; the host uses eigh


def newton_schulz(b: Builder, x: str, eye: str) -> tuple[str, str]:
    """X^(1/2) and X^(-1/2) of a (C, C) matrix with real positive eigenvalues (a product of two symmetric
    positive definite ones) by the coupled Newton-Schulz iteration on X / |X|_F (standard operators only:
    ONNX has no eigendecomposition)."""
    norm = b.op("Sqrt", [b.op("ReduceSum", [b.op("Mul", [x, x], "xx")], "xx_sum", keepdims=0)], "x_norm")
    y, z = b.op("Div", [x, norm], "y0"), eye
    half, three = b.const(np.array(0.5, np.float32), "half"), b.const(np.array(3.0, np.float32), "three")
    three_eye = b.op("Mul", [eye, three], "three_eye")
    for _ in range(NS_ITERATIONS):
        t = b.op("Mul", [b.op("Sub", [three_eye, b.op("MatMul", [z, y], "zy")], "t3"), half], "t")
        y, z = b.op("MatMul", [y, t], "y"), b.op("MatMul", [t, z], "z")
    root_norm = b.op("Sqrt", [norm], "root_norm")
    return b.op("Mul", [y, root_norm], "x_root"), b.op("Div", [z, root_norm], "x_inv_root")


def _w2_term(b: Builder, layer: str, channels: int, flat: str) -> tuple[str, str, list[onnx.ValueInfoProto]]:
    """k W2^2 of the features' Gaussian against the style's (nst.kernels.wasserstein), its gradient as
    (C, M) and the term's graph inputs."""
    mean_t, cov_t, trace_t, eps, k = w2_inputs(layer)
    infos = [
        helper.make_tensor_value_info(mean_t, TensorProto.FLOAT, [channels, 1]),
        helper.make_tensor_value_info(cov_t, TensorProto.FLOAT, [channels, channels]),
        _scalar(trace_t),
        _scalar(eps),
        _scalar(k),
    ]
    eye = b.const(np.eye(channels, dtype=np.float32), "eye")
    positions = b.op("Cast", [b.op("Shape", [flat], "m", start=1, end=2)], "m_f", to=TensorProto.FLOAT)
    mean = b.op("ReduceMean", [flat], "mean", axes=[1], keepdims=1)
    centred = b.op("Sub", [flat, mean], "fc")
    srm = b.op("MatMul", [centred, b.op("Transpose", [centred], "fct", perm=[1, 0])], "fcfc")
    cov = b.op("Add", [b.op("Div", [srm, positions], "cov0"), b.op("Mul", [eye, eps], "eps_eye")], "cov")
    # In units of the style's mean variance s = tr(S_t) / C: every matrix below is then of order 1, where
    # the raw features' products (up to 1e13 at relu4_1) leave float32 little room on any backend.
    unit = b.op("Div", [trace_t, b.const(np.array(channels, np.float32), "channels")], "unit")
    style = b.op("Div", [cov_t, unit], "style_u")
    # S S_t has the eigenvalues of A S A (A = S_t^(1/2)), so tr((S S_t)^(1/2)) is the W2 cross term and
    # S_t (S S_t)^(-1/2) = A (A S A)^(-1/2) A its transport map: one iteration and no A, which the bundle
    # would otherwise take from the blended moments at every step (the host path uses A, by eigh).
    product = b.op("MatMul", [b.op("Div", [cov, unit], "cov_u"), style], "st")
    cross_root, cross_inv_root = newton_schulz(b, product, eye)  # (S S_t)^(1/2) / s, s (S S_t)^(-1/2)

    def trace(m: str) -> str:
        diagonal = b.op("Mul", [m, eye], "diag")
        return b.op("Cast", [b.op("ReduceSum", [diagonal], "tr", keepdims=0)], "tr64", to=TensorProto.DOUBLE)

    diff = b.op("Sub", [mean, mean_t], "mdiff")
    mean_term = b.op(
        "ReduceSum", [b.op("Cast", [b.op("Mul", [diff, diff], "dd")], "dd64", to=TensorProto.DOUBLE)], "md", keepdims=0
    )
    two = b.const(np.array(2, np.float64), "two64")
    w2 = b.op(
        "Add",
        [mean_term, b.op("Add", [trace(cov), b.op("Cast", [trace_t], "trt64", to=TensorProto.DOUBLE)], "trs")],
        "w2a",
    )
    unit64 = b.op("Cast", [unit], "unit64", to=TensorProto.DOUBLE)
    w2 = b.op("Sub", [w2, b.op("Mul", [b.op("Mul", [two, unit64], "two_s"), trace(cross_root)], "tr2")], "w2")
    loss = b.op("Mul", [w2, b.op("Cast", [k], "k64", to=TensorProto.DOUBLE)], "w2_loss")
    skewed = b.op("MatMul", [style, cross_inv_root], "tz")  # symmetric up to rounding: made so
    half32 = b.const(np.array(0.5, np.float32), "half32")
    both = b.op("Add", [skewed, b.op("Transpose", [skewed], "tzt", perm=[1, 0])], "tz2")
    transport = b.op("Mul", [both, half32], "aza")
    d_cov = b.op("Mul", [b.op("Sub", [eye, transport], "i_aza"), k], "d_cov")
    two32 = b.const(np.array(2, np.float32), "two32")
    per_position = b.op("Div", [two32, positions], "two_m")
    grad = b.op("MatMul", [b.op("Mul", [d_cov, per_position], "dcov_m"), centred], "dcf")
    offset = b.op("Mul", [diff, b.op("Mul", [k, per_position], "k2m")], "offset")
    return loss, b.op("Add", [grad, offset], "w2_grad"), infos


def _sum(b: Builder, terms: list[str], hint: str) -> str:
    return terms[0] if len(terms) == 1 else b.op("Sum", terms, hint)


def _sum_of_squares(b: Builder, diff: str, scale: str) -> str:
    """scale * sum(diff^2), accumulated in float64: the losses reach 1e12 and optimizers compare them."""
    wide = b.op("Cast", [diff], "diff64", to=TensorProto.DOUBLE)
    total = b.op("ReduceSum", [b.op("Mul", [wide, wide], "sq64")], "sum64", keepdims=0)
    return b.op("Mul", [total, b.op("Cast", [scale], "scale64", to=TensorProto.DOUBLE)], "loss64")


def build_fused(
    spec: VggSpec,
    content_layers: list[str],
    style_layers: list[str],
    pooling: str,
    padding: str = "zero",
    style_loss: str = "gram",
    style_weights: dict[str, float] | None = None,
) -> onnx.ModelProto:
    """One graph for loss and gradient; inputs: image, the targets and the per-layer scalars (for the nn loss,
    `style_weights` give each layer's share of the hypercolumn)."""
    loss_layers = spec.in_order([*content_layers, *style_layers])
    layers = spec.truncated(spec.deepest(loss_layers))
    b = Builder()
    emit_forward(b, spec, layers, pooling, padding)
    # Only the constants some term reads: ONNX Runtime warns about unused initializers.
    two = b.const(np.array(2, np.float32), "two") if content_layers else ""
    four = b.const(np.array(4, np.float32), "four") if style_loss == "gram" and style_layers else ""
    grads: dict[str, list[str]] = {name: [] for name in loss_layers}
    content_terms, style_terms, inputs = [], [], []
    for layer in content_layers:
        target, scale = content_inputs(layer)
        inputs += [tensor_info(target), _scalar(scale)]
        diff = b.op("Sub", [layer, target], "cdiff")
        content_terms.append(_sum_of_squares(b, diff, scale))
        grads[layer].append(b.op("Mul", [diff, b.op("Mul", [scale, two], "c2")], "cgrad"))
    if style_loss == "nn":
        shares = {layer: (style_weights or {}).get(layer, 1.0) for layer in style_layers}
        widths = {layer: spec.channels(layer) for layer in style_layers}
        loss, layer_grads = emit_neighbour_term(b, "image", shares, widths, nn_inputs())
        inputs += _nn_info(sum(widths.values()))
        style_terms.append(loss)
        for layer, g in layer_grads.items():
            grads[layer].append(g)
    for layer in style_layers if style_loss != "nn" else []:
        channels = spec.channels(layer)
        if style_loss == "w2":
            flat = b.op("Reshape", [layer, b.const(np.array([channels, -1], np.int64), "chw")], "F")
            loss, d_flat, infos = _w2_term(b, layer, channels, flat)
            inputs += infos
            style_terms.append(loss)
            grads[layer].append(b.op("Reshape", [d_flat, b.op("Shape", [layer], "ashape")], "sgrad"))
            continue
        target, norm, scale = style_inputs(layer)
        inputs += [
            helper.make_tensor_value_info(target, TensorProto.FLOAT, [channels, channels]),
            _scalar(norm),
            _scalar(scale),
        ]
        flat = b.op("Reshape", [layer, b.const(np.array([channels, -1], np.int64), "chw")], "F")
        gram = b.op("MatMul", [flat, b.op("Transpose", [flat], "Ft", perm=[1, 0])], "G")
        diff = b.op("Sub", [b.op("Div", [gram, norm], "Gn"), target], "sdiff")
        style_terms.append(_sum_of_squares(b, diff, scale))
        factor = b.op("Div", [b.op("Mul", [scale, four], "k4"), norm], "k4n")
        d_flat = b.op("Mul", [b.op("MatMul", [diff, flat], "DF"), factor], "dF")
        grads[layer].append(b.op("Reshape", [d_flat, b.op("Shape", [layer], "ashape")], "sgrad"))
    for output, terms in (("content_loss", content_terms), ("style_loss", style_terms)):
        total = _sum(b, terms, output) if terms else b.const(np.array(0, np.float64), "zero_loss")
        b.op("Identity", [total], output, output)
    emit_backward(b, layers, pooling, {name: _sum(b, terms, "gsum") for name, terms in grads.items()}, padding)
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "H", "W"])
    outputs = [
        helper.make_tensor_value_info("content_loss", TensorProto.DOUBLE, []),
        helper.make_tensor_value_info("style_loss", TensorProto.DOUBLE, []),
        helper.make_tensor_value_info("grad_image", TensorProto.FLOAT, [1, 3, None, None]),
    ]
    return make_model(b, [image] + inputs, outputs, "nst_fused")
