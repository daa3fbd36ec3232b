"""Build the forward-feature and input-gradient ONNX graphs from a VggSpec, in standard ai.onnx operators.

The forward graph returns the activations the losses read plus what the backward graph needs (ReLU
outputs for their masks, pooled outputs for the max-pool adjoint).  The backward graph takes those saved
tensors and d loss / d activation for the loss layers and returns d loss / d image, so nothing of the
forward pass is recomputed.  Convolution adjoints are Conv with the flipped, transposed kernel (ONNX
Runtime's CPU provider has faster Conv kernels than ConvTranspose ones); the ReLU adjoint is a mask of
the activation's sign; pooling adjoints are nearest upsampling with an equality mask (max) or a
per-window divisor (TensorFlow SAME average pooling).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..choices import POOLINGS
from .onnxbuild import Builder, make_model, tensor_info
from .vgg import Layer, VggSpec


@dataclass(frozen=True)
class GraphPair:
    """The two derived graphs and the names that connect them."""

    forward: onnx.ModelProto
    backward: onnx.ModelProto | None  # None for a features-only pair
    saved: tuple[str, ...]  # forward outputs the backward graph takes as inputs
    loss_layers: tuple[str, ...]  # activations the host losses read (forward outputs, backward grad inputs)


def _pool_forward(b: Builder, x: str, pooling: str, output: str) -> str:
    if pooling == "max":
        return b.op("MaxPool", [x], "pool", output, kernel_shape=[2, 2], strides=[2, 2])
    # TensorFlow SAME: odd sizes round up, padded cells left out of the mean.
    return b.op(
        "AveragePool",
        [x],
        "pool",
        output,
        kernel_shape=[2, 2],
        strides=[2, 2],
        auto_pad="SAME_UPPER",
        count_include_pad=0,
    )


def pool_input_name(layers: tuple[Layer, ...], index: int) -> str:
    """The tensor a pooling layer reads (the ReLU just before it)."""
    return layers[index - 1].name


def emit_forward(
    b: Builder, spec: VggSpec, layers: tuple[Layer, ...], pooling: str, padding: str = "zero"
) -> list[str]:
    """Add the feature layers reading graph input "image"; ReLU and pool tensors take the layer names.
    With `padding` "replicate" the first convolution reads the image with its edge pixels repeated instead
    of zeros (the network was trained with zeros; repeated edges darken the border less).
    Returns the tensors the backward pass reuses."""
    x = b.op("Sub", ["image", b.const(spec.mean, "mean")], "centered")
    saved: list[str] = []
    for index, layer in enumerate(layers):
        if layer.kind == "conv":
            weight, bias = (p.astype(np.float32) for p in layer.conv())
            edge = index == 0 and padding == "replicate"
            if edge:
                x = b.op(
                    "Pad", [x, b.const(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads1")], "edged", mode="edge"
                )
            x = b.op(
                "Conv",
                [x, b.const(weight, layer.name + "_w"), b.const(bias, layer.name + "_b")],
                layer.name,
                kernel_shape=[3, 3],
                pads=[0, 0, 0, 0] if edge else [1, 1, 1, 1],
            )
        elif layer.kind == "relu":
            x = b.op("Relu", [x], layer.name, layer.name)
            saved.append(layer.name)
        else:
            x = _pool_forward(b, x, pooling, layer.name)
            if pooling == "max":
                saved.append(layer.name)
    return saved


def build_forward(
    spec: VggSpec, loss_layers: list[str], pooling: str, for_backward: bool = True, padding: str = "zero"
) -> tuple[onnx.ModelProto, tuple[str, ...]]:
    """Features graph: image -> loss-layer activations and the tensors the backward graph reuses, or with
    `for_backward` off the loss-layer activations only (for targets: ONNX Runtime then frees every other
    activation as soon as the next layer has read it)."""
    b = Builder()
    saved = emit_forward(b, spec, spec.truncated(spec.deepest(loss_layers)), pooling, padding)
    if not for_backward:
        saved = [name for name in spec.relu_names if name in set(loss_layers)]
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])
    return make_model(b, [image], [tensor_info(name) for name in saved], "nst_forward"), tuple(saved)


def _spatial_shape(b: Builder, x: str) -> str:
    return b.op("Shape", [x], "hw", start=2, end=4)


def _upsample2(b: Builder, x: str) -> str:
    scales = b.const(np.array([1, 1, 2, 2], np.float32), "scales")
    return b.op(
        "Resize",
        [x, "", scales],
        "up",
        mode="nearest",
        coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
    )


def _crop_to(b: Builder, x: str, hw: str) -> str:
    """x[..., :H, :W] for an int64 shape tensor hw = [H, W]."""
    starts = b.const(np.zeros(2, np.int64), "zeros2")
    axes = b.const(np.array([2, 3], np.int64), "axes23")
    return b.op("Slice", [x, starts, hw, axes], "crop")


def _pad_to(b: Builder, x: str, hw_from: str, hw_to: str) -> str:
    """Zero-pad the bottom and right of x from spatial size hw_from to hw_to."""
    extra = b.op("Sub", [hw_to, hw_from], "extra")
    pads = b.op("Concat", [b.const(np.zeros(6, np.int64), "zeros6"), extra], "pads", axis=0)
    return b.op("Pad", [x, pads], "padded")


def _where_positive(b: Builder, t: str, a: str, zero: str) -> str:
    """t where activation a > 0, else 0 (Greater + Cast + Mul: elementwise kernels the CPU provider runs
    faster than Where)."""
    positive = b.op("Cast", [b.op("Greater", [a, zero], a + "_positive")], a + "_mask", to=TensorProto.FLOAT)
    return b.op("Mul", [t, positive], a + "_gpre")


def _max_pool_adjoint(b: Builder, g: str, x: str, y: str, zero: str) -> str:
    """Route each pooled gradient to the cell(s) that held the maximum (floor-mode 2x2 pooling), with the
    ReLU before the pool already applied: a routed cell equals its window's maximum, so it is positive
    exactly when the maximum is, and that test runs on the pooled (quarter-size) tensor instead of a
    full-size mask."""
    up_g = _upsample2(b, _where_positive(b, g, y, zero))
    up_y = _upsample2(b, y)
    hw_up = _spatial_shape(b, up_y)
    mask = b.op("Equal", [_crop_to(b, x, hw_up), up_y], "argmax")
    routed = b.op("Mul", [up_g, b.op("Cast", [mask], "argmax_f", to=TensorProto.FLOAT)], "routed")
    return _pad_to(b, routed, hw_up, _spatial_shape(b, x))


def _avg_pool_adjoint(b: Builder, g: str, x: str) -> str:
    """Spread each pooled gradient evenly over the real (unpadded) cells of its SAME-padded window."""
    hw = _spatial_shape(b, x)
    full = b.op("Concat", [b.const(np.ones(2, np.int64), "ones2"), hw], "shape11hw", axis=0)
    ones = b.op("ConstantOfShape", [full], "ones", value=numpy_helper.from_array(np.ones(1, np.float32)))
    share = b.op(
        "AveragePool", [ones], "share", kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_UPPER", count_include_pad=1
    )  # real cells / 4
    per_cell = b.op("Div", [g, b.op("Mul", [share, b.const(np.array(4, np.float32), "four")], "count")], "per")
    return _crop_to(b, _upsample2(b, per_cell), hw)


def _relu_adjoint(b: Builder, relu: str, g: str | None, masked: bool, grad_input: str | None, zero: str) -> str:
    """d loss / d (pre-activation) from the gradient flowing back into a ReLU (None at the deepest layer,
    already masked when a max-pool adjoint applied the mask) plus that layer's own loss gradient."""

    def mask(t: str) -> str:
        return _where_positive(b, t, relu, zero)

    if g is None:
        if grad_input is None:
            raise ValueError(f"{relu}: the backward chain starts at a loss layer, and this one has no gradient")
        return mask(grad_input)
    if not masked:
        return mask(g if grad_input is None else b.op("Add", [g, grad_input], "gsum"))
    return g if grad_input is None else b.op("Add", [g, mask(grad_input)], "gsum")


def _fold_edges(b: Builder, g: str, output: str) -> str:
    """The adjoint of edge padding by one pixel: (H+2, W+2) -> (H, W), each border row and column of the
    padded gradient added onto the image's edge row or column it copied."""
    big = np.iinfo(np.int64).max

    def part(x: str, axis: int, start: int, end: int) -> str:
        consts = [b.const(np.array([v], np.int64), f"s{v}") for v in (start, end, axis)]
        return b.op("Slice", [x, *consts], "edge")

    for axis in (2, 3):
        inner = part(g, axis, 1, -1)
        first = b.op("Add", [part(inner, axis, 0, 1), part(g, axis, 0, 1)], "first")
        last = b.op("Add", [part(inner, axis, -1, big), part(g, axis, -1, big)], "last")
        g = b.op("Concat", [first, part(inner, axis, 1, -1), last], "folded", output if axis == 3 else None, axis=axis)
    return g


def emit_backward(
    b: Builder, layers: tuple[Layer, ...], pooling: str, grad_inputs: dict[str, str], padding: str = "zero"
) -> str:
    """Add the adjoint chain from the deepest layer down to "grad_image"; `grad_inputs` maps ReLU names to
    the tensors holding d loss / d activation.  ReLU and pool tensors are read by their layer names."""
    zero = b.const(np.array(0, np.float32), "zero")
    g: str | None = None
    masked = False  # g already holds the ReLU adjoint (a max-pool adjoint applied it)
    for i in range(len(layers) - 1, -1, -1):
        layer = layers[i]
        if layer.kind == "relu":
            g = _relu_adjoint(b, layer.name, g, masked, grad_inputs.get(layer.name), zero)
            masked = False
        elif g is None:
            raise ValueError(f"{layer.name}: the backward chain must start at a ReLU that has a loss")
        elif layer.kind == "conv":
            adjoint = np.ascontiguousarray(layer.conv()[0].astype(np.float32).transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])
            edge = i == 0 and padding == "replicate"  # the full adjoint onto the padded image, then folded
            out = "grad_image" if i == 0 and not edge else None
            g = b.op(
                "Conv",
                [g, b.const(adjoint, layer.name + "_wT")],
                layer.name + "_gin",
                out,
                kernel_shape=[3, 3],
                pads=[2, 2, 2, 2] if edge else [1, 1, 1, 1],
            )
            if edge:
                g = _fold_edges(b, g, "grad_image")
        elif pooling == "max":
            g, masked = _max_pool_adjoint(b, g, pool_input_name(layers, i), layer.name, zero), True
        else:
            g = _avg_pool_adjoint(b, g, pool_input_name(layers, i))
    if g is None:
        raise ValueError("the backward chain has no layers")
    return g


def build_backward(
    spec: VggSpec, loss_layers: list[str], pooling: str, saved: tuple[str, ...], padding: str = "zero"
) -> onnx.ModelProto:
    """Gradient graph: saved forward tensors + d loss / d (loss-layer activations) -> d loss / d image."""
    b = Builder()
    grad_inputs = {name: f"grad_{name}" for name in loss_layers}
    emit_backward(b, spec.truncated(spec.deepest(loss_layers)), pooling, grad_inputs, padding)
    inputs = [tensor_info(name) for name in saved] + [tensor_info(grad_inputs[name]) for name in loss_layers]
    output = helper.make_tensor_value_info("grad_image", TensorProto.FLOAT, ["N", 3, None, None])
    return make_model(b, inputs, [output], "nst_backward")


def build_graphs(spec: VggSpec, loss_layers: list[str], pooling: str, padding: str = "zero") -> GraphPair:
    """Forward and backward graphs for the given loss layers (ReLU names), pooling and first padding."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, not {pooling!r}")
    ordered = spec.in_order(loss_layers)
    forward, saved = build_forward(spec, ordered, pooling, padding=padding)
    backward = build_backward(spec, ordered, pooling, saved, padding)
    return GraphPair(forward, backward, saved, tuple(ordered))
