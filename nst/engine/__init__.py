"""nst engine: neural style transfer on ONNX Runtime.

    from nst import StyleTransfer
    st = StyleTransfer(device="cpu")
    rgb = st.transfer("content.jpg", ["style.jpg"], size=512, iterations=300)

The names below load on first use, so `import nst.engine.errors` (what the CLI needs to start) does not
pull in numba, numpy's kernels or onnxruntime.
"""

from __future__ import annotations

import importlib

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
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
