"""Every set of choices a transfer offers, defined once.

The engine checks options against these; the CLI builds its choices and help text from them and `nst bench`
its plan, so adding an optimizer, path, pooling, device, init or colour mode means editing this module (plus
the code that implements the new choice).  Presets are defined where they are built, in `presets.PRESETS`.
This module imports nothing heavy: the CLI reads it before it knows which command runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from .errors import NstError


@dataclass(frozen=True)
class Choices:
    """A set of allowed values, each with a few words on what it does; iterates, joins and tests membership
    like a tuple of the values, in the order given."""

    noun: str  # what a value is, for messages
    flag: str  # the CLI flag that sets it
    described: tuple[tuple[str, str], ...]  # (value, what it does)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.described)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __contains__(self, value: object) -> bool:
        return value in self.names

    def __len__(self) -> int:
        return len(self.described)

    def check(self, value: object) -> str:
        """`value` when it is one of the choices, else an NstError that lists them."""
        if value not in self.names:
            raise NstError(f"unknown {self.noun} {value!r} (--{self.flag}); use one of: {', '.join(self.names)}")
        return self.names[self.names.index(value)]  # the name itself, also for a str Enum member equal to it

    def help(self) -> str:
        """'a (what a does), b (what b does) or c (...)' for help texts."""
        parts = [f"{name} ({what})" if what else name for name, what in self.described]
        return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} or {parts[-1]}"


OPTIMIZERS = Choices(
    "optimizer",
    "optimizer",
    (
        ("lbfgs", "nst's bounded L-BFGS"),
        ("lbfgsb", "scipy's L-BFGS-B, the johnson preset's"),
        ("adam", "on the fused path it steps on the device"),
    ),
)

PATHS = Choices(
    "objective path",
    "path",
    (
        ("auto", "the default for the device, or split when the options need it"),
        ("split", "numba losses on the host"),
        ("fused", "one ONNX graph"),
    ),
)
AUTO = "auto"
GRAPH_PATHS = tuple(p for p in PATHS if p != AUTO)  # what a runner holds; what `nst bench` compares
BENCH_PRESET = "johnson"  # the objective `nst bench` times unless told: the classic one (five Gram layers, tv)

POOLINGS = Choices("pooling", "pooling", (("max", "as trained"), ("avg", "TensorFlow SAME")))

DEFAULT_DEVICE = "cpu"
DEVICES = Choices(
    "device", "device", (("cpu", "ONNX Runtime's CPU provider"), ("cuda", "NVIDIA GPUs, with onnxruntime-gpu"))
)
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}  # ONNX Runtime's name per device
# The path `auto` picks per device: fused keeps the losses, Gram matrices and (with Adam) the steps inside
# ONNX Runtime, so nothing but the image and gradient crosses to the host; `nst bench` compares the two.
DEFAULT_PATH = {"cpu": "fused", "cuda": "fused"}

INITS = Choices(
    "first image",
    "init",
    (
        ("content", ""),
        ("noise", "Gaussian, around the network's mean colour"),
        ("random", "uniform pixels"),
        ("noisy-content", "the assignment's"),
    ),
)

PRESERVE = Choices("colour space", "preserve-colors", (("none", ""), ("ycbcr", ""), ("lab", "")))
MATCHING = Choices(
    "colour matching", "match-colors", (("none", ""), ("histogram", ""), ("meancov", "mean and covariance"))
)

STYLE_LOSSES = Choices(
    "style loss",
    "style-loss",
    (
        ("gram", "Gram matrices, as Gatys et al."),
        ("w2", "Wasserstein-2 between Gaussians fitted to the features: means and covariances"),
        ("nn", "each position's hypercolumn towards its nearest style hypercolumn, as NNST"),
    ),
)
PADDINGS = Choices(
    "padding", "padding", (("zero", "as trained"), ("replicate", "edge pixels repeated at the first convolution"))
)

MIN_SIDE = 32  # the smallest side the network's five poolings leave a feature for
MAX_SIDE = 8192  # the largest --size accepted
