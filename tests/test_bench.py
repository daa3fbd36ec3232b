"""`nst bench`: the FLOP count, the case plan, the verdicts, GPU memory sampling, the chart, and one real
run end to end on tiny images."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nst.bench.chart import bench_chart
from nst.bench.timing import Case, faster_paths, iteration_flops, plan, synthetic_pair
from nst.engine.errors import NstError
from nst.engine.gpumemory import GpuMemoryPeak
from nst.engine.memory import estimate_peak_mb
from nst.engine.runtime import Device

ROOT = Path(__file__).resolve().parents[1]


def test_flops_match_the_quoted_vgg_cost(st):
    # DEVELOPERS/issue 4: VGG-19 up to relu5_1 costs about 86 GFLOP forward at 400x300.
    forward_and_backward = iteration_flops(st.spec, ["relu5_1"], [], 300, 400)
    assert forward_and_backward / 2 == pytest.approx(86.6e9, rel=0.01)


def test_flops_count_each_conv_and_gram_by_hand(st):
    # relu1_1 alone: one 3->64 conv at full size; its Gram (64x64 over h*w) forward and backward.
    h, w = 20, 30
    conv = 64 * 3 * 9 * h * w
    assert iteration_flops(st.spec, [], ["relu1_1"], h, w) == 2 * (2 * conv + 2 * 64 * 64 * h * w)
    # relu2_1 sits after a pooling: max floors odd sizes, average (SAME) rounds up.
    deeper = iteration_flops(st.spec, ["relu2_1"], [], 21, 31)
    macs = (64 * 3 + 64 * 64) * 9 * 21 * 31 + 128 * 64 * 9 * 10 * 15
    assert deeper == 4 * macs
    assert iteration_flops(st.spec, ["relu2_1"], [], 21, 31, "avg") == 4 * (macs - 128 * 64 * 9 * (150 - 11 * 16))


def test_plan_checks_everything_first():
    cases = plan("cpu", "64, 128", "fused", 3, 1, 2)
    assert cases == [Case("cpu", "fused", 64, 3, 1, 2), Case("cpu", "fused", 128, 3, 1, 2)]
    assert plan("cpu", "64", "fused", 1, 1, None, "adam")[0].optimizer == "adam"
    with pytest.raises(NstError, match="--optimizer"):
        plan("cpu", "64", "fused", 1, 1, None, "sgd")
    assert {c.path for c in plan(None, "64", "split,fused", 1, 1, None)} == {"split", "fused"}
    with pytest.raises(NstError, match="tpu"):
        plan("cpu,tpu", "64", "fused", 1, 1, None)
    with pytest.raises(NstError, match="sizes"):
        plan("cpu", "64,big", "fused", 1, 1, None)
    with pytest.raises(NstError, match="32..8192"):
        plan("cpu", "16", "fused", 1, 1, None)
    with pytest.raises(NstError, match="paths"):
        plan("cpu", "64", "both", 1, 1, None)
    with pytest.raises(NstError, match="at least 1"):
        plan("cpu", "64", "fused", 0, 1, None)


def test_plan_of_a_preset_takes_its_paths_and_optimizer():
    from nst.bench.timing import bench_optimizer

    assert [c.path for c in plan("cpu", "64", None, 1, 1, None, "adam", "nnst")] == ["split"]
    assert plan("cpu", "64", None, 1, 1, None)[0].preset == "johnson"
    assert bench_optimizer("nnst") == "adam" and bench_optimizer("johnson") == "lbfgs"
    with pytest.raises(NstError, match="--preset 'picasso'"):
        plan("cpu", "64", None, 1, 1, None, "lbfgs", "picasso")


def test_bench_of_the_nn_loss_times_its_matching(st):
    from nst.bench.timing import measure

    row = measure(Case("cpu", "split", 48, 1, 1, 1, "adam", "nnst"))
    assert row["evaluations"] == 2 and row["match_s"] > 0
    # every position (12 x 12 of the quarter grid) against every style position, C = 2688 channels
    assert row["match_gflop"] == pytest.approx(2 * 144 * 144 * 2688 / 1e9)
    assert row["gflop_per_iteration"] == pytest.approx(
        iteration_flops(st.spec, [], ["relu4_3"], 48, 48, "max", grams=False) / 1e9
    )


def test_cuda_that_is_not_there_is_refused():
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA present")
    with pytest.raises(NstError, match="not available here"):
        plan("cuda", "64", "fused", 1, 1, None)


def test_faster_path_verdicts():
    rows = [
        {"provider": "cpu", "size": 256, "path": "split", "median_s": 2.0},
        {"provider": "cpu", "size": 256, "path": "fused", "median_s": 1.0},
        {"provider": "cpu", "size": 512, "path": "split", "median_s": 3.0},
        {"provider": "cpu", "size": 512, "path": "fused", "error": "out of memory"},
    ]
    assert faster_paths(rows) == [{"provider": "cpu", "size": 256, "faster": "fused", "speedup": 2.0}]


def test_gpu_memory_peak_is_above_the_baseline():
    readings = iter([1000.0, 1500.0, 4000.0, 2500.0] + [2000.0] * 1000)
    with GpuMemoryPeak(Device("cuda", (), "cuda"), interval=0.001, reader=lambda: next(readings)) as gpu:
        import time

        time.sleep(0.05)
    assert gpu.peak_mb == 3000.0
    with GpuMemoryPeak(Device("cpu", (), "cpu")) as cpu:
        pass
    assert cpu.peak_mb is None


def test_chart_draws_a_bar_per_row():
    report = {
        "machine": {"sgemm_gflop_per_s": {"cpu": 100.0}},
        "rows": [
            {"provider": "cpu", "path": "fused", "size": 64, "gflop_per_s": 80.0},
            {"provider": "cpu", "path": "split", "size": 64, "gflop_per_s": 40.0},
            {"provider": "cpu", "path": "split", "size": 128, "error": "x"},
        ],
    }
    img = bench_chart(report)
    assert img.shape == (480, 900, 3) and img.dtype == np.uint8
    blue, red = (40, 110, 220), (220, 80, 40)  # fused, split
    fused, split = (img == blue).all(axis=2).sum(), (img == red).all(axis=2).sum()
    assert 1.8 < fused / split < 2.2 and split > 1000


def test_synthetic_pair_is_deterministic_and_in_range():
    a, b = synthetic_pair(40), synthetic_pair(40)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert a[0].shape == (40, 40, 3) and 0 <= a[1].min() and a[1].max() <= 255


def test_bench_command_end_to_end(tmp_path):
    out, chart = tmp_path / "bench.json", tmp_path / "bench.png"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "nst",
            "bench",
            "--providers",
            "cpu",
            "--sizes",
            "40",
            "--iterations",
            "2",
            "--warmup",
            "1",
            "--threads",
            "1",
            "--json",
            str(out),
            "--chart",
            str(chart),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    assert [(row["path"], row["size"]) for row in report["rows"]] == [("split", 40), ("fused", 40)]
    for row in report["rows"]:
        assert row["evaluations"] == 3 and row["min_s"] <= row["median_s"] <= row["max_s"]
        assert row["gflop_per_s"] == pytest.approx(row["gflop_per_iteration"] / row["median_s"])
        assert row["peak_host_mb"] > 100 and row["peak_gpu_mb"] is None
        # the pre-run estimate (nst/engine/memory.py) is within a quarter of the measured peak
        assert estimate_peak_mb(40 * 40, row["path"], "lbfgs") == pytest.approx(row["peak_host_mb"], rel=0.25)
        # every node ran where it was asked to: the profile shows the CPU provider only
        assert set(row["placement"]) == {"CPUExecutionProvider"} and row["placement"]["CPUExecutionProvider"]
    assert report["faster_path"][0]["faster"] in ("split", "fused")
    assert report["machine"]["sgemm_gflop_per_s"]["cpu"] > 1
    assert "path is faster" in r.stdout and "cpu SGEMM floor" in r.stdout
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_bad_input_is_one_line(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "nst", "bench", "--sizes", "abc"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert r.returncode == 2 and r.stderr.strip().startswith("error: --sizes") and "Traceback" not in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "nst", "bench", "--chart", str(tmp_path / "c.txt")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert r.returncode == 2 and "unknown output format" in r.stderr


def test_cuda_options_come_from_the_environment(monkeypatch):
    from nst.engine.runtime import cuda_options

    assert cuda_options("") == {}
    assert cuda_options("use_tf32=0, cudnn_conv_algo_search=EXHAUSTIVE") == {
        "use_tf32": "0",
        "cudnn_conv_algo_search": "EXHAUSTIVE",
    }
    monkeypatch.setenv("NST_CUDA_OPTIONS", "enable_cuda_graph=0")
    assert cuda_options() == {"enable_cuda_graph": "0"}
    with pytest.raises(NstError, match="NAME=VALUE"):
        cuda_options("use_tf32")
