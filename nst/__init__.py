"""nst: neural style transfer on ONNX Runtime (Gatys et al.), no PyTorch or TensorFlow at run time.

    from nst import StyleTransfer
    st = StyleTransfer(device="cpu")
    rgb = st.transfer("content.jpg", ["style.jpg"], size=512)

Its parts, in layers that each import only the layers below: `nst.cli` (the `nst` command); the hosts `nst.serve`
(HTTP) and `nst.distributed` (Ray); the applications `nst.video`, `nst.batch`, `nst.bundle` (`nst export`),
`nst.bench` and `nst.seedreport`; `nst.engine` (the API and its core, the ONNX graphs in `nst.engine.graphs`);
`nst.kernels` (numba) and `nst.models` (the VGG-19 graph). The names below load on first use, so `import nst`
stays cheap.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

# Recent onnxruntime builds otherwise keep a device id under ~/.cache and send usage events; setting the variable
# to 0 before importing nst allows them. onnxruntime reads it once, when it is first imported.
if not os.environ.get("ORT_DISABLE_TELEMETRY"):
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"

try:
    __version__ = version("nst")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

from nst import engine  # cheap: the engine's names load on first use

if TYPE_CHECKING:  # what editors and type checkers see; at run time __getattr__ loads each on first use
    from nst.engine import *  # noqa: F403 (the engine's public names, as `__all__` lists them)
    from nst.seedreport import SeedReport

__all__ = ["SeedReport", "__version__"]
__all__ += engine.__all__


def __getattr__(name: str):
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(engine, name)  # the engine loads each on first use (SeedReport too, under its old name there)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
