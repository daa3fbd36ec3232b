"""The neural-neighbour matching of a block of positions as one ONNX graph of standard operators.

Inputs: `features` (C, B), a block of B hypercolumns; `centre` (C, 1), the style features' mean; `style`
(C, S), every style hypercolumn centred and scaled to unit length. Outputs: `index` (B,) int64, the nearest
style column of each position under centred cosine distance; `distance` (B,), that distance; `matched`
(C, B), the chosen (centred, unit) style columns. Only the (B, S) block of the distance matrix ever exists:
the host loops over blocks of positions (nst.engine.neighbours), and the bundle's hosts can do the same.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from .onnxbuild import Builder, make_model

INPUTS = ("features", "centre", "style")
OUTPUTS = ("index", "distance", "matched")
TINY = 1e-8  # a position whose centred feature is (nearly) zero has no direction: its norm is held here


def build_matching() -> onnx.ModelProto:
    """The matching graph: MatMul, ArgMax, ReduceMax and Gather over one block of positions."""
    b = Builder()
    centred = b.op("Sub", ["features", "centre"], "centred")  # (C, B)
    rows = b.op("Transpose", [centred], "rows", perm=[1, 0])  # (B, C)
    # Each style column has unit length, so the largest dot product is the smallest cosine distance.
    scores = b.op("MatMul", [rows, "style"], "scores")  # (B, S)
    b.op("ArgMax", [scores], "index", output="index", axis=1, keepdims=0)
    best = b.op("ReduceMax", [scores], "best", axes=[1], keepdims=0)
    norm = b.op("ReduceL2", [centred], "norm", axes=[0], keepdims=0)
    norm = b.op("Max", [norm, b.const(np.array(TINY, np.float32), "tiny")], "norm_held")
    cosine = b.op("Div", [best, norm], "cosine")
    b.op("Sub", [b.const(np.array(1.0, np.float32), "one"), cosine], "distance", output="distance")
    b.op("Gather", ["style", "index"], "matched", output="matched", axis=1)
    inputs = [
        helper.make_tensor_value_info("features", TensorProto.FLOAT, ["C", "B"]),
        helper.make_tensor_value_info("centre", TensorProto.FLOAT, ["C", 1]),
        helper.make_tensor_value_info("style", TensorProto.FLOAT, ["C", "S"]),
    ]
    outputs = [
        helper.make_tensor_value_info("index", TensorProto.INT64, ["B"]),
        helper.make_tensor_value_info("distance", TensorProto.FLOAT, ["B"]),
        helper.make_tensor_value_info("matched", TensorProto.FLOAT, ["C", "B"]),
    ]
    return make_model(b, inputs, outputs, "nst_neighbour_matching")
