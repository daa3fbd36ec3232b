"""The memory estimate made before a run: what it counts, the one-line refusal with what would fit, and
that a refused run does no work."""

from __future__ import annotations

import pytest
from nst.engine import NstError, memory
from nst.engine.memory import check_fits, estimate_peak_mb, largest_side, optimizer_bytes_per_pixel
from nst.engine.runtime import Device

from .conftest import stripes, synthetic


def test_optimizer_arrays_are_counted():
    # scipy L-BFGS-B: 2m + 5 float64 work vectors and two float64 bounds per pixel value
    assert optimizer_bytes_per_pixel("lbfgsb", 10) == 3 * 8 * 27
    # nst's L-BFGS: 2 (m + 1) float32 step slots and 7 float32 images (x, g, its projection, d, trial, best)
    assert optimizer_bytes_per_pixel("lbfgs", 10) == 3 * 4 * 29
    assert optimizer_bytes_per_pixel("adam", 10) == 3 * 4 * 3  # x, m, v in float32
    small, big = (estimate_peak_mb(512 * 512, "fused", "lbfgs", h) for h in (10, 100))
    assert big - small == pytest.approx(512 * 512 * 3 * 4 * 180 / 2**20)


def test_refusal_names_what_would_fit(monkeypatch):
    need = estimate_peak_mb(4096 * 3072, "fused", "lbfgs", 30) * memory.MARGIN
    monkeypatch.setattr(memory, "available_mb", lambda: need / 3)
    with pytest.raises(NstError) as info:
        check_fits(3072, 4096, "fused", "lbfgs", 30)
    message = str(info.value)
    assert message.startswith("a 4096x3072 transfer needs about") and "\n" not in message
    side = largest_side(3072, 4096, need / 3, "fused", "lbfgs", 30)
    assert f"--size {side}" in message and 1000 < side < 4096
    check_fits(side * 3 // 4, side, "fused", "lbfgs", 30)  # what it suggests does fit
    with pytest.raises(NstError):
        check_fits((side + 64) * 3 // 4, side + 64, "fused", "lbfgs", 30)


def test_adam_is_suggested_when_only_the_optimizer_is_too_big(monkeypatch):
    pixels = 2048 * 2048
    between = (estimate_peak_mb(pixels, "fused", "adam") + estimate_peak_mb(pixels, "fused", "lbfgs", 30)) / 2
    monkeypatch.setattr(memory, "available_mb", lambda: between * memory.MARGIN)
    with pytest.raises(NstError, match="--optimizer adam"):
        check_fits(2048, 2048, "fused", "lbfgs", 30)
    check_fits(2048, 2048, "fused", "adam", 30)


def test_gpu_memory_is_checked_on_cuda(monkeypatch):
    from nst.engine import gpumemory

    monkeypatch.setattr(gpumemory, "gpu_free_mb", lambda device_id: 2000.0)
    cuda = Device("cuda", (), "cuda")
    check_fits(256, 256, "fused", "lbfgs", 10, cuda)
    with pytest.raises(NstError, match="GPU memory.*--size"):
        check_fits(2048, 2048, "fused", "lbfgs", 10, cuda)


def test_a_refused_run_does_no_work_and_the_check_can_be_skipped(st, monkeypatch):
    monkeypatch.setattr(memory, "available_mb", lambda: 100.0)
    calls = []
    with pytest.raises(NstError, match="needs about"):
        st.transfer(synthetic(40, 40), [stripes(40, 40)], size=40, iterations=2, callback=calls.append)
    assert calls == []
    monkeypatch.setenv("NST_MEMORY_CHECK", "0")
    st.transfer(synthetic(40, 40), [stripes(40, 40)], size=40, iterations=2, callback=calls.append)
    assert len(calls) == 2


def test_scipy_lbfgsb_refusal_suggests_nst_lbfgs(monkeypatch):
    pixels = 2048 * 2048
    between = (estimate_peak_mb(pixels, "fused", "lbfgs", 30) + estimate_peak_mb(pixels, "fused", "lbfgsb", 30)) / 2
    monkeypatch.setattr(memory, "available_mb", lambda: between * memory.MARGIN)
    with pytest.raises(NstError, match="--optimizer lbfgs"):
        check_fits(2048, 2048, "fused", "lbfgsb", 30)
