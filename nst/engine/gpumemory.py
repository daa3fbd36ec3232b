"""Peak GPU memory of a block of work, sampled from NVML (pynvml) or `nvidia-smi` in a background thread.

ONNX Runtime has no query for the CUDA arena's high-water mark, so the device's used memory is sampled
every 20 ms and reported above what was in use before the block started.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from typing import Any, Callable


def _nvml_memory(device_id: int) -> Callable[[], Any] | None:
    """A function returning the device's NVML memory info (.used, .free in bytes), or None without
    pynvml or a driver."""
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(device_id)
    except Exception:  # not installed, or no driver
        return None
    return lambda: pynvml.nvmlDeviceGetMemoryInfo(handle)


def nvml_reader(device_id: int) -> Callable[[], float] | None:
    """A function returning the device's used memory in MB via pynvml, or None without pynvml."""
    info = _nvml_memory(device_id)
    return None if info is None else (lambda: info().used / 2**20)


def gpu_free_mb(device_id: int) -> float | None:
    """Free memory on the GPU in MB (pynvml), or None when it cannot be asked."""
    info = _nvml_memory(device_id)
    return None if info is None else info().free / 2**20


def smi_reader(device_id: int) -> Callable[[], float] | None:
    """The same through `nvidia-smi` (slower: one process per sample), or None without it."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    command = [exe, f"--id={device_id}", "--query-gpu=memory.used", "--format=csv,noheader,nounits"]
    return lambda: float(subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()[0])


class GpuMemoryPeak:
    """`with GpuMemoryPeak(device) as gpu: ...` then `gpu.peak_mb` (None on the CPU or without a reader)."""

    def __init__(self, device, interval: float = 0.02, reader: Callable[[], float] | None = None) -> None:
        self.reader = reader
        if reader is None and device.name == "cuda":
            self.reader = nvml_reader(device.device_id) or smi_reader(device.device_id)
        self.interval = interval
        self.peak_mb: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> GpuMemoryPeak:
        if self.reader is not None:
            self._baseline = self.reader()
            self._high = self._baseline
            self._thread = threading.Thread(target=self._sample, args=(self.reader,), daemon=True)
            self._thread.start()
        return self

    def _sample(self, reader: Callable[[], float]) -> None:
        while not self._stop.is_set():
            self._high = max(self._high, reader())
            self._stop.wait(self.interval)

    def __exit__(self, *exc) -> None:
        if self._thread is not None and self.reader is not None:
            self._stop.set()
            self._thread.join()
            self._high = max(self._high, self.reader())
            self.peak_mb = self._high - self._baseline
