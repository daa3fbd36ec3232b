"""The small ONNX graph-building kit every nst graph is written with: unique names, constants, nodes, models.

Shared by the feature and gradient graphs (graphs.py), the fused objective (fused.py), the Adam step graph
(stepgraph.py) and anything else that emits standard ai.onnx operators.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


class Builder:
    """Accumulates nodes and initializers with unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._count = 0

    def fresh(self, hint: str) -> str:
        """A name not used before in this graph."""
        self._count += 1
        return f"{hint}__{self._count}"

    def const(self, value: np.ndarray, hint: str) -> str:
        """An initializer holding `value`; returns its name."""
        name = self.fresh(hint)
        self.inits.append(numpy_helper.from_array(np.array(value, order="C"), name))  # keeps 0-d scalars 0-d
        return name

    def op(self, op_type: str, inputs: list[str], hint: str, output: str | None = None, **attrs) -> str:
        """Append one node; returns its output's name."""
        out = output or self.fresh(hint)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=self.fresh(op_type), **attrs))
        return out


def tensor_info(name: str, channels: int | str | None = None) -> onnx.ValueInfoProto:
    """A float32 (N, C, H, W) graph input or output with dynamic batch and spatial sizes."""
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", channels, None, None])


def make_model(b: Builder, inputs: list, outputs: list, name: str) -> onnx.ModelProto:
    """The builder's nodes as a standard ai.onnx model at OPSET."""
    graph = helper.make_graph(b.nodes, name, inputs, outputs, b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="nst")
    model.ir_version = 8
    return model
