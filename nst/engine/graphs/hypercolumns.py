"""The neural-neighbour (nn) loss's hypercolumns and loss as ONNX graph pieces of standard operators, for the
bundle (nst.bundle), whose hosts cannot differentiate: the same arithmetic as nst.engine.neighbours.

Each layer's activations A (1, C_l, h_l, w_l) are resized to the (h // 4, w // 4) grid of the image by
R A Cᵀ, with R and C the align_corners interpolation matrices built inside the graph from the shapes (ONNX's
Resize has no adjoint here); the adjoint is Rᵀ G C, two more MatMuls. Positions are numbered grid row by
grid row, as the engine numbers them.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from .matching import TINY
from .onnxbuild import Builder, make_model

GRID = 4  # image pixels per hypercolumn position along each side (the authors' quarter size)


def _int(b: Builder, value: int, hint: str) -> str:
    return b.const(np.array(value, np.int64), hint)


def _double(b: Builder, value: float, hint: str) -> str:
    return b.const(np.array(value, np.float64), hint)


def _size(b: Builder, x: str, axis: int) -> str:
    """Dimension `axis` of tensor `x` as an int64 scalar."""
    return b.op("Squeeze", [b.op("Shape", [x], "dim", start=axis, end=axis + 1)], "n")


def interpolation(b: Builder, n_out: str, n_in: str) -> str:
    """(n_out, n_in) float32 weights of 1-D linear interpolation with align_corners (the engine's
    linear_weights(n_out, n_in, True)) from two int64 scalars: max(0, 1 - |j - i (n_in - 1) / (n_out - 1)|),
    in float64 as the engine computes its fractions."""
    one = _double(b, 1.0, "one")
    out64, in64 = (b.op("Cast", [n], "n64", to=TensorProto.DOUBLE) for n in (n_out, n_in))
    ratio = b.op(
        "Div", [b.op("Sub", [in64, one], "in1"), b.op("Max", [b.op("Sub", [out64, one], "o1"), one], "o1")], "r"
    )
    zero = _double(b, 0.0, "zero")
    src = b.op("Mul", [b.op("Range", [zero, out64, one], "i"), ratio], "src")
    j = b.op("Range", [zero, in64, one], "j")
    gap = b.op(
        "Sub", [b.op("Unsqueeze", [j, _int1(b, 0)], "j_row"), b.op("Unsqueeze", [src, _int1(b, 1)], "src_col")], "gap"
    )
    weights = b.op("Relu", [b.op("Sub", [one, b.op("Abs", [gap], "dist")], "tent")], "w64")
    return b.op("Cast", [weights], "interp", to=TensorProto.FLOAT)


def _int1(b: Builder, value: int) -> str:
    return b.const(np.array([value], np.int64), "axis")


def grid(b: Builder, image: str) -> tuple[str, str]:
    """(gh, gw) int64 scalars: the image's height and width divided by GRID, at least 1."""
    one, four = _int(b, 1, "one"), _int(b, GRID, "grid")
    gh, gw = (b.op("Max", [b.op("Div", [_size(b, image, axis), four], "g"), one], "g1") for axis in (2, 3))
    return gh, gw


class Resizers:
    """Per layer, the (gh, h_l) row and (gw, w_l) column interpolation matrices onto the image's grid."""

    def __init__(self, b: Builder, image: str, layers: list[str]) -> None:
        self.gh, self.gw = grid(b, image)
        self.rows = {layer: interpolation(b, self.gh, _size(b, layer, 2)) for layer in layers}
        self.cols = {layer: interpolation(b, self.gw, _size(b, layer, 3)) for layer in layers}

    def forward(self, b: Builder, layer: str, scale: float) -> str:
        """(1, C_l, gh, gw): R A Cᵀ times `scale`."""
        cols_t = b.op("Transpose", [self.cols[layer]], "ct", perm=[1, 0])
        part = b.op("MatMul", [b.op("MatMul", [self.rows[layer], layer], "ra"), cols_t], "rac")
        return b.op("Mul", [part, b.const(np.array(scale, np.float32), "share")], "hc")

    def adjoint(self, b: Builder, layer: str, g: str, scale: float) -> str:
        """(1, C_l, h_l, w_l): Rᵀ G C times `scale` for a gradient G (1, C_l, gh, gw)."""
        rows_t = b.op("Transpose", [self.rows[layer]], "rt", perm=[1, 0])
        g = b.op("Mul", [g, b.const(np.array(scale, np.float32), "share")], "gs")
        return b.op("MatMul", [b.op("MatMul", [rows_t, g], "rg"), self.cols[layer]], "rgc")


def emit_columns(b: Builder, image: str, layers: dict[str, float], channels: dict[str, int]) -> tuple[str, Resizers]:
    """(C, P) hypercolumns of the activations named by `layers` (ReLU tensors already in `b`): each layer
    times its weight over its channel count, resized, stacked over channels in the dict's order."""
    resizers = Resizers(b, image, list(layers))
    parts = []
    for layer, weight in layers.items():
        part = resizers.forward(b, layer, weight / channels[layer])
        parts.append(b.op("Reshape", [part, b.const(np.array([channels[layer], -1], np.int64), "cp")], "flat"))
    return _concat(b, parts), resizers


def _concat(b: Builder, parts: list[str], most: int = 4) -> str:
    """Concat along axis 0 in groups of at most `most` inputs: ONNX Runtime's WebGPU Concat of the ten layers
    gave zeros, four at a time is right (WebGPU allows a shader 8 storage buffers by default)."""
    while len(parts) > 1:
        groups = [parts[k : k + most] for k in range(0, len(parts), most)]
        parts = [g[0] if len(g) == 1 else b.op("Concat", g, "columns", axis=0) for g in groups]
    return parts[0]


def emit_neighbour_term(
    b: Builder, image: str, layers: dict[str, float], channels: dict[str, int], inputs: tuple[str, str, str, str]
) -> tuple[str, dict[str, str]]:
    """The nn loss weight / P * Σ_p (1 - cos(f_p - centre, style[index_p])) as float64 and its gradient
    with respect to each layer's activations (nst.engine.neighbours.neighbour_loss_grad through the resizing).
    `inputs`: the style rows (S, C, centred, unit), their centre (1, C), the index (P,) and the weight."""
    style, centre, index, weight = inputs
    columns, resizers = emit_columns(b, image, layers, channels)
    # Positions as rows, as the engine and the matching hold them; the gradient turns back to (C, P) below.
    f = b.op("Sub", [b.op("Transpose", [columns], "rows", perm=[1, 0]), centre], "f")
    norm = b.op(
        "Max", [b.op("ReduceL2", [f], "norm", axes=[1], keepdims=1), b.const(np.array(TINY, np.float32), "tiny")], "nh"
    )
    targets = b.op("Gather", [style, index], "targets", axis=0)
    dot = b.op("ReduceSum", [b.op("Mul", [f, targets], "ft"), _int1(b, 1)], "dot", keepdims=1)
    positions = b.op("Cast", [b.op("Mul", [resizers.gh, resizers.gw], "p")], "p64", to=TensorProto.DOUBLE)
    scale = b.op("Div", [b.op("Cast", [weight], "w64", to=TensorProto.DOUBLE), positions], "scale64")
    cosine = b.op(
        "Div",
        [b.op("Cast", [dot], "dot64", to=TensorProto.DOUBLE), b.op("Cast", [norm], "n64", to=TensorProto.DOUBLE)],
        "cos",
    )
    distance = b.op("ReduceSum", [b.op("Sub", [_double(b, 1.0, "one"), cosine], "d")], "dsum", keepdims=0)
    loss = b.op("Mul", [distance, scale], "nn_loss")
    # d/df of scale (1 - f.t / |f|) = -scale / |f| (t - f (f.t) / |f|^2)
    neg = b.op("Neg", [b.op("Cast", [scale], "scale32", to=TensorProto.FLOAT)], "ns")
    along = b.op("Mul", [f, b.op("Div", [dot, b.op("Mul", [norm, norm], "nn")], "dn2")], "fa")
    grad = b.op("Mul", [b.op("Div", [neg, norm], "sn"), b.op("Sub", [targets, along], "tf")], "g")
    grad = b.op("Transpose", [grad], "gc", perm=[1, 0])
    sizes = [channels[layer] for layer in layers]
    pieces = [grad] if len(sizes) == 1 else _split(b, grad, sizes)
    grads = {}
    for (layer, w), piece, c in zip(layers.items(), pieces, sizes):
        shape = b.op(
            "Concat",
            [
                _int1(b, 1),
                _int1(b, c),
                *(b.op("Unsqueeze", [n, _int1(b, 0)], "g1") for n in (resizers.gh, resizers.gw)),
            ],
            "gs",
            axis=0,
        )
        grads[layer] = resizers.adjoint(b, layer, b.op("Reshape", [piece, shape], "g4"), w / c)
    return loss, grads


def _split(b: Builder, x: str, sizes: list[int]) -> list[str]:
    """Rows of `x` in consecutive groups of `sizes` (Slice per group: Split's form changed at opset 18)."""
    pieces, start = [], 0
    for size in sizes:
        ends = [b.const(np.array([v], np.int64), "s") for v in (start, start + size, 0)]
        pieces.append(b.op("Slice", [x, *ends], "rows"))
        start += size
    return pieces


def build_style_columns() -> onnx.ModelProto:
    """columns (S, C), every style position's hypercolumn -> style (S, C) centred by their mean and scaled to
    unit length, and centre (1, C): the engine's neighbours.style_columns after its VGG passes."""
    b = Builder()
    mean = b.op("ReduceMean", [b.op("Cast", ["columns"], "c64", to=TensorProto.DOUBLE)], "mean", axes=[0], keepdims=1)
    b.op("Cast", [mean], "centre", "centre", to=TensorProto.FLOAT)  # (1, C): the engine's float64 mean, narrowed
    centred = b.op("Sub", ["columns", "centre"], "centred")
    norm = b.op(
        "Max",
        [b.op("ReduceL2", [centred], "norm", axes=[1], keepdims=1), b.const(np.array(TINY, np.float32), "tiny")],
        "nh",
    )
    b.op("Div", [centred, norm], "style", "style")
    inputs = [helper.make_tensor_value_info("columns", TensorProto.FLOAT, ["S", "C"])]
    outputs = [
        helper.make_tensor_value_info("style", TensorProto.FLOAT, ["S", "C"]),
        helper.make_tensor_value_info("centre", TensorProto.FLOAT, [1, "C"]),
    ]
    return make_model(b, inputs, outputs, "nst_style_columns")
