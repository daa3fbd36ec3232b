"""nst engine: neural style transfer on ONNX Runtime.

    from nst import StyleTransfer
    st = StyleTransfer(device="cpu")
    rgb = st.transfer("content.jpg", ["style.jpg"], size=512, iterations=300)

The names below load on first use, so `import nst.engine.errors` (what the CLI needs to start) does not
pull in numba, numpy's kernels or onnxruntime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "NstError": "errors",
    "Losses": "objective",
    "Objective": "objective",
    "Options": "presets",
    "PRESETS": "presets",
    "MetricsWriter": "progress",
    "Progress": "progress",
    "SaveEvery": "progress",
    "StyleTransfer": "transfer",
}
__all__ = [
    "NstError",
    "Losses",
    "Objective",
    "Options",
    "PRESETS",
    "MetricsWriter",
    "Progress",
    "SaveEvery",
    "StyleTransfer",
]

if TYPE_CHECKING:  # what editors and type checkers see; at run time __getattr__ loads each on first use
    from .errors import NstError
    from .objective import Losses, Objective
    from .presets import PRESETS, Options
    from .progress import MetricsWriter, Progress, SaveEvery
    from .transfer import StyleTransfer


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    elif name == "SeedReport":  # its home before 0.3; it is an application of the engine, nst.seedreport
        value = importlib.import_module("nst.seedreport").SeedReport
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
