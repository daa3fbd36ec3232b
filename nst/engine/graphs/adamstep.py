"""The Adam step as an ONNX graph, so a fused-path Adam run keeps the image, its gradient and the moments
on the device: per iteration only three scalars (content, style and tv loss) cross to the host.

It adds the total-variation term to the network's gradient and takes the step exactly as
`kernels.adam_step` and `kernels.tv_loss_grad` do on the host (tests compare them):
    tv      = w/2 (sum dx^2 + sum dy^2),   d tv / d x = w (pad_before(d) - pad_after(d)) along each axis
    m' = b1 m + (1 - b1) g,   v' = b2 v + (1 - b2) g^2,   x' = clip(x - lr_t m' / (sqrt(v') + eps), low, high)
with lr_t the bias-corrected step size, computed on the host per step.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from .onnxbuild import Builder, make_model

SCALARS = ("lr_t", "beta1", "beta2", "eps", "low", "high", "tv_weight")


def _diff(b: Builder, x: str, axis: int) -> str:
    """x[i + 1] - x[i] along `axis` (2: rows, 3: columns)."""
    axes = b.const(np.array([axis], np.int64), "axis")
    one, zero = b.const(np.array([1], np.int64), "one"), b.const(np.array([0], np.int64), "zero")
    end, last = b.const(np.array([2**62], np.int64), "end"), b.const(np.array([-1], np.int64), "last")
    ahead = b.op("Slice", [x, one, end, axes], "ahead")
    behind = b.op("Slice", [x, zero, last, axes], "behind")
    return b.op("Sub", [ahead, behind], "d")


def _pad(b: Builder, d: str, axis: int, before: bool) -> str:
    """d with one zero row or column before (or after) it along `axis`: back to the image's size."""
    pads = np.zeros(8, np.int64)
    pads[axis if before else axis + 4] = 1
    return b.op("Pad", [d, b.const(pads, "pads")], "padded")


def _tv(b: Builder, x: str, weight: str) -> tuple[str, str]:
    """(tv loss as float64, its gradient) for image x."""
    sums, grads = [], []
    for axis in (2, 3):
        d = _diff(b, x, axis)
        wide = b.op("Cast", [d], "d64", to=TensorProto.DOUBLE)
        sums.append(b.op("ReduceSum", [b.op("Mul", [wide, wide], "dd")], "ss", keepdims=0))
        grads.append(b.op("Sub", [_pad(b, d, axis, True), _pad(b, d, axis, False)], "tvg"))
    half = b.op(
        "Mul", [b.op("Cast", [weight], "w64", to=TensorProto.DOUBLE), b.const(np.array(0.5, np.float64), "half")], "hw"
    )
    loss = b.op("Mul", [b.op("Add", sums, "sum"), half], "tv_loss", "tv_loss")
    return loss, b.op("Mul", [b.op("Add", grads, "tvsum"), weight], "tv_grad")


def build_adam_step() -> onnx.ModelProto:
    """Inputs x, grad (the network's), m, v and the SCALARS; outputs x_next, m_next, v_next, tv_loss."""
    b = Builder()
    one = b.const(np.array(1, np.float32), "one_f")
    _, tv_grad = _tv(b, "x", "tv_weight")
    g = b.op("Add", ["grad", tv_grad], "g")
    m = b.op(
        "Add",
        [b.op("Mul", ["beta1", "m"], "b1m"), b.op("Mul", [b.op("Sub", [one, "beta1"], "c1"), g], "c1g")],
        "m_next",
        "m_next",
    )
    v = b.op(
        "Add",
        [
            b.op("Mul", ["beta2", "v"], "b2v"),
            b.op("Mul", [b.op("Sub", [one, "beta2"], "c2"), b.op("Mul", [g, g], "gg")], "c2gg"),
        ],
        "v_next",
        "v_next",
    )
    step = b.op("Div", [b.op("Mul", ["lr_t", m], "lm"), b.op("Add", [b.op("Sqrt", [v], "sv"), "eps"], "den")], "st")
    b.op("Clip", [b.op("Sub", ["x", step], "moved"), "low", "high"], "x_next", "x_next")
    image = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 3, "H", "W"])
    scalar = lambda name, kind=TensorProto.FLOAT: helper.make_tensor_value_info(name, kind, [])
    inputs = [image(n) for n in ("x", "grad", "m", "v")] + [scalar(n) for n in SCALARS]
    outputs = [image(n) for n in ("x_next", "m_next", "v_next")] + [scalar("tv_loss", TensorProto.DOUBLE)]
    return make_model(b, inputs, outputs, "nst_adam_step")
