"""The neural-neighbour matching of a block of positions as one ONNX graph of standard operators.

Inputs: `rows` (B, C), a block of B hypercolumns, one per row; `centre` (1, C), the style features' mean;
`style` (S, C), every style hypercolumn centred and scaled to unit length. Outputs: `index` (B,) int64, the
nearest style row of each position under centred cosine distance, and `distance` (B,), that distance. Only
the (B, S) block of the distance matrix ever exists: the host loops over blocks of positions
(nst.engine.neighbours), and the bundle's hosts can do the same.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from .onnxbuild import Builder, make_model

INPUTS = ("rows", "centre", "style")
OUTPUTS = ("index", "distance")
TINY = 1e-8  # a position whose centred feature is (nearly) zero has no direction: its norm is held here


def build_matching() -> onnx.ModelProto:
    """The matching graph: Gemm, ArgMax and ReduceMax over one block of positions."""
    b = Builder()
    centred = b.op("Sub", ["rows", "centre"], "centred")  # (B, C)
    # Each style row has unit length, so the largest dot product is the smallest cosine distance.
    scores = b.op("Gemm", [centred, "style"], "scores", transB=1)  # (B, S)
    b.op("ArgMax", [scores], "index", output="index", axis=1, keepdims=0)
    best = b.op("ReduceMax", [scores], "best", axes=[1], keepdims=0)
    norm = b.op("ReduceL2", [centred], "norm", axes=[1], keepdims=0)
    norm = b.op("Max", [norm, b.const(np.array(TINY, np.float32), "tiny")], "norm_held")
    cosine = b.op("Div", [best, norm], "cosine")
    b.op("Sub", [b.const(np.array(1.0, np.float32), "one"), cosine], "distance", output="distance")
    inputs = [
        helper.make_tensor_value_info("rows", TensorProto.FLOAT, ["B", "C"]),
        helper.make_tensor_value_info("centre", TensorProto.FLOAT, [1, "C"]),
        helper.make_tensor_value_info("style", TensorProto.FLOAT, ["S", "C"]),
    ]
    outputs = [
        helper.make_tensor_value_info("index", TensorProto.INT64, ["B"]),
        helper.make_tensor_value_info("distance", TensorProto.FLOAT, ["B"]),
    ]
    return make_model(b, inputs, outputs, "nst_neighbour_matching")
