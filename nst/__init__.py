"""nst: neural style transfer on ONNX Runtime (Gatys et al.), no PyTorch or TensorFlow at run time.

    from nst import StyleTransfer
    st = StyleTransfer(device="cpu")
    rgb = st.transfer("content.jpg", ["style.jpg"], size=512)

Layers, each importing only those below it: `nst.cli` (the `nst` command), then the applications `nst.serve`,
`nst.video`, `nst.distributed` (Ray), `nst.batch`, `nst.bundle` (`nst export`), `nst.bench` and `nst.seedreport`;
then `nst.engine` (the API and its core, the ONNX graphs in `nst.engine.graphs`), `nst.kernels` (numba) and
`nst.models` (the VGG-19 graph). The names below load on first use, so `import nst` stays cheap.
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import PackageNotFoundError, version

# Recent onnxruntime builds otherwise keep a device id under ~/.cache and send usage events; setting the variable
# to 0 before importing nst allows them. onnxruntime reads it once, when it is first imported.
if not os.environ.get("ORT_DISABLE_TELEMETRY"):
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"

try:
    __version__ = version("nst")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

_EXPORTS = (
    "NstError",
    "Losses",
    "Objective",
    "Options",
    "PRESETS",
    "MetricsWriter",
    "Progress",
    "SaveEvery",
    "SeedReport",
    "StyleTransfer",
)
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module("nst.seedreport" if name == "SeedReport" else "nst.engine"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
