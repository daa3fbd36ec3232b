"""Facts about this installation for `nst info` and bug reports."""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path
from typing import Iterable

from nst import kernels


def install(extras: str) -> str:
    """The one install form (README): an editable install of the clone with `extras`; nst is not on PyPI,
    where `pip install "nst[...]"` would fetch another project of that name."""
    return f'pip install -e ".[{extras}]" in the nst clone'


INSTALL_HINT = f'{install("cpu")} (or ".[gpu]" for NVIDIA GPUs)'
REPAIR = f"pip uninstall -y onnxruntime onnxruntime-gpu && {install('gpu')}"
RUNTIMES = ("onnxruntime", "onnxruntime-gpu")


def installed_distributions() -> list[str]:
    """Names of the installed Python distributions, normalised (lower case, '-' for '_' and '.')."""
    names = (dist.metadata["Name"] or "" for dist in metadata.distributions())
    return sorted({name.lower().replace("_", "-").replace(".", "-") for name in names if name})


def onnxruntime_packages(names: Iterable[str] | None = None) -> list[str]:
    """Which of onnxruntime and onnxruntime-gpu are installed (they share the import name `onnxruntime`)."""
    present = set(installed_distributions() if names is None else names)
    return [name for name in RUNTIMES if name in present]


def runtime_problem(names: Iterable[str] | None = None) -> str | None:
    """What is wrong with the installed ONNX Runtime packages, with the repair; None when one is installed."""
    found = onnxruntime_packages(names)
    if len(found) == 2:
        return (
            "both onnxruntime and onnxruntime-gpu are installed; they share one import name and the CUDA provider "
            f'can disappear: repair with {REPAIR} (or ".[cpu]" without a GPU)'
        )
    if not found:
        return f"no onnxruntime package is installed: {INSTALL_HINT}"
    return None


def nvidia_wheels(names: Iterable[str] | None = None) -> bool:
    """Whether NVIDIA's CUDA runtime or cuDNN pip wheels are installed (onnxruntime-gpu[cuda,cudnn] brings them)."""
    present = installed_distributions() if names is None else names
    return any(name.startswith(("nvidia-cuda-runtime", "nvidia-cudnn")) for name in present)


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

    from nst import __version__

    from .graphs.vgg import load_spec

    try:
        import onnxruntime

        runtime, providers = onnxruntime.__version__, ", ".join(onnxruntime.get_available_providers())
    except ImportError:
        runtime, providers = f"not importable: {INSTALL_HINT}", "none"

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
        "onnxruntime": runtime,
        "onnxruntime packages": ", ".join(onnxruntime_packages()) or "none",
        **({"onnxruntime problem": problem} if (problem := runtime_problem()) else {}),
        "providers": providers,
        "numba": f"{numba.__version__}, {numba.get_num_threads()} threads",
        "numba cache": numba_cache_state(),
    }
