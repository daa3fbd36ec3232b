"""The fused objective graph: image and precomputed targets in, content loss, style loss and
d loss / d image out, in one ONNX graph (Gram matrices as MatMul inside it), so nothing leaves the device
during an iteration but two scalars and the gradient.

Per-layer normalisations are graph inputs (scalars), so one graph serves every preset and size:
    content:  scale * sum((A - P)^2)               gradient 2 scale (A - P)
    style:    k * sum((F F^T / n - T)^2)           gradient (4 k / n) (F F^T / n - T) F,   F = A as (C, HW)
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from .network import emit_backward, emit_forward
from .onnxbuild import Builder, make_model, tensor_info
from .vgg import VggSpec


def _scalar(name: str) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [])


def content_inputs(layer: str) -> tuple[str, str]:
    return f"content_target_{layer}", f"content_scale_{layer}"


def style_inputs(layer: str) -> tuple[str, str, str]:
    return f"gram_target_{layer}", f"gram_norm_{layer}", f"style_scale_{layer}"


def _sum(b: Builder, terms: list[str], hint: str) -> str:
    return terms[0] if len(terms) == 1 else b.op("Sum", terms, hint)


def _sum_of_squares(b: Builder, diff: str, scale: str) -> str:
    """scale * sum(diff^2), accumulated in float64: the losses reach 1e12 and optimizers compare them."""
    wide = b.op("Cast", [diff], "diff64", to=TensorProto.DOUBLE)
    total = b.op("ReduceSum", [b.op("Mul", [wide, wide], "sq64")], "sum64", keepdims=0)
    return b.op("Mul", [total, b.op("Cast", [scale], "scale64", to=TensorProto.DOUBLE)], "loss64")


def build_fused(spec: VggSpec, content_layers: list[str], style_layers: list[str], pooling: str) -> onnx.ModelProto:
    """One graph for loss and gradient; inputs: image, the targets and the per-layer scalars."""
    loss_layers = spec.in_order([*content_layers, *style_layers])
    layers = spec.truncated(spec.deepest(loss_layers))
    b = Builder()
    emit_forward(b, spec, layers, pooling)
    two = b.const(np.array(2, np.float32), "two")
    four = b.const(np.array(4, np.float32), "four")
    grads: dict[str, list[str]] = {name: [] for name in loss_layers}
    content_terms, style_terms, inputs = [], [], []
    for layer in content_layers:
        target, scale = content_inputs(layer)
        inputs += [tensor_info(target), _scalar(scale)]
        diff = b.op("Sub", [layer, target], "cdiff")
        content_terms.append(_sum_of_squares(b, diff, scale))
        grads[layer].append(b.op("Mul", [diff, b.op("Mul", [scale, two], "c2")], "cgrad"))
    for layer in style_layers:
        target, norm, scale = style_inputs(layer)
        channels = spec.channels(layer)
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
    emit_backward(b, layers, pooling, {name: _sum(b, terms, "gsum") for name, terms in grads.items()})
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "H", "W"])
    outputs = [
        helper.make_tensor_value_info("content_loss", TensorProto.DOUBLE, []),
        helper.make_tensor_value_info("style_loss", TensorProto.DOUBLE, []),
        helper.make_tensor_value_info("grad_image", TensorProto.FLOAT, [1, 3, None, None]),
    ]
    return make_model(b, [image] + inputs, outputs, "nst_fused")
