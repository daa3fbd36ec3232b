"""Facts about this installation for `nst info` and bug reports."""

from __future__ import annotations

import os
from pathlib import Path

from nst import kernels


def numba_cache_state() -> str:
    """How many compiled kernel signatures numba has cached on disk, and where."""
    folder = Path(os.environ.get("NUMBA_CACHE_DIR") or Path(kernels.__file__).parent / "__pycache__")
    index = sorted(folder.glob("*.nbi")) if folder.is_dir() else []
    compiled = sorted(folder.glob("*.nbc")) if folder.is_dir() else []
    if not index:
        return f"empty ({folder}): the first transfer compiles the kernels (about 10-20 s)"
    return f"{len(index)} kernels, {len(compiled)} compiled signatures in {folder}"


def describe() -> dict[str, str]:
    """Version, model, providers and cache facts as display strings."""
    import numba
    import onnxruntime

    from nst import __version__

    from .runtime import available_providers
    from .vgg import load_spec

    spec = load_spec()
    size = Path(spec.path).stat().st_size
    return {
        "nst": __version__,
        "model": spec.path,
        "model sha256": spec.sha256,
        "model size": f"{size / 1e6:.1f} MB, weights stored as {spec.metadata.get('weight_storage', '?')}",
        "weights source": f"{spec.metadata.get('source_package', '?')} "
        f"(sha256 {spec.metadata.get('source_sha256', '?')[:16]}...)",
        "weights licence": spec.metadata.get("license", "?"),
        "onnxruntime": onnxruntime.__version__,
        "providers": ", ".join(available_providers()),
        "numba": f"{numba.__version__}, {numba.get_num_threads()} threads",
        "numba cache": numba_cache_state(),
    }
