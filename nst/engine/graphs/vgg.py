"""Read the exported feature graph into a plain layer list that the graph builders work from."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import NstError

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models" / "vgg19_features.onnx"


@dataclass(frozen=True)
class Layer:
    """One step of the network: a 3x3 convolution (with weights), a ReLU, or a 2x2 pooling."""

    kind: str  # "conv" | "relu" | "pool"
    name: str
    weight: np.ndarray | None = None  # (Cout, Cin, 3, 3) as stored (float16 in the bundled model), conv only
    bias: np.ndarray | None = None

    def conv(self) -> tuple[np.ndarray, np.ndarray]:
        """A conv layer's (weight, bias); ReLU and pooling layers have none."""
        if self.weight is None or self.bias is None:
            raise ValueError(f"{self.name} is a {self.kind} layer: it has no weights")
        return self.weight, self.bias


@dataclass(frozen=True)
class VggSpec:
    """The network as the exporter wrote it: input mean and the ordered layers."""

    mean: np.ndarray  # (1, 3, 1, 1) float32, RGB
    layers: tuple[Layer, ...]
    metadata: dict[str, str] = field(default_factory=dict)
    sha256: str = ""
    path: str = ""

    @property
    def relu_names(self) -> list[str]:
        return [layer.name for layer in self.layers if layer.kind == "relu"]

    def channels(self, relu: str) -> int:
        """Number of channels of a ReLU activation."""
        channels = 0
        for layer in self.layers:
            if layer.kind == "conv":
                channels = int(layer.conv()[0].shape[0])
            if layer.name == relu:
                return channels
        raise KeyError(relu)

    def in_order(self, layers) -> list[str]:
        """Loss layer names, each once, in network order."""
        return sorted(set(layers), key=self.relu_names.index)

    def deepest(self, layers) -> str:
        """The deepest of the given loss layers: how far the network must run."""
        return max(layers, key=self.relu_names.index)

    def truncated(self, last_relu: str) -> tuple[Layer, ...]:
        """Layers up to and including `last_relu`."""
        for i, layer in enumerate(self.layers):
            if layer.name == last_relu:
                return self.layers[: i + 1]
        raise KeyError(last_relu)


def pooled_size(h: int, w: int, stride: int, pooling: str) -> tuple[int, int]:
    """(h, w) of an activation `stride` pixels per position: 2x2 max pooling floors odd sizes, TensorFlow
    SAME average pooling rounds them up."""
    if pooling == "max":
        return h // stride, w // stride
    return -(-h // stride), -(-w // stride)


def model_path() -> Path:
    """The feature model: $NST_MODEL if set, else the bundled file."""
    return Path(os.environ.get("NST_MODEL", DEFAULT_MODEL))


@lru_cache(maxsize=4)
def load_spec(path: str | None = None) -> VggSpec:
    """Parse the feature graph (Sub mean -> [Conv, Relu, MaxPool]*) into a VggSpec.  Weights stay as stored
    (float16: 26 MB less held for the life of a StyleTransfer); the graphs upcast them to float32."""
    import onnx
    from onnx import numpy_helper

    p = Path(path) if path else model_path()
    if not p.is_file():
        raise NstError(
            f"model file {p} not found; reinstall nst or set NST_MODEL to the exported "
            "vgg19_features.onnx (python -m nst.models.export_vgg writes it)"
        )
    data = p.read_bytes()
    try:
        model = onnx.load_from_string(data)
    except Exception as exc:  # protobuf raises several types
        raise NstError(f"model file {p} is not a readable ONNX model ({exc}); re-export it") from None
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    alias: dict[str, str] = {}
    mean = None
    layers: list[Layer] = []
    for node in model.graph.node:
        op = node.op_type
        if op == "Cast":
            alias[node.output[0]] = node.input[0]
        elif op == "Sub":
            mean = inits[node.input[1]].astype(np.float32).reshape(1, 3, 1, 1)
        elif op == "Conv":
            weight = inits[alias.get(node.input[1], node.input[1])]
            bias = inits[alias.get(node.input[2], node.input[2])]
            layers.append(Layer("conv", node.output[0], weight, bias))
        elif op == "Relu":
            layers.append(Layer("relu", node.output[0]))
        elif op in ("MaxPool", "AveragePool"):
            layers.append(Layer("pool", node.output[0]))
        else:
            raise NstError(
                f"model file {p} has an unexpected {op} node; re-export it with python -m nst.models.export_vgg"
            )
    if mean is None or not layers:
        raise NstError(f"model file {p} is not an nst feature graph; re-export it with python -m nst.models.export_vgg")
    meta = {e.key: e.value for e in model.metadata_props}
    return VggSpec(mean, tuple(layers), meta, hashlib.sha256(data).hexdigest(), str(p))
